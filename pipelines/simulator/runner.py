"""Top level: config -> workload -> engine (per pool) -> canonical tables."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from pipelines.simulator.cluster import Cluster, build_cluster
from pipelines.simulator.engine import simulate_pool
from pipelines.simulator.model import (
    MODEL_CLASSES,
    US,
    PoolJobs,
    PoolOutcome,
    PoolWorkload,
    SimConfig,
)
from pipelines.simulator.policies import discipline, routing_of
from pipelines.simulator.routing import MODE_CODE, route
from pipelines.simulator.tables import (
    HIDDEN_JOB_COLUMNS,
    ground_truth_table,
    jobs_table,
    requests_table,
    samples_table,
)
from pipelines.simulator.workload import (
    STREAM_ENGINE,
    STREAM_ROUTING,
    generate_bursts,
    generate_pool_jobs,
    generate_pool_workload,
    stream,
)


@dataclass
class EngineRun:
    cluster: Cluster
    workloads: list[PoolWorkload]
    jobs: list[PoolJobs]
    outcomes: list[PoolOutcome]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def attempts(self) -> int:
        return sum(len(o.arrival_us) for o in self.outcomes)


@dataclass
class SimResult:
    requests: pl.DataFrame
    jobs: pl.DataFrame
    samples: pl.DataFrame
    ground_truth: pl.DataFrame
    timings: dict[str, float]

    @property
    def attempts(self) -> int:
        return self.requests.height


def run_engine(cfg: SimConfig) -> EngineRun:
    """Workload generation and the event loop only (no tables)."""
    t0 = time.perf_counter()
    cluster = build_cluster(cfg)
    bursts = generate_bursts(cfg)
    workloads = [generate_pool_workload(cfg, p, bursts[p]) for p in range(len(cfg.pools))]
    jobs = [generate_pool_jobs(cfg, p) for p in range(len(cfg.pools))]
    t1 = time.perf_counter()
    return run_workloads(cfg, cluster, workloads, jobs, {"workload_s": t1 - t0})


def run_workloads(cfg: SimConfig, cluster: Cluster, workloads: list[PoolWorkload],
                  jobs: list[PoolJobs], timings: dict[str, float] | None = None) -> EngineRun:
    """The event loop on given workloads and jobs (the what-if replay enters here).

    With a routing policy, requests are first re-assigned across pools (`routing.route`); the
    returned run holds the routed workloads, which the outcomes index."""
    t1 = time.perf_counter()
    workloads = routed(cfg, cluster, workloads, jobs)
    outcomes = []
    for p, spec in enumerate(cfg.pools):
        lo, hi = cluster.pool_offset[p], cluster.pool_offset[p + 1]
        outcomes.append(simulate_pool(
            workloads[p], jobs[p], cfg.windows_for(spec.name), cluster.gpu_reserved[lo:hi],
            cfg.gpus_per_node, cfg.client, stream(cfg.seed, STREAM_ENGINE, p),
            round(cfg.duration_s * US),
        ))
    t2 = time.perf_counter()
    return EngineRun(cluster, workloads, jobs, outcomes, dict(timings or {}, engine_s=t2 - t1))


def routed(cfg: SimConfig, cluster: Cluster, workloads: list[PoolWorkload],
           jobs: list[PoolJobs] | None = None) -> list[PoolWorkload]:
    """Apply the routing policies in force at each request's arrival (in its own pool)."""
    modes, any_routing = [], False
    for spec, wl in zip(cfg.pools, workloads, strict=True):
        m = np.zeros(len(wl), dtype=np.int8)
        wins = sorted(cfg.windows_for(spec.name), key=lambda w: w.start_s)
        for i, w in enumerate(wins):
            rp = routing_of(w.policies)
            if rp is None:
                continue
            any_routing = True
            lo = round(w.start_s * US)
            hi = round(wins[i + 1].start_s * US) if i + 1 < len(wins) else 1 << 62
            m[(wl.arrival_us >= lo) & (wl.arrival_us < hi)] = MODE_CODE[rp]
        modes.append(m)
    if not any_routing:
        return workloads
    serves = [{MODEL_CLASSES.index(c) for c, w in spec.model_mix.items() if w > 0}
              for spec in cfg.pools]
    slots, shared = [], []
    for p, spec in enumerate(cfg.pools):
        lo, hi = cluster.pool_offset[p], cluster.pool_offset[p + 1]
        sep = any(discipline(w.policies).reserved_batch for w in cfg.windows_for(spec.name))
        n_res = int(cluster.gpu_reserved[lo:hi].sum()) if sep else 0
        slots.append(cluster.pool_gpus(p) - n_res)
        pj = jobs[p] if jobs is not None and not sep else None
        shared.append((pj.submit_us, pj.gpus, pj.duration_us) if pj is not None else
                      (np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64)))
    return route(workloads, slots, serves, modes, stream(cfg.seed, STREAM_ROUTING), shared)


def simulate(cfg: SimConfig) -> SimResult:
    """Simulate `cfg` into the canonical requests / jobs / samples tables + ground truth."""
    run = run_engine(cfg)
    t0 = time.perf_counter()
    requests = requests_table(cfg, run.cluster, run.workloads, run.outcomes)
    jobs = jobs_table(cfg, run.cluster, run.jobs, run.outcomes)
    t1 = time.perf_counter()
    samples = (samples_table(cfg, run.cluster, run.workloads, run.jobs, run.outcomes)
               if cfg.telemetry else pl.DataFrame())
    t2 = time.perf_counter()
    gt = ground_truth_table(cfg, run.cluster, run.workloads, jobs, requests)
    jobs = jobs.drop(list(HIDDEN_JOB_COLUMNS))
    t3 = time.perf_counter()
    timings = dict(run.timings, tables_s=t1 - t0, telemetry_s=t2 - t1, ground_truth_s=t3 - t2)
    return SimResult(requests, jobs, samples, gt, timings)
