"""Workload: bursty request arrivals, size-dependent service times, batch jobs (vectorized)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.simulator.model import (
    JOB_STATES,
    MODEL_CLASSES,
    US,
    BurstSpec,
    PoolJobs,
    PoolWorkload,
    SimConfig,
)

# Independent RNG streams, keyed so that adding a pool or a feature never shifts the others.
STREAM_TOPOLOGY, STREAM_BURSTS, STREAM_ARRIVALS, STREAM_ATTRS, STREAM_JOBS = 1, 2, 10, 11, 12
STREAM_ENGINE, STREAM_IDS, STREAM_TELEMETRY = 13, 3, 4
STREAM_ROUTING, STREAM_REPLAY = 14, 15
STREAM_OSCILLATIONS, STREAM_SLOWDOWNS = 16, 17


def stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


Burst = tuple[float, float, float]  # (start_s, end_s, multiplier)


def _random_bursts(cfg: SimConfig, spec: BurstSpec) -> list[list[Burst]]:
    """Poisson burst episodes per pool; some cascade into another pool after a lag."""
    out: list[list[Burst]] = [[] for _ in cfg.pools]
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
    return out


@dataclass(frozen=True)
class ScriptedEpisodes(BurstSpec):
    """Bursts plus two scripted episode kinds, kept apart in time (detector ground truth).

    - oscillation: the pool's arrivals nearly stop for `lull_s` (x lull_multiplier), then
      surge (x surge_multiplier) for `surge_s`: idle, then overloaded, within minutes;
    - slowdown: attempts arriving in the window take `slowdown_factor` x their service time
      (a degraded model server): capacity collapses, attempts time out and are retried.
    Every episode of a pool is preceded by `quiet_s` without another (the detectors compare an
    episode with its trailing 15 minutes, which must not hold the previous one): scripted
    episodes are placed first, then the Poisson bursts that fit. Starts are Poisson per pool
    on their own RNG streams.
    """

    oscillations_per_hour: float = 0.0
    lull_s: float = 240.0
    lull_multiplier: float = 0.02
    surge_s: float = 150.0
    surge_multiplier: float = 4.0
    slowdowns_per_hour: float = 0.0
    slowdown_s: tuple[float, float] = (120.0, 180.0)
    slowdown_factor: tuple[float, float] = (6.0, 10.0)
    quiet_s: float = 960.0
    # (pool, start_s, end_s, watts): the pool's GPUs draw ~watts whatever their load (clocks
    # pinned, power management off): power decoupled from latency (energy-latency mismatch)
    power_holds: tuple[tuple[str, float, float, float], ...] = ()


Episode = tuple[float, float, float]  # (start_s, end_s, magnitude)


@dataclass
class ScriptedPlan:
    """Per pool: bursts (incl. the oscillations' lulls and surges), oscillation (lull, surge)
    pairs and slowdown windows."""

    bursts: list[list[Burst]]
    oscillations: list[list[tuple[Episode, Episode]]]
    slowdowns: list[list[Episode]]


def _fits(kept: list[tuple[float, float]], s: float, e: float, quiet: float) -> bool:
    """[s, e) has `quiet` seconds free before it and after it among the kept intervals."""
    return all(e + quiet <= ks or s >= ke + quiet for ks, ke in kept)


def scripted_plan(cfg: SimConfig) -> ScriptedPlan | None:
    """The episodes of a ScriptedEpisodes spec, spaced (None for any other burst spec)."""
    spec = cfg.arrivals.bursts
    if not isinstance(spec, ScriptedEpisodes):
        return None
    hours, npool = cfg.duration_s / 3600, len(cfg.pools)
    raw = _random_bursts(cfg, spec) if spec.per_hour > 0 else [[] for _ in cfg.pools]
    plan = ScriptedPlan([[] for _ in range(npool)], [[] for _ in range(npool)],
                        [[] for _ in range(npool)])
    for p in range(npool):
        kept: list[tuple[float, float]] = []
        rng = stream(cfg.seed, STREAM_OSCILLATIONS, p)
        length = spec.lull_s + spec.surge_s
        n = int(rng.poisson(spec.oscillations_per_hour * hours))
        # a run shorter than quiet time + one episode has no room for it (tiny test scales)
        hi = max(cfg.duration_s - length, spec.quiet_s)
        for s in np.sort(rng.uniform(spec.quiet_s, hi, n if hi > spec.quiet_s else 0)):
            if _fits(kept, s, s + length, spec.quiet_s):
                kept.append((s, s + length))
                m = float(s + spec.lull_s)
                plan.oscillations[p].append(((float(s), m, spec.lull_multiplier),
                                             (m, m + spec.surge_s, spec.surge_multiplier)))
        rng = stream(cfg.seed, STREAM_SLOWDOWNS, p)
        n = int(rng.poisson(spec.slowdowns_per_hour * hours))
        hi = max(cfg.duration_s - spec.slowdown_s[1], spec.quiet_s)
        n = n if hi > spec.quiet_s else 0
        starts = np.sort(rng.uniform(spec.quiet_s, hi, n))
        lengths, factors = rng.uniform(*spec.slowdown_s, n), rng.uniform(*spec.slowdown_factor, n)
        for s, d, f in zip(starts, lengths, factors, strict=True):
            if _fits(kept, s, s + d, spec.quiet_s):
                kept.append((s, s + d))
                plan.slowdowns[p].append((float(s), float(s + d), float(f)))
        for s, e, m in sorted(raw[p]):
            if s >= spec.quiet_s and _fits(kept, s, e, spec.quiet_s):
                kept.append((s, e))
                plan.bursts[p].append((s, e, m))
        for lull, surge in plan.oscillations[p]:
            plan.bursts[p].extend([lull, surge])
        plan.bursts[p].sort()
    return plan


def scripted_oscillations(cfg: SimConfig) -> list[list[tuple[Episode, Episode]]]:
    plan = scripted_plan(cfg)
    return plan.oscillations if plan else [[] for _ in cfg.pools]


def scripted_slowdowns(cfg: SimConfig) -> list[list[Episode]]:
    plan = scripted_plan(cfg)
    return plan.slowdowns if plan else [[] for _ in cfg.pools]


def power_holds(cfg: SimConfig) -> list[tuple[int, float, float, float]]:
    """The scripted power holds as (pool index, start_s, end_s, watts), pools that exist."""
    spec = cfg.arrivals.bursts
    if not isinstance(spec, ScriptedEpisodes):
        return []
    index = {p.name: i for i, p in enumerate(cfg.pools)}
    return [(index[name], s, e, w) for name, s, e, w in spec.power_holds if name in index]


def generate_bursts(cfg: SimConfig) -> list[list[Burst]]:
    """Injected burst episodes per pool (a ScriptedEpisodes spec adds its own, spaced)."""
    spec = cfg.arrivals.bursts
    if spec is None:
        return [[] for _ in cfg.pools]
    plan = scripted_plan(cfg)
    if plan is not None:
        return plan.bursts
    if spec.per_hour <= 0:
        return [[] for _ in cfg.pools]
    return [sorted(b) for b in _random_bursts(cfg, spec)]


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
    if cfg.service_model == "tokens":  # scripted slowdowns (demo only)
        for s, e, factor in scripted_slowdowns(cfg)[p]:
            m = (arr_s >= s) & (arr_s < e)
            svc_ms[m] *= factor
            pre_ms[m & (pre_ms >= 0)] *= factor
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
