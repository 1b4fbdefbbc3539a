"""Ground truth of a simulated pilot: one row per injected event, with what it truly caused.

Written by the demo beside its telemetry (`ground_truth.parquet` / `.csv`); never ingested.
Each row is an event the simulator injected (a burst, an idle->overload oscillation, a service
slowdown, a batch job, the policy change) and the effects it had, established from the
simulator's own state rather than from the telemetry the detectors read:

- `overload`: the pool's offered load exceeded its request capacity long enough to build a
  queue. Offered load per 10-s step = arrival intensity x mean service time x slowdown
  factor / (pool GPUs - GPUs held by batch jobs) (the intensity the arrivals were drawn from,
  the job holds the engine decided); above 1 the queue wait grows at (offered - 1) s per s, so
  `backlog_s` = sum over the event's steps of max(offered - 1, 0) x 10 s, and `overload` when
  backlog_s >= sched_delay_target_s (a shorter wait is no queue) and at least one step's
  offered load exceeds 1 by more than the Poisson noise of its arrivals (1 / sqrt(expected
  arrivals in the step)): an excess inside that noise is as likely to come from chance as from
  the event, so the fluid model cannot attribute the queue to it. `peak_offered_load` is the
  largest step. `marginal` marks the events that built such a backlog only within that
  noise: the scoring treats them as "don't care" (neither required nor forbidden).
- `retries_caused`: retry attempts whose first attempt arrived in the event window (the engine
  retries only timed-out or dropped attempts); `retry_storm` when >= RETRY_STORM_MIN and at
  least RETRY_STORM_SHARE of the event's first attempts.
- jobs: `delayed_attempts` / `delayed_p01`: first attempts (all, P0/P1) waiting while the job
  held its GPUs (arrived before its end, still waiting after its start) that waited
  >= sched_delay_target_s longer than in the same simulation re-run without batch jobs (same
  seed, arrivals and service times), or timed out / were dropped where that re-run served
  them: `conflict` when >= conflict_min_attempts; `inversion` when the P0/P1 count is and the
  job held > long_job_s.
- oscillations: `oscillation` when the pool was truly idle during the lull (GPUs held by jobs
  < IDLE_HELD_SHARE of the pool) and the surge overloaded it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from pipelines.config import DEFAULT_THRESHOLDS
from pipelines.simulator.model import DROPPED, MODEL_CLASSES, OK, TIMEOUT, US, SimConfig
from pipelines.simulator.policies import Policy, policy_set
from pipelines.simulator.runner import EngineRun, run_engine, run_workloads
from pipelines.simulator.tables import epoch_us
from pipelines.simulator.workload import (
    generate_bursts,
    generate_pool_jobs,
    intensity,
    power_holds,
    scripted_oscillations,
    scripted_slowdowns,
)

STEP_S = 10.0
RETRY_STORM_MIN = 10
RETRY_STORM_SHARE = 0.02
IDLE_HELD_SHARE = 0.2

SCHEMA = {
    "event_id": pl.String, "type": pl.String, "pool": pl.String, "job_id": pl.String,
    "gpus": pl.Int32, "start_ts": pl.Datetime("us"), "end_ts": pl.Datetime("us"),
    "magnitude": pl.Float64, "stalled": pl.Boolean, "peak_offered_load": pl.Float64,
    "backlog_s": pl.Float64, "marginal": pl.Boolean,
    "overload": pl.Boolean, "retries_caused": pl.Int64, "retry_storm": pl.Boolean,
    "delayed_attempts": pl.Int64, "delayed_p01": pl.Int64, "conflict": pl.Boolean,
    "inversion": pl.Boolean, "oscillation": pl.Boolean, "flagged": pl.Boolean,
    "detail": pl.String,
}


def _held_gpus(o, jobs, grid_us: np.ndarray) -> np.ndarray:
    """GPUs held by batch jobs at each grid time."""
    held = np.zeros(len(grid_us))
    for j in range(len(o.job_start_us)):
        s, e = int(o.job_start_us[j]), int(o.job_end_us[j])
        if s >= 0:
            held[(grid_us >= s) & (grid_us < e)] += int(jobs.gpus[j])
    return held


def _harmed(run: EngineRun, alt: EngineRun, p: int, min_delay_us: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(arrival_us, wait_end_us, harmed) of the first attempts of pool p: harmed when the
    attempt waited >= min_delay_us longer than in the job-free run, or failed (timed out,
    dropped) where the job-free run served it."""
    n = len(run.workloads[p])
    o, a = run.outcomes[p], alt.outcomes[p]

    def wait_end(out):
        return np.where(out.start_us[:n] >= 0, out.start_us[:n], out.end_us[:n])

    failed = np.isin(o.status[:n], (TIMEOUT, DROPPED)) & (a.status[:n] == OK)
    end = wait_end(o)
    return o.arrival_us[:n], end, (end - wait_end(a) >= min_delay_us) | failed


