"""Benchmark the issue-#4 analytics stage on synthetic canonical-shaped rows.

10 M attempts (int_attempts) and 2 M GPU samples (int_gpu_samples) are generated directly in
DuckDB SQL (seconds, not the simulator), plus jobs, phases, thresholds and SLA targets; the
upstream burst_windows / burst_episodes are built untimed, metrics_headline is stubbed (its
cost belongs to the headline stage). Then every analytics model is built in a fresh process
that reports wall time and peak RSS, and the total is compared with one DuckDB scan of the
same columns. Usage: python benchmarks/bench_analytics.py [--attempts N] [--samples N] [DB]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ANALYTICS = ("int_thresholds", "int_pool_minutes", "burst_amplification",
             "arrival_burstiness", "idle_overload_states", "queue_saturation_zones",
             "int_wave_events", "latency_cascade_paths", "indices", "sync_map", "findings",
             "patterns_tested")
PILOT = "bench"


def generate(db: Path, attempts: int, samples: int) -> None:
    from pipelines.config import DEFAULT_THRESHOLDS
    from pipelines.sql_models import build_model
    from pipelines.warehouse import SQL_DIR

    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    for ddl in sorted((SQL_DIR / "staging").glob("*.sql")):
        con.execute(ddl.read_text())
    span_s = 6 * 3600
    con.execute("INSERT INTO phases VALUES ('bench', 'baseline', TIMESTAMP '2026-01-01', "
                "TIMESTAMP '2026-01-01 04:00'), ('bench', 'validation', "
                "TIMESTAMP '2026-01-01 04:00', TIMESTAMP '2026-01-01 06:00')")
    con.executemany("INSERT INTO thresholds VALUES ('bench', ?, ?)",
                    list(DEFAULT_THRESHOLDS.items()))
    con.execute("INSERT INTO sla_targets VALUES ('bench','P0',6000,NULL),('bench','P1',10000,"
                "NULL),('bench','P2',15000,NULL),('bench','P3',25000,NULL)")
    con.execute("INSERT INTO pilot_scope VALUES ('bench', 'pools', ['pool-1'], NULL, NULL)")
    build_model(con, "int_thresholds", PILOT)
    # attempts: 8 pools, Poisson-ish arrivals with a bursty modulation, waits and service
    con.execute(f"""
        CREATE TABLE int_attempts AS
        WITH r AS (
            SELECT i, hash(i) AS h, hash(i * 7 + 1) AS h2,
                   CAST(i * ({span_s}e6 / {attempts}) AS BIGINT) AS t_us FROM range({attempts}) t(i)
        ), x AS (
            SELECT i, 'pool-' || (h % 8) AS pool, (h2 % 4) AS pr,
                   1767225600000000 + t_us AS arrival_us,
                   CASE WHEN (t_us // 60000000) % 17 = 0 THEN (h % 15000) / 1000.0
                        ELSE (h % 1000) / 1000.0 END AS wait_s,
                   0.2 + (h2 % 5000) / 1000.0 AS svc_s
            FROM r
        )
        SELECT 'bench' AS pilot, CAST(i % 10 = 0 AS INTEGER) AS attempt, pool,
               pool || '-g' || CAST(i % 32 AS VARCHAR) AS gpu, 'P' || pr AS priority,
               make_timestamp(arrival_us) AS arrival_ts,
               make_timestamp(arrival_us + CAST(wait_s * 1e6 AS BIGINT)) AS start_ts,
               make_timestamp(arrival_us + CAST((wait_s + svc_s) * 1e6 AS BIGINT)) AS end_ts,
               CASE WHEN wait_s > 14 THEN 'timeout' ELSE 'ok' END AS status,
               CASE WHEN arrival_us < 1767225600000000 + 4 * 3600e6 THEN 'baseline'
                    ELSE 'validation' END AS phase,
               CASE WHEN pool = 'pool-1' THEN 'treatment' ELSE 'control' END AS segment,
               wait_s + svc_s <= 6 + pr * 4 AS logical_met_sla, arrival_us,
               wait_s AS queue_wait_s, wait_s * 0.9 AS sched_delay_s, wait_s + svc_s AS e2e_s,
               svc_s AS service_s, wait_s + 0.1 AS ttft_s
        FROM x""")
    per = samples // 3
    con.execute(f"""
        CREATE TABLE int_gpu_samples AS
        WITH g AS (SELECT i, i % 256 AS gi, i // 256 AS k FROM range({per}) t(i))
        SELECT 'bench' AS pilot, 'pool-' || (gi % 8) AS pool, 'n' || (gi // 8) AS node,
               'pool-' || (gi % 8) || '-g' || CAST(gi // 8 AS VARCHAR) AS gpu, s.series,
               make_timestamp(1767225600000000 + CAST(k * ({span_s}e6 / ({per} / 256))
                                                      AS BIGINT)) AS ts,
               1767225600000000 + CAST(k * ({span_s}e6 / ({per} / 256)) AS BIGINT) AS ts_us,
               CASE s.series WHEN 'power_w' THEN 200 + (hash(i) % 400)
                    ELSE (hash(i + s.o) % 1000) / 1000.0 END AS value,
               {span_s} / ({per} / 256.0) AS dt_s,
               CASE WHEN k * ({span_s} / ({per} / 256.0)) < 4 * 3600 THEN 'baseline'
                    ELSE 'validation' END AS phase,
               CASE WHEN gi % 8 = 1 THEN 'treatment' ELSE 'control' END AS segment
        FROM g, (VALUES ('gpu_util', 0), ('sm_active', 1), ('power_w', 2)) s(series, o)""")
    con.execute(f"""
        INSERT INTO jobs
        SELECT 'bench', 'j' || i, 'batch', 'q', 5000, NULL, NULL, st, st + to_seconds(600 +
               CAST(hash(i) % 3000 AS BIGINT)), 'n', 'pool-' || (i % 8), 2,
               ['pool-' || (i % 8) || '-g0', 'pool-' || (i % 8) || '-g1'], 'COMPLETED'
        FROM (SELECT i, TIMESTAMP '2026-01-01' + to_seconds(CAST(i * {span_s} / 300 AS BIGINT))
              AS st FROM range(300) t(i))""")
    con.execute("""CREATE TABLE metrics_headline (pilot VARCHAR, phase VARCHAR, segment VARCHAR,
        breakdown VARCHAR, breakdown_value VARCHAR, metric VARCHAR, value DOUBLE, unit VARCHAR,
        basis VARCHAR, note VARCHAR)""")
    for m in ("burst_windows", "burst_episodes"):
        build_model(con, m, PILOT)
    con.close()


def stage(db: Path) -> None:
    """Run in a fresh process: build the analytics models, print JSON timings + peak RSS."""
    from pipelines.sql_models import SqlModel, build_model
    from pipelines.warehouse import SQL_DIR

    con = duckdb.connect(str(db))
    t0 = time.perf_counter()
    con.execute("SELECT count(*), sum(arrival_us), sum(queue_wait_s), sum(e2e_s), "
                "count(DISTINCT pool), sum(sched_delay_s), sum(CAST(logical_met_sla AS INT)),"
                " count(status), count(priority), sum(attempt) FROM int_attempts").fetchall()
    con.execute("SELECT count(*), sum(value * dt_s), sum(ts_us), count(DISTINCT gpu), "
                "count(series) FROM int_gpu_samples").fetchall()
    scan_s = time.perf_counter() - t0
    per = {}
    t0 = time.perf_counter()
    for name in ANALYTICS:
        layer = next(d.name for d in SQL_DIR.iterdir() if (d / f"{name}.sql").exists())
        t = time.perf_counter()
        rows = build_model(con, SqlModel(name, layer, ()), PILOT)
        per[name] = (round(time.perf_counter() - t, 2), rows)
    total = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"scan_s": round(scan_s, 2), "analytics_s": round(total, 2),
                      "ratio": round(total / scan_s, 2), "peak_rss_mb": round(peak_mb),
                      "per_model": per}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db", nargs="?", type=Path, default=Path("/tmp/bench_analytics.duckdb"))
    ap.add_argument("--attempts", type=int, default=10_000_000)
    ap.add_argument("--samples", type=int, default=2_000_000)
    ap.add_argument("--stage-only", action="store_true")
    a = ap.parse_args()
    if a.stage_only:
        stage(a.db)
        return
    t = time.perf_counter()
    generate(a.db, a.attempts, a.samples)
    print(f"generated {a.attempts:,} attempts + {a.samples:,} samples in "
          f"{time.perf_counter() - t:.1f} s")
    out = subprocess.run([sys.executable, __file__, str(a.db), "--stage-only"],
                         capture_output=True, text=True, check=True).stdout
    r = json.loads(out)
    for name, (sec, rows) in r["per_model"].items():
        print(f"  {name:28s} {rows:10,d} rows {sec:7.2f} s")
    print(f"analytics stage {r['analytics_s']:.2f} s, one scan of the same columns "
          f"{r['scan_s']:.2f} s, ratio {r['ratio']:.2f}x (goal <= 3x), "
          f"peak RSS {r['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
