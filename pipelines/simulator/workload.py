"""Workload: bursty request arrivals, size-dependent service times, batch jobs (vectorized)."""

from __future__ import annotations

import numpy as np

from pipelines.simulator.model import (
    JOB_STATES,
    MODEL_CLASSES,
    US,
    PoolJobs,
    PoolWorkload,
    SimConfig,
)

# Independent RNG streams, keyed so that adding a pool or a feature never shifts the others.
STREAM_TOPOLOGY, STREAM_BURSTS, STREAM_ARRIVALS, STREAM_ATTRS, STREAM_JOBS = 1, 2, 10, 11, 12
STREAM_ENGINE, STREAM_IDS, STREAM_TELEMETRY = 13, 3, 4
STREAM_ROUTING, STREAM_REPLAY = 14, 15


def stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


Burst = tuple[float, float, float]  # (start_s, end_s, multiplier)


def generate_bursts(cfg: SimConfig) -> list[list[Burst]]:
    """Injected burst episodes per pool; some cascade into another pool after a lag."""
    out: list[list[Burst]] = [[] for _ in cfg.pools]
    spec = cfg.arrivals.bursts
    if spec is None or spec.per_hour <= 0:
        return out
    rng = stream(cfg.seed, STREAM_BURSTS)
    hours = cfg.duration_s / 3600
    for p in range(len(cfg.pools)):
        n = int(rng.poisson(spec.per_hour * hours))
        starts = np.sort(rng.uniform(0, cfg.duration_s, n))
        durs = rng.uniform(*spec.duration_s, n)
        mults = rng.uniform(*spec.multiplier, n)
        cascade = rng.random(n) < spec.cascade_prob
        targets = rng.integers(0, len(cfg.pools), n)
        lags = rng.uniform(*spec.cascade_lag_s, n)
        for i in range(n):
            end = min(starts[i] + durs[i], cfg.duration_s)
            out[p].append((float(starts[i]), float(end), float(mults[i])))
            q = int(targets[i])
            if cascade[i] and q != p and starts[i] + lags[i] < cfg.duration_s:
                s2 = float(starts[i] + lags[i])
                e2 = min(s2 + durs[i] * 0.8, cfg.duration_s)
                out[q].append((s2, float(e2), float(1 + (mults[i] - 1) * 0.7)))
    return [sorted(b) for b in out]


def intensity(cfg: SimConfig, rate: float, bursts: list[Burst], t: np.ndarray) -> np.ndarray:
    """Arrival rate at times t (s): base * daily sinusoid * active burst multipliers."""
    a = cfg.arrivals
    phase = 2 * np.pi * (t / a.day_period_s - a.peak_fraction + 0.25)
    lam = rate * (1 + a.daily_amplitude * np.sin(phase))
    for s, e, m in bursts:
        lam[(t >= s) & (t < e)] *= m
    return lam


def arrival_times(
    cfg: SimConfig, rate: float, bursts: list[Burst], rng: np.random.Generator
) -> np.ndarray:
    """Gamma(k) renewal arrivals mapped through the cumulative intensity (time rescaling).

    In operational time the process has unit rate and Gamma(k, 1/k) gaps (CV^2 = 1/k); the
    inverse of Lambda(t) = integral of lambda turns it into the modulated process, so bursts
    and the daily curve change the rate but keep the burstiness. One grid point per second.
    """
    step = 1.0
    t = np.arange(0.0, cfg.duration_s + step, step)
    t[-1] = cfg.duration_s
    lam = intensity(cfg, rate, bursts, t[:-1])
    big_lam = np.concatenate([[0.0], np.cumsum(lam * np.diff(t))])
    total = big_lam[-1]
    k = cfg.arrivals.burstiness
    n = int(total + 10 * np.sqrt(total / k) + 100)
    u = np.cumsum(rng.gamma(k, 1.0 / k, n))
    while u[-1] < total:  # rare: extend deterministically
        u = np.concatenate([u, u[-1] + np.cumsum(rng.gamma(k, 1.0 / k, n))])
    u = u[u < total]
    return np.interp(u, big_lam, t)


def _lognormal_int(rng: np.random.Generator, median: float, sigma: float, n: int, hi: int):
    x = rng.lognormal(np.log(median), sigma, n)
    return np.clip(np.rint(x), 1, hi).astype(np.int64)


