"""Benchmark: the demo pilot end to end after install, step by step.

    .venv/bin/python benchmarks/bench_demo.py [--scale 1.0] [--seed 7]

Steps are timed separately (simulate + write Parquet, ingest, each SQL table, report) and
then once more together through Dagster, as `make demo` runs them. Works in a temporary
folder so it never touches ./data.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    from pipelines.config import load_pilot
    from pipelines.demo import generate_demo_pilot
    from pipelines.ingest.load import ingest_pilot
    from pipelines.sql_models import MODELS, build_model
    from pipelines.warehouse import connect, ensure_schema
    from reports.model import build_report_model
    from reports.render import render_report

    timings: list[tuple[str, float]] = []

    def timed(label: str, fn, *a, **kw):
        t0 = time.perf_counter()
        out = fn(*a, **kw)
        timings.append((label, time.perf_counter() - t0))
        return out

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        pilot_dir = timed(
            "simulate + write",
            generate_demo_pilot,
            base / "landing",
            seed=args.seed,
            scale=args.scale,
        )
        con = connect(base / "w.duckdb")
        ensure_schema(con)
        cfg = load_pilot(pilot_dir)
        timed("ingest", ingest_pilot, con, cfg)
        attempts = con.execute("SELECT count(*) FROM requests").fetchone()[0]
        samples = con.execute("SELECT count(*) FROM samples").fetchone()[0]
        for m in MODELS:
            timed(f"sql {m.name}", build_model, con, m, cfg.pilot)
        model = timed(
            "report model",
            build_report_model,
            con,
            cfg.pilot,
            run_id="bench",
            pipeline_version="bench",
            generated_at=datetime.now(UTC).replace(tzinfo=None),
        )
        con.close()
        timed("render html + pdf", render_report, model, base / "reports")

        total = sum(t for _, t in timings)
        print(f"demo pilot: {attempts:,} request attempts, {samples:,} samples, scale {args.scale}")
        for label, t in timings:
            print(f"  {label:<32} {t:7.2f} s")
        print(f"  {'total (steps)':<32} {total:7.2f} s")

        import dagster as dg
        from dagster_duckdb import DuckDBResource

        from pipelines.resources import PilotPaths
        from pipelines.runner import run_pilot

        resources = {
            "warehouse": DuckDBResource(database=str(base / "dagster.duckdb")),
            "paths": PilotPaths(
                landing_dir=str(base / "landing"), reports_dir=str(base / "reports2")
            ),
        }
        t0 = time.perf_counter()
        result = run_pilot(
            cfg.pilot, resources=resources, dagster_instance=dg.DagsterInstance.ephemeral()
        )
        t_dagster = time.perf_counter() - t0
        assert result.success
        print(f"  {'ingest..report through Dagster':<32} {t_dagster:7.2f} s")
        sim = dict(timings)["simulate + write"]
        print(f"  {'demo run (simulate + Dagster)':<32} {sim + t_dagster:7.2f} s")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak RSS {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
