"""Simulator throughput on the demo configuration.

    python benchmarks/bench_simulator.py [--scale 1.0] [--seed 7]

Three measurements: the event loop alone (plus vectorized workload generation), the full
simulation into canonical tables, and the demo pilot generation including Parquet writing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pipelines.demo import generate_demo_pilot
from pipelines.simulator import demo_config, run_engine, simulate


def _line(label: str, attempts: int, seconds: float) -> None:
    print(f"{label:<40} {attempts:>10,d} attempts {seconds:8.2f} s {attempts / seconds:>12,.0f}/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    cfg = demo_config(a.seed, a.scale)
    gpus = sum(p.nodes for p in cfg.pools) * cfg.gpus_per_node
    print(f"demo config: seed {a.seed}, scale {a.scale}, {len(cfg.pools)} pools, {gpus} GPUs, "
          f"{cfg.duration_s / 3600:.2f} h simulated")

    run = run_engine(cfg)
    t = run.timings
    _line("event loop only", run.attempts, t["engine_s"])
    _line("workload generation + event loop", run.attempts, t["workload_s"] + t["engine_s"])

    t0 = time.perf_counter()
    res = simulate(cfg)
    dt = time.perf_counter() - t0
    _line("simulation -> canonical tables", res.attempts, dt)
    print("  breakdown: " + ", ".join(f"{k} {v:.2f}" for k, v in res.timings.items()))

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder = generate_demo_pilot(Path(tmp), a.seed, a.scale)
        dt = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    _line("demo pilot incl. Parquet writing", res.attempts, dt)
    print(f"  rows: requests {res.requests.height:,}, jobs {res.jobs.height:,}, "
          f"samples {res.samples.height:,}, ground truth {res.ground_truth.height:,}; "
          f"{size / 1e6:.1f} MB on disk")


if __name__ == "__main__":
    main()