def generate_pool_workload(cfg: SimConfig, p: int, bursts: list[Burst]) -> PoolWorkload:
    spec = cfg.pools[p]
    arr_s = arrival_times(cfg, spec.rate_per_s, bursts, stream(cfg.seed, STREAM_ARRIVALS, p))
    n = len(arr_s)
    rng = stream(cfg.seed, STREAM_ATTRS, p)
    names = [c for c in MODEL_CLASSES if spec.model_mix.get(c, 0) > 0]
    probs = np.array([spec.model_mix[c] for c in names], dtype=float)
    cls_local = rng.choice(len(names), size=n, p=probs / probs.sum())
    cls = np.array([MODEL_CLASSES.index(c) for c in names], dtype=np.int8)[cls_local]
    pmix = np.asarray(spec.priority_mix, dtype=float)
    prio = rng.choice(4, size=n, p=pmix / pmix.sum()).astype(np.int8)
    in_tok = np.zeros(n, dtype=np.int64)
    out_tok = np.full(n, -1, dtype=np.int64)
    svc_ms = np.zeros(n)
    pre_ms = np.full(n, -1.0)
    for c in names:
        prof = cfg.services[c]
        m = cls == MODEL_CLASSES.index(c)
        k = int(m.sum())
        ti = _lognormal_int(rng, prof.input_median, prof.input_sigma, k, prof.max_tokens)
        noise = rng.lognormal(0.0, prof.noise_sigma, k)
        in_tok[m] = ti
        prefill = prof.base_ms + ti * prof.prefill_ms_per_token
        total = prefill
        if prof.output_median is not None:
            to = _lognormal_int(rng, prof.output_median, prof.output_sigma, k, prof.max_tokens)
            out_tok[m] = to
            total = prefill + to * prof.decode_ms_per_token
            # First token = prefill plus one decode step.
            pre_ms[m] = (prefill + prof.decode_ms_per_token) * noise
        svc_ms[m] = total * noise
    # Closed-form checks: service independent of tokens, with mean exp_service_s.
    if cfg.service_model == "exponential":
        svc_ms = rng.exponential(cfg.exp_service_s * 1000, n)
        pre_ms[:] = -1.0
    elif cfg.service_model == "deterministic":
        svc_ms = np.full(n, cfg.exp_service_s * 1000)
        pre_ms[:] = -1.0
    elif cfg.service_model == "lognormal":  # mean exp_service_s, log-sd service_sigma
        mu = np.log(cfg.exp_service_s * 1000) - cfg.service_sigma**2 / 2
        svc_ms = rng.lognormal(mu, cfg.service_sigma, n)
        pre_ms[:] = -1.0
    service_us = np.maximum(np.rint(svc_ms * 1000), 1).astype(np.int64)
    prefill_us = np.where(pre_ms < 0, -1, np.minimum(np.rint(pre_ms * 1000), service_us))
    return PoolWorkload(
        arrival_us=np.rint(arr_s * US).astype(np.int64),
        priority=prio,
        model_class=cls,
        input_tokens=in_tok.astype(np.int32),
        output_tokens=out_tok.astype(np.int32),
        service_us=service_us,
        prefill_us=prefill_us.astype(np.int64),
        bursts=bursts,
    )


def generate_pool_jobs(cfg: SimConfig, p: int) -> PoolJobs:
    spec, js = cfg.pools[p], cfg.jobs
    rng = stream(cfg.seed, STREAM_JOBS, p)
    # Submissions are Poisson; each brings 1 + Poisson(clump_mean - 1) jobs (sweeps, arrays),
    # so the GPU demand of jobs comes in waves, as on real shared clusters.
    subs_per_hour = spec.jobs_per_hour / js.clump_mean
    n_sub = int(rng.poisson(subs_per_hour * cfg.duration_s / 3600)) if subs_per_hour else 0
    sub_t = rng.uniform(0, cfg.duration_s, n_sub)
    sizes = 1 + rng.poisson(js.clump_mean - 1, n_sub)
    submit = np.repeat(sub_t, sizes) + rng.uniform(0, js.clump_spread_s, int(sizes.sum()))
    submit = np.sort(submit[submit < cfg.duration_s])
    n = len(submit)
    probs = np.asarray(js.gpus_probs, dtype=float)
    gpus = np.asarray(js.gpus_choices)[rng.choice(len(probs), size=n, p=probs / probs.sum())]
    gpus = np.minimum(gpus, cfg.gpus_per_node)  # a job lives on one node
    dur = np.clip(rng.lognormal(np.log(js.duration_median_s), js.duration_sigma, n),
                  *js.duration_range_s)
    training = rng.random(n) < js.training_share
    stalled = rng.random(n) < js.stalled_share
    eff = np.where(stalled, rng.uniform(*js.stalled_efficiency, n), rng.uniform(*js.efficiency, n))
    util = rng.uniform(*js.util_level, n)
    state = np.asarray(JOB_STATES)[rng.choice(4, size=n, p=[0.88, 0.06, 0.03, 0.03])]
    # Slurm multifactor priorities are large integers; training queues rank lower.
    prio = np.rint(rng.uniform(2000, 9000, n) + np.where(training, 0, 4000)).astype(float)
    return PoolJobs(
        submit_us=np.rint(submit * US).astype(np.int64),
        gpus=gpus.astype(np.int32),
        duration_us=np.rint(dur * US).astype(np.int64),
        kind=np.where(training, "training", "batch"),
        state=state,
        priority=prio,
        efficiency=eff,
        util_level=util,
        stalled=stalled,
    )
