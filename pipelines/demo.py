"""Demo pilot: a simulated, compressed pilot landing folder (pilot.yaml + canonical Parquet).

The baseline runs every pool under today's policy (shared FIFO, batch jobs on the same GPUs);
in the validation phase the treatment pools (`scope`) run priority scheduling with
inference-batch separation, the control pools stay as they were. The workload process is the
same in both phases. `ground_truth.*` lists every injected event (bursts of graded strength,
idle->overload oscillations, service slowdowns, batch jobs, the policy change) with what it
truly caused (pipelines/analytics/ground_truth.py), so detectors can be scored; it is never
ingested as telemetry.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from pipelines.analytics.ground_truth import ground_truth_events
from pipelines.anonymize import DEMO_SECRET_ENV  # the demo's published secret
from pipelines.simulator.policies import ADJUSTMENT_NAMES, Policy
from pipelines.simulator.runner import SimResult, simulate
from pipelines.simulator.scenarios import (
    DEMO_CLIENT,
    DEMO_TREATMENT_POOLS,
    demo_config,
    demo_validation_start_s,
)

SLUG = "demo-cluster-a"
# Fit to the simulated service times: P0 mostly met, P2/P3 lose out under bursts.
DEMO_SLA: dict[str, dict[str, int]] = {
    "P0": {"e2e_ms": 6000, "ttft_ms": 2000},
    "P1": {"e2e_ms": 10000},
    "P2": {"e2e_ms": 15000},
    "P3": {"e2e_ms": 25000},
}
REQUESTS_PER_FILE = 500_000


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def pilot_yaml(start: datetime, validation: datetime, end: datetime, seed: int, scale: float,
               day_s: float) -> str:
    sla = "\n".join(
        f"  {p}: {{{', '.join(f'{k}: {v}' for k, v in t.items())}}}" for p, t in DEMO_SLA.items()
    )
    adjustments = ", ".join(
        ADJUSTMENT_NAMES[p] for p in (Policy.BATCH_SEPARATION, Policy.PRIORITY))
    return f"""\
# Simulated by Stabilis (seed {seed}, scale {scale}). COMPRESSED PILOT: the phases last hours,
# not weeks, and one 24 h daily cycle is played in {day_s / 60:.0f} min, so the demo runs
# in seconds. Baseline: every pool under today's shared FIFO with batch jobs on the same GPUs.
# Validation: the scope pools run priority scheduling + inference-batch separation.
pilot: {SLUG}
title: "Demo: latency-sensitive serving on a shared GPU cluster (simulated)"
timezone: Europe/Berlin
phases:
  baseline:   {{start: {_iso(start)}, end: {_iso(validation)}}}
  validation: {{start: {_iso(validation)}, end: {_iso(end)}}}
scope: {{pools: [{", ".join(DEMO_TREATMENT_POOLS)}]}}   # treatment pools, ~35 % of traffic
sla:
{sla}
timeout_ms: {round(DEMO_CLIENT.timeout_ms or 0)}
adjustments: [{adjustments}]
sources:
  - {{kind: canonical, table: requests, path: "requests/*.parquet"}}
  - {{kind: canonical, table: jobs, path: "jobs/jobs.parquet"}}
  - {{kind: canonical, table: samples, path: "samples/*.parquet"}}
anonymization: {{secret_env: {DEMO_SECRET_ENV}}}
"""


def write_tables(res: SimResult, folder: Path) -> None:
    for sub in ("requests", "jobs", "samples"):
        shutil.rmtree(folder / sub, ignore_errors=True)  # no stale parts from an older run
        (folder / sub).mkdir(parents=True)
    for i, start in enumerate(range(0, max(res.requests.height, 1), REQUESTS_PER_FILE)):
        part = res.requests.slice(start, REQUESTS_PER_FILE)
        part.write_parquet(folder / "requests" / f"part-{i:03d}.parquet", compression="zstd")
    res.jobs.write_parquet(folder / "jobs" / "jobs.parquet", compression="zstd")
    res.samples.write_parquet(folder / "samples" / "samples.parquet", compression="zstd")


def write_ground_truth(gt: pl.DataFrame, folder: Path) -> None:
    gt.write_parquet(folder / "ground_truth.parquet", compression="zstd")
    gt.write_csv(folder / "ground_truth.csv", datetime_format="%Y-%m-%dT%H:%M:%S%.6fZ")


def generate_demo_pilot(out_dir: Path, seed: int = 7, scale: float = 1.0) -> Path:
    """Simulate the demo cluster and write its landing folder `out_dir/demo-cluster-a/`."""
    cfg = demo_config(seed, scale)
    res = simulate(cfg)
    folder = Path(out_dir) / SLUG
    folder.mkdir(parents=True, exist_ok=True)
    start = cfg.start
    validation = start + timedelta(seconds=demo_validation_start_s(cfg))
    end = start + timedelta(seconds=cfg.duration_s)
    (folder / "pilot.yaml").write_text(
        pilot_yaml(start, validation, end, seed, scale, cfg.arrivals.day_period_s))
    write_tables(res, folder)
    write_ground_truth(ground_truth_events(cfg), folder)
    return folder


def main() -> None:  # pragma: no cover - convenience entry point
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--scale", type=float, default=1.0)
    a = ap.parse_args()
    print(generate_demo_pilot(a.out_dir, a.seed, a.scale))


if __name__ == "__main__":  # pragma: no cover
    main()


__all__ = ["DEMO_SLA", "SLUG", "generate_demo_pilot", "pilot_yaml"]