@dataclass
class _PoolState:
    """What the simulator knows about one pool, on a STEP_S grid and per first attempt."""

    name: str
    base_us: int
    horizon_s: float
    grid_us: np.ndarray  # grid times (us since start)
    offered: np.ndarray  # offered load per grid step
    noise: np.ndarray  # relative Poisson noise of the step's arrivals, 1 / sqrt(expected)
    arrival_us: np.ndarray  # first attempts, sorted
    retries_of: np.ndarray  # retry attempts per first attempt
    min_backlog_s: float  # a queue shorter than this is no queue (sched_delay_target_s)

    def effects(self, s_us: int, e_us: int) -> dict:
        m = (self.grid_us >= s_us - STEP_S * US) & (self.grid_us < e_us)
        a, b = np.searchsorted(self.arrival_us, [s_us, e_us])
        caused = int(self.retries_of[a:b].sum())
        peak = float(self.offered[m].max()) if m.any() else 0.0
        # seconds of queue wait the excess work adds: the queue grows at (offered - 1) s/s
        backlog = float(np.maximum(self.offered[m] - 1.0, 0.0).sum() * STEP_S)
        beyond_noise = bool(m.any()) and bool((self.offered[m] > 1.0 + self.noise[m]).any())
        return {"peak_offered_load": peak, "backlog_s": backlog,
                "overload": backlog >= self.min_backlog_s and beyond_noise,
                "marginal": backlog >= self.min_backlog_s and not beyond_noise,
                "retries_caused": caused,
                "retry_storm": caused >= RETRY_STORM_MIN
                and caused >= RETRY_STORM_SHARE * max(int(b - a), 1)}

    def row(self, n: int, kind: str, s_s: float, e_s: float, mag: float | None, detail: str,
            **extra) -> dict:
        s_us, e_us = round(s_s * US), round(min(e_s, self.horizon_s) * US)
        return {"event_id": f"{self.name}:{kind}:{n}", "type": kind, "pool": self.name,
                "start_ts": self.base_us + s_us, "end_ts": self.base_us + e_us, "magnitude": mag,
                "detail": detail, **self.effects(s_us, e_us), **extra}


def _pool_state(cfg: SimConfig, run: EngineRun, p: int, grid: np.ndarray,
                slow: list[tuple[float, float, float]], min_backlog_s: float) -> _PoolState:
    spec, wl, o, jobs = cfg.pools[p], run.workloads[p], run.outcomes[p], run.jobs[p]
    n = len(wl)
    arr = o.arrival_us[:n]
    gpus = run.cluster.pool_gpus(p)
    lo, hi = run.cluster.pool_offset[p], run.cluster.pool_offset[p + 1]
    reserved = int(run.cluster.gpu_reserved[lo:hi].sum())
    grid_us = np.rint(grid * US).astype(np.int64)
    # request capacity: the pool's GPUs minus job holds; under batch separation the GPUs
    # outside the reserved nodes
    cap = gpus - _held_gpus(o, jobs, grid_us)
    for w in cfg.windows_for(spec.name):
        if Policy.BATCH_SEPARATION in w.policies:
            cap[grid >= w.start_s] = gpus - reserved
    factor = np.ones(len(grid))
    slowed = np.zeros(n, dtype=bool)
    for s, e, f in slow:
        factor[(grid >= s) & (grid < e)] = f
        slowed |= (arr >= s * US) & (arr < e * US)
    mean_s = float(wl.service_us[~slowed].mean()) / US if (~slowed).any() else 0.0
    lam = intensity(cfg, spec.rate_per_s, wl.bursts, grid + STEP_S / 2)
    roots = o.root[o.attempt > 0]
    return _PoolState(spec.name, epoch_us(cfg.start), cfg.duration_s, grid_us,
                      lam * mean_s * factor / np.maximum(cap, 1.0),
                      1.0 / np.sqrt(np.maximum(lam * STEP_S, 1.0)), arr,
                      np.bincount(roots[roots < n], minlength=n), min_backlog_s)


