"""Spark rehearsal (issue #17): the bench pilot's SQL stages on `local[2]` Spark beside DuckDB.

    .venv/bin/python benchmarks/bench_spark.py WAREHOUSE [--out DIR] [--master local[2]]

WAREHOUSE is a bench warehouse after its ingest (bench_suite.py --work DIR keeps one at
DIR/<size>/warehouse.duckdb). Two copies are made beside it: on one, every SQL model of the
staging, metrics and analytics stages is built on DuckDB (build_model), on the other on Spark
exactly as `STABILIS_SQL_ENGINE=spark` builds an asset (pipelines/engine/build.py: the
model's inputs exported to Parquet, the translated SQL on Spark, its result loaded back).
Both run in this process, one after the other, so they see the same machine load; the Spark
session's start is timed apart. Results: <out>/bench_spark.json and bench_spark.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_suite import PILOT, SQL_STAGES, _stage_models, label  # noqa: E402


def _copy(db: Path, name: str) -> Path:
    dst = db.parent / name
    shutil.copyfile(db, dst)
    return dst


def run_duckdb(db: Path) -> dict[str, dict[str, float]]:
    from pipelines.sql_models import build_model
    from pipelines.warehouse import connect

    con = connect(db)
    out: dict[str, dict[str, float]] = {}
    for stage in SQL_STAGES:
        out[stage] = {}
        for name in _stage_models(stage):
            t = time.perf_counter()
            build_model(con, name, PILOT)
            out[stage][name] = round(time.perf_counter() - t, 3)
    con.close()
    return out


def run_spark(db: Path, master: str) -> tuple[float, dict[str, dict[str, float]]]:
    from pipelines.engine.build import build_on_spark, exchange_folder
    from pipelines.engine.spark import SparkEngine, shared_session
    from pipelines.warehouse import connect

    t = time.perf_counter()
    eng = SparkEngine(shared_session(master))
    start_s = round(time.perf_counter() - t, 3)
    con = connect(db)
    folder = exchange_folder(con, "bench_spark")
    out: dict[str, dict[str, float]] = {}
    for stage in SQL_STAGES:
        out[stage] = {}
        for name in _stage_models(stage):
            t = time.perf_counter()
            build_on_spark(con, eng, name, PILOT, folder)
            out[stage][name] = round(time.perf_counter() - t, 3)
            print(f"  spark {stage:<10} {name:<32} {out[stage][name]:8.2f} s", flush=True)
    con.close()
    return start_s, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("warehouse", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()

    from pipelines.warehouse import connect

    con = connect(args.warehouse, read_only=True)
    (attempts,) = con.execute("SELECT count(*) FROM requests WHERE pilot = $p",
                              {"p": PILOT}).fetchone()
    con.close()
    duck = run_duckdb(_copy(args.warehouse, "bench_spark_duckdb.duckdb"))
    start_s, spark = run_spark(_copy(args.warehouse, "bench_spark_spark.duckdb"), args.master)
    res = {"generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "attempts": attempts,
           "master": args.master, "spark_session_start_s": start_s, "duckdb": duck,
           "spark": spark, "load_avg": os.getloadavg()[0]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_spark.json").write_text(json.dumps(res, indent=1))
    lines = [f"# Spark rehearsal ({res['generated']})", "",
             f"{label(attempts)} attempts (bench pilot), Spark `{args.master}` against DuckDB on "
             f"the same warehouse, one after the other in one process; load avg "
             f"{res['load_avg']:.1f} at the end. Spark session start {start_s:.1f} s (not in "
             "the stage times). Spark times include the Parquet exchange of each model "
             "(inputs out of DuckDB, result back in).", "",
             "| stage | models | DuckDB s | Spark s | Spark / DuckDB |",
             "|---|---:|---:|---:|---:|"]
    for stage in SQL_STAGES:
        d, s = sum(duck[stage].values()), sum(spark[stage].values())
        lines.append(f"| {stage} | {len(duck[stage])} | {d:.2f} | {s:.2f} | {s / d:.1f}x |")
    lines += ["", "| model | stage | DuckDB s | Spark s |", "|---|---|---:|---:|"]
    rows = [(spark[st][n], n, st) for st in SQL_STAGES for n in spark[st]]
    for s, n, st in sorted(rows, reverse=True):
        lines.append(f"| {n} | {st} | {duck[st][n]:.2f} | {s:.2f} |")
    (args.out / "bench_spark.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:12 + len(SQL_STAGES)]))


if __name__ == "__main__":
    main()
