"""Top level: config -> workload -> engine (per pool) -> canonical tables."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import polars as pl

from pipelines.simulator.cluster import Cluster, build_cluster
from pipelines.simulator.engine import simulate_pool
from pipelines.simulator.model import US, PoolJobs, PoolOutcome, PoolWorkload, SimConfig
from pipelines.simulator.tables import (
    HIDDEN_JOB_COLUMNS,
    ground_truth_table,
    jobs_table,
    requests_table,
    samples_table,
)
from pipelines.simulator.workload import (
    STREAM_ENGINE,
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
    outcomes = []
    for p, spec in enumerate(cfg.pools):
        lo, hi = cluster.pool_offset[p], cluster.pool_offset[p + 1]
        outcomes.append(simulate_pool(
            workloads[p], jobs[p], cfg.windows_for(spec.name), cluster.gpu_reserved[lo:hi],
            cfg.gpus_per_node, cfg.client, stream(cfg.seed, STREAM_ENGINE, p),
            round(cfg.duration_s * US),
        ))
    t2 = time.perf_counter()
    return EngineRun(cluster, workloads, jobs, outcomes,
                     {"workload_s": t1 - t0, "engine_s": t2 - t1})


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