def _clipped_us(s: np.ndarray, e: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.clip(np.minimum(e, hi) - np.maximum(s, lo), 0, None)


def _unit_rows(cfg: SimConfig, run: EngineRun, th: dict[str, float]) -> list[dict]:
    """Phase-level units (pool x phase) of the patterns reported per pool and phase.

    - non_productive_queue_waiting: delay index = sum of queue waits / sum of end-to-end
      times of the pool's ok attempts arriving in the phase, from the engine's event times;
      flagged when > di.
    - hidden_gpu_occupancy_loss: 100 x (nominal - effective) from the generating
      parameters: request service time x (1 - its class's sm efficiency) plus job hold time x
      (util level - the job's efficiency), over the pool's GPU time (no sampling noise, no
      per-request jitter); flagged when > hcl_pp.
    - energy_latency_mismatch: flagged when a scripted power hold (the pool's GPUs draw a
      fixed power whatever their load: power decoupled from latency) covers at least half of
      the phase.
    """
    wins = sorted({w.start_s for spec in cfg.pools for w in cfg.windows_for(spec.name)})
    bounds = [*wins, cfg.duration_s]
    phases = list(zip(["baseline", "validation"][: len(wins)], bounds, bounds[1:], strict=False))
    base = epoch_us(cfg.start)
    eff = np.array([cfg.services[c].sm_efficiency if c in cfg.services else 0.6
                    for c in MODEL_CLASSES])
    rows: list[dict] = []
    holds = power_holds(cfg)

    def unit(pool: str, ph: str, pattern: str, lo: int, hi: int, value: float, flagged: bool,
             detail: str) -> dict:
        return {"event_id": f"{pool}:{ph}:{pattern}", "type": f"unit:{pattern}", "pool": pool,
                "start_ts": base + lo, "end_ts": base + hi, "magnitude": value,
                "flagged": flagged, "detail": detail}

    for p, spec in enumerate(cfg.pools):
        wl, o, jobs = run.workloads[p], run.outcomes[p], run.jobs[p]
        ok = (o.status == 0) & (o.start_us >= 0)
        started = o.start_us >= 0
        loss_w = 1.0 - eff[wl.model_class[o.root[started]]]
        for ph, a, b in phases:
            lo, hi = round(a * US), round(b * US)
            inph = ok & (o.arrival_us >= lo) & (o.arrival_us < hi)
            wait = float((o.start_us[inph] - o.arrival_us[inph]).sum())
            e2e = float((o.end_us[inph] - o.arrival_us[inph]).sum())
            loss = float((_clipped_us(o.start_us[started], o.end_us[started], lo, hi)
                          * loss_w).sum())
            held = _clipped_us(o.job_start_us, o.job_end_us, lo, hi) * (o.job_start_us >= 0)
            loss += float((held * jobs.gpus * (jobs.util_level - jobs.efficiency)).sum())
            di = wait / e2e if e2e else 0.0
            hcl = 100 * loss / float(run.cluster.pool_gpus(p) * (hi - lo))
            held_s = sum(max(min(e, b) - max(s, a), 0.0) for q, s, e, _ in holds if q == p)
            rows += [
                unit(spec.name, ph, "energy_latency_mismatch", lo, hi, held_s / (b - a),
                     held_s >= 0.5 * (b - a), "power held regardless of load for "
                     f"{100 * held_s / (b - a):.0f} % of the phase"),
                unit(spec.name, ph, "non_productive_queue_waiting", lo, hi, di, di > th["di"],
                     f"simulated delay index {di:.3g} vs threshold {th['di']:g}"),
                unit(spec.name, ph, "hidden_gpu_occupancy_loss", lo, hi, hcl,
                     hcl > th["hcl_pp"],
                     f"simulated hidden loss (pp) {hcl:.3g} vs threshold {th['hcl_pp']:g}"),
            ]
    return rows


def ground_truth_events(cfg: SimConfig, th: dict[str, float] | None = None) -> pl.DataFrame:
    """Every injected event of `cfg` with its true effects (see the module docstring)."""
    th = {**DEFAULT_THRESHOLDS, **(th or {})}
    run = run_engine(cfg)
    no_jobs = replace(cfg, pools=tuple(replace(p, jobs_per_hour=0.0) for p in cfg.pools))
    empty = [generate_pool_jobs(no_jobs, p) for p in range(len(cfg.pools))]
    alt = run_workloads(cfg, run.cluster, run.workloads, empty)
    horizon_us = round(cfg.duration_s * US)
    grid = np.arange(0.0, cfg.duration_s, STEP_S)
    bursts, osc, slow = generate_bursts(cfg), scripted_oscillations(cfg), scripted_slowdowns(cfg)
    min_delay = th["sched_delay_target_s"] * US
    rows: list[dict] = []
    for p, spec in enumerate(cfg.pools):
        st = _pool_state(cfg, run, p, grid, slow[p], th["sched_delay_target_s"])
        wl, o, jobs = run.workloads[p], run.outcomes[p], run.jobs[p]
        arr, wait_end, hit = _harmed(run, alt, p, min_delay)
        hi_prio = wl.priority <= 1
        max_wait = int((wait_end - arr).max()) if len(arr) else 0
        scripted = {(ep[0], ep[1]) for pair in osc[p] for ep in pair}
        for s, e, m in bursts[p]:
            if (s, e) not in scripted:
                rows.append(st.row(len(rows), "burst", s, e, m, "arrival rate multiplier"))
        for lull, surge in osc[p]:
            lull_m = (grid >= lull[0]) & (grid < lull[1])
            held = _held_gpus(o, jobs, st.grid_us[lull_m])
            idle = bool(lull_m.any()) and float(held.mean()) < IDLE_HELD_SHARE * \
                run.cluster.pool_gpus(p)
            surge_fx = st.effects(round(surge[0] * US), round(surge[1] * US))
            rows.append(st.row(
                len(rows), "oscillation", lull[0], surge[1], surge[2],
                f"arrivals x{lull[2]:g} for {lull[1] - lull[0]:.0f} s, then x{surge[2]:g} for "
                f"{surge[1] - surge[0]:.0f} s", oscillation=idle and surge_fx["overload"]))
            # the surge alone is also a burst
            rows.append(st.row(len(rows), "burst", surge[0], surge[1], surge[2],
                               "surge of an oscillation"))
        for s, e, f in slow[p]:
            rows.append(st.row(len(rows), "slowdown", s, e, f,
                               "service time multiplier (degraded server)"))
        for j in range(len(o.job_start_us)):
            js, je = int(o.job_start_us[j]), min(int(o.job_end_us[j]), horizon_us)
            if js < 0 or js >= horizon_us:
                continue
            # the attempts waiting while the job held its GPUs (arrived before or during it)
            a, b = np.searchsorted(arr, [js - max_wait, je])
            under = hit[a:b] & (wait_end[a:b] > js)
            d, d01 = int(under.sum()), int((under & hi_prio[a:b]).sum())
            rows.append(st.row(
                len(rows), "batch_job", js / US, je / US, float(jobs.gpus[j]),
                f"{jobs.kind[j]} job holding {int(jobs.gpus[j])} GPU(s)",
                job_id=f"{spec.name}-job-{j}", gpus=int(jobs.gpus[j]),
                stalled=bool(jobs.stalled[j]), delayed_attempts=d, delayed_p01=d01,
                conflict=d >= th["conflict_min_attempts"],
                inversion=d01 >= th["conflict_min_attempts"]
                and (je - js) / US > th["long_job_s"]))
        wins = cfg.windows_for(spec.name)
        for a_w, b_w in zip(wins, wins[1:], strict=False):
            if a_w.policies != b_w.policies:
                rows.append(st.row(len(rows), "policy_change", b_w.start_s, cfg.duration_s,
                                   None, "+".join(sorted(policy_set(b_w.policies)))))
    rows.extend(_unit_rows(cfg, run, th))
    gt = pl.DataFrame(rows, schema={**SCHEMA, "start_ts": pl.Int64, "end_ts": pl.Int64})
    return gt.with_columns(pl.col("start_ts", "end_ts").cast(pl.Datetime("us"))).sort(
        "start_ts", "type", "pool").select(list(SCHEMA)).cast(SCHEMA)


__all__ = ["ground_truth_events"]
