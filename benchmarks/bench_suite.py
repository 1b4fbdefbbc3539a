"""Benchmark suite (issue #8): every stage at 1 M and 10 M attempts, against the floor.

    .venv/bin/python benchmarks/bench_suite.py [--sizes 1M,10M] [--huge] [--out DIR] [--work DIR]

For each size it writes a canonical landing folder (requests, samples, jobs as Parquet, made
by DuckDB SQL in seconds: bursty arrivals, retries, timeouts, batch jobs; samples = attempts
/ 5, jobs = attempts / 33 k) and runs the pipeline stage by stage, each stage in a fresh
process that reports its wall time, CPU time (all threads) and peak RSS:

    ingest      pilot.yaml + Parquet -> staging tables (validation, anonymization)
    staging     int_thresholds, int_retried_requests, int_attempts, int_logical_requests (a
                view), int_gpu_samples
    metrics     burst windows/episodes, headline, before/after, DiD, pool/energy windows
    analytics   issue #4: every SQL model from int_pool_minutes on (pipelines/sql_models.py)
    statistics  block-bootstrap intervals, energy-latency correlation
    report      report model, HTML and PDF

Floors (benchmarks/floors.py, fresh process after analytics): for the ingest, each SQL stage,
each layer (intermediate, metrics, topology) and each model, one DuckDB pass over the columns
it reads; bench.md shows every ratio and a per-model profile. Peers (fresh processes after
the floors): a competent pandas (benchmarks/pandas_peer.py) and a Polars lazy-frame peer
(benchmarks/polars_peer.py) compute the headline request metrics, int_pool_minutes and
arrival_burstiness from the same rows and are checked against the SQL tables; the suite
reports each peer's time over the SQL model's. Peers and floors are comparisons, not pipeline
stages: they are outside the totals and the peak-RSS goal. Throughput is attempts / wall
seconds of ingest through statistics (the report excluded; its time has its own goal).
Results: <out>/bench.json and <out>/bench.md (default benchmarks/results/), table printed.
Timings are wall-clock on a possibly shared machine: CPU seconds are printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PILOT = "bench"
SECRET_ENV = "STABILIS_BENCH_SECRET"
SPAN_S = 6 * 3600  # 4 h baseline + 2 h validation
T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
POOLS, GPUS_PER_POOL = 8, 32
STAGES = ("ingest", "staging", "metrics", "analytics", "statistics", "report")
SQL_STAGES = ("staging", "metrics", "analytics")
LAYERS = ("intermediate", "metrics", "topology")  # pipelines/sql_models.py layers
PIPELINE = STAGES[:-1]  # ingest through statistics: the throughput's denominator
PEERS = ("pandas", "polars")
PEER_MAX_ATTEMPTS = 10_000_000
GOALS = {"throughput_aps": 250_000.0, "floor_ratio": 3.0, "peak_rss_mib": 4096.0,
         "report_s": 15.0, "scaling_10x": 12.0}


def parse_size(s: str) -> int:
    s = s.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000, "G": 1_000_000_000}.get(s[-1:], 1)
    return int(float(s[:-1] if s[-1:] in "KMG" else s) * mult)


def label(n: int) -> str:
    for unit, div in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= div and n % (div // 10) == 0:
            return f"{n / div:g}{unit}"
    return str(n)


# --------------------------------------------------------------------------- generation

def pilot_yaml() -> str:
    return f"""\
pilot: {PILOT}
title: "Benchmark pilot (synthetic)"
timezone: UTC
phases:
  baseline:   {{start: 2026-01-01T00:00:00Z, end: 2026-01-01T04:00:00Z}}
  validation: {{start: 2026-01-01T04:00:00Z, end: 2026-01-01T06:00:00Z}}
scope: {{pools: [pool-1]}}
sla:
  P0: {{e2e_ms: 6000, ttft_ms: 2000}}
  P1: {{e2e_ms: 10000}}
  P2: {{e2e_ms: 15000}}
  P3: {{e2e_ms: 25000}}
timeout_ms: 30000
sources:
  - {{kind: canonical, table: requests, path: "requests/hour=*/*.parquet"}}
  - {{kind: canonical, table: samples, path: "samples/*.parquet"}}
  - {{kind: canonical, table: jobs, path: "jobs/jobs.parquet"}}
anonymization: {{secret_env: {SECRET_ENV}}}
"""


def generate(pilot_dir: Path, attempts: int, part_rows: int = 2_000_000) -> dict[str, int]:
    """Write the landing folder: canonical Parquet made set-based by DuckDB (no Python rows)."""
    import duckdb

    for sub in ("requests", "samples", "jobs"):
        (pilot_dir / sub).mkdir(parents=True, exist_ok=True)
    (pilot_dir / "pilot.yaml").write_text(pilot_yaml())
    con = duckdb.connect()
    # Requests land per hour, hive-style (requests/hour=HH/part-KKK-I.parquet), as a large
    # pilot's export would: the pilot.yaml glob reads the folders, the key stays in the path.
    # Row i arrives at i * span / n; 6 % of a pool's rows are moved into a 20 s burst every
    # 20 minutes (~4x the pool's rate: burst windows and episodes exist), every 17th minute is
    # congested (long waits, timeouts), one row in ten is a retry of the row before it.
    for k, lo in enumerate(range(0, attempts, part_rows)):
        hi = min(attempts, lo + part_rows)
        con.execute(f"""
        COPY (
          WITH r AS (
            SELECT i, CAST(hash(i) % 1000000007 AS BIGINT) AS h,
                   CAST(hash(i * 7 + 1) % 1000000007 AS BIGINT) AS h2,
                   CAST(i * ({SPAN_S}e6 / {attempts}) AS BIGINT) AS t
            FROM range({lo}, {hi}) t(i)
          ), x AS (
            SELECT i, h, h2, h % {POOLS} AS p,
                   CASE WHEN h2 % 100 < 6
                        THEN t // 1200000000 * 1200000000 + (h % {POOLS}) * 97000000
                             + h % 20000000
                        ELSE t END AS t
            FROM r
          ), y AS (
            SELECT *, CASE WHEN (t // 60000000) % 17 = 0 THEN (h % 15000) / 1000.0
                           WHEN h2 % 100 < 6 THEN (h % 4000) / 1000.0
                           ELSE (h % 800) / 1000.0 END AS wait_s,
                      0.2 + (h2 % 5000) / 1000.0 AS svc_s
            FROM x
          )
          SELECT lpad(CAST(t // 3600000000 AS VARCHAR), 2, '0') AS hour,
                 'r' || i AS request_id,
                 CASE WHEN i % 10 = 9 THEN 'r' || (i - 1) END AS parent_request_id,
                 CAST(i % 10 = 9 AS INTEGER) AS attempt,
                 'pool-' || p AS pool, 'pool-' || p || '-n' || (i % {GPUS_PER_POOL} // 8) AS node,
                 'pool-' || p || '-g' || (i % {GPUS_PER_POOL}) AS gpu, 'llm' AS model_class,
                 'P' || (h2 % 4) AS priority,
                 make_timestamp({T0_US} + t) AS arrival_ts,
                 make_timestamp({T0_US} + t + CAST(wait_s * 0.9e6 AS BIGINT)) AS dispatch_ts,
                 make_timestamp({T0_US} + t + CAST(wait_s * 1e6 AS BIGINT)) AS start_ts,
                 make_timestamp({T0_US} + t + CAST((wait_s + 0.1) * 1e6 AS BIGINT))
                     AS first_token_ts,
                 make_timestamp({T0_US} + t + CAST((wait_s + svc_s) * 1e6 AS BIGINT)) AS end_ts,
                 CASE WHEN wait_s > 14 THEN 'timeout' ELSE 'ok' END AS status,
                 CAST(100 + h % 900 AS INTEGER) AS input_tokens,
                 CAST(20 + h2 % 300 AS INTEGER) AS output_tokens
          FROM y
        ) TO '{pilot_dir / "requests"}' (FORMAT parquet, PARTITION_BY (hour),
                FILENAME_PATTERN 'part-{k:03d}-{{i}}', OVERWRITE_OR_IGNORE true)""")
    gpus = POOLS * GPUS_PER_POOL
    ticks = max(1, attempts // 5 // 3 // gpus)  # samples ~ attempts / 5 over 3 series
    con.execute(f"""
    COPY (
      SELECT make_timestamp({T0_US} + CAST(k * ({SPAN_S}e6 / {ticks}) AS BIGINT)) AS ts,
             s.series, 'pool-' || (g % {POOLS}) AS pool,
             'pool-' || (g % {POOLS}) || '-n' || (g // {POOLS} // 8) AS node,
             'pool-' || (g % {POOLS}) || '-g' || (g // {POOLS}) AS gpu,
             CASE s.series WHEN 'power_w' THEN 200.0 + hash(g, k) % 400
                  WHEN 'gpu_util' THEN (hash(g, k) % 1000) / 1000.0
                  ELSE (hash(g, k) % 1000) / 1500.0 END AS value,
             NULL::DOUBLE AS le
      FROM range({gpus}) a(g), range({ticks}) b(k),
           (VALUES ('gpu_util'), ('sm_active'), ('power_w')) s(series)
      UNION ALL
      SELECT make_timestamp({T0_US} + k * 15000000), 'queue_waiting', 'pool-' || p, NULL,
             NULL, (hash(p, k) % 50) * 1.0, NULL
      FROM range({POOLS}) a(p), range({SPAN_S // 15}) b(k)
    ) TO '{pilot_dir / "samples" / "samples.parquet"}' (FORMAT parquet)""")
    jobs = max(10, attempts // 33_000)
    con.execute(f"""
    COPY (
      SELECT 'j' || i AS job_id, 'batch' AS kind, 'q' AS queue, 5000.0::DOUBLE AS priority,
             st AS submit_ts, st AS eligible_ts, st AS start_ts,
             st + to_seconds(600 + CAST(hash(i) % 3000 AS BIGINT)) AS end_ts,
             'pool-' || (i % {POOLS}) || '-n0' AS node, 'pool-' || (i % {POOLS}) AS pool,
             2 AS gpus, ['pool-' || (i % {POOLS}) || '-g0', 'pool-' || (i % {POOLS}) || '-g1']
                 AS gpu_ids, 'COMPLETED' AS state
      FROM (SELECT i, make_timestamp({T0_US} + CAST(i * ({SPAN_S}e6 / {jobs}) AS BIGINT)) AS st
            FROM range({jobs}) t(i))
    ) TO '{pilot_dir / "jobs" / "jobs.parquet"}' (FORMAT parquet)""")
    con.close()
    return {"attempts": attempts, "samples": gpus * ticks * 3 + POOLS * (SPAN_S // 15),
            "jobs": jobs}


# --------------------------------------------------------------------------- stages

def _stage_models(stage: str) -> list[str]:
    from pipelines.sql_models import MODELS

    names = [m.name for m in MODELS]
    a, b = names.index("int_gpu_samples") + 1, names.index("int_pool_minutes")
    return {"staging": names[:a], "metrics": names[a:b], "analytics": names[b:]}[stage]


def _floor_groups() -> dict[str, list[str]]:
    """Every group whose floor is measured: SQL stages, layers, models."""
    from pipelines.sql_models import MODELS

    groups = {f"stage:{s}": _stage_models(s) for s in SQL_STAGES}
    groups.update({f"layer:{ly}": [m.name for m in MODELS if m.layer == ly] for ly in LAYERS})
    groups.update({f"model:{m.name}": [m.name] for m in MODELS})
    return groups


def _floors(db: Path, pilot_dir: Path) -> dict[str, list[float]]:
    from benchmarks.floors import (
        floor_queries,
        parquet_floor_queries,
        time_queries,
        write_floors,
    )
    from pipelines.sql_models import MODELS
    from pipelines.warehouse import connect

    con = connect(db, read_only=True)
    queries = {g: floor_queries(con, names) for g, names in _floor_groups().items()}
    con.close()
    out = {"ingest": list(time_queries(db, PILOT, parquet_floor_queries(pilot_dir)))}
    out.update({g: list(time_queries(db, PILOT, qs)) for g, qs in queries.items()})
    # what writing each model's table costs by itself, summed per group (floors.py); a view
    # writes nothing
    per = write_floors(db, PILOT, [m.name for m in MODELS if not m.view],
                       db.with_name("floor_scratch.duckdb"))
    for g, names in _floor_groups().items():
        out[f"write:{g}"] = [round(sum(per.get(n, [0, 0])[i] for n in names), 3)
                             for i in (0, 1)]
    return out


def run_stage(stage: str, db: Path, pilot_dir: Path, smoke: bool = False) -> dict[str, Any]:
    """Run one stage in this process; returns its timings (imports excluded) and counts.

    `smoke` (tests only): 20 bootstrap resamples instead of 400 and no PDF."""
    from pipelines.warehouse import connect

    if stage == "ingest":
        from pipelines.config import load_pilot
        from pipelines.ingest.load import ingest_pilot
    elif stage in SQL_STAGES:
        from pipelines.sql_models import build_model
    elif stage == "statistics":
        from pipelines.statistics import (
            BootstrapConfig,
            build_energy_latency_corr,
            build_metrics_ci,
        )
    elif stage == "report":
        from reports.model import build_report_model
        from reports.render import render_html, render_report
    elif stage.startswith("peer_"):
        import importlib

        peer = importlib.import_module(f"benchmarks.{stage.removeprefix('peer_')}_peer")
    # DuckDB's Python client imports pandas on a process's first bound parameter (0.25-0.4 s,
    # measured): an import like the ones above, so it is done before the clock starts too
    import pandas  # noqa: F401

    # the stage's own children count too (the report draws its charts in child processes)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    con = None if stage == "floors" else connect(db, read_only=stage.startswith("peer_"))
    if stage == "ingest":
        summary = ingest_pilot(con, load_pilot(pilot_dir))
        out["rows"] = summary.rows_stored
    elif stage == "floors":
        out["floors"] = _floors(db, pilot_dir)
        out["rows"] = len(out["floors"])
    elif stage.startswith("peer_"):
        out.update(peer.run(con, PILOT))
    elif stage in SQL_STAGES:
        per: dict[str, list[float]] = {}
        for name in _stage_models(stage):
            t = time.perf_counter()
            rows = build_model(con, name, PILOT)
            per[name] = [round(time.perf_counter() - t, 3), rows]
        out["per_model"] = per
        out["rows"] = sum(r for _, r in per.values())
    elif stage == "statistics":
        cfg = BootstrapConfig(resamples=20) if smoke else BootstrapConfig()
        out["rows"] = (build_metrics_ci(con, PILOT, cfg)
                       + build_energy_latency_corr(con, PILOT, cfg))
    elif stage == "report":
        model = build_report_model(con, PILOT, run_id="bench", pipeline_version="bench",
                                   generated_at=datetime.now(UTC).replace(tzinfo=None))
        con.close()
        if smoke:
            out["rows"] = len(render_html(model).encode())  # bytes of HTML
        else:
            html, pdf = render_report(model, db.parent / "report")
            out["rows"] = html.stat().st_size + pdf.stat().st_size  # bytes written
    if con is not None and stage != "report":
        con.close()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["wall_s"] = round(time.perf_counter() - t0, 3)
    out["cpu_s"] = round(sum(b.ru_utime - a.ru_utime + b.ru_stime - a.ru_stime
                             for a, b in ((ru0, ru1), (ch0, ch1))), 3)
    # KiB on Linux; the whole process, and its largest child when it had any
    out["peak_rss_mib"] = round(max(ru1.ru_maxrss, ch1.ru_maxrss) / 1024, 1)
    return out


def _child(stage: str, db: Path, pilot_dir: Path, inline: bool, smoke: bool) -> dict[str, Any]:
    """The stage in a fresh process (its own peak RSS), or in this one with `inline`.

    A failing stage is recorded with its error and the suite goes on: later stages then
    measure what the warehouse holds."""
    if inline:
        try:
            return run_stage(stage, db, pilot_dir, smoke)
        except Exception as e:  # noqa: BLE001 - recorded in the results, not hidden
            return {"error": f"{type(e).__name__}: {e}"[:2000]}
    proc = subprocess.run(
        [sys.executable, __file__, "--_stage", stage, "--_db", str(db), "--_dir", str(pilot_dir),
         *(["--smoke"] if smoke else [])],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1][:2000] if proc.stderr.strip()
                else f"exit code {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _line(size: str, stage: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"  {size:>5} {stage:<12} FAILED: {r['error'][:200]}"
    return (f"  {size:>5} {stage:<12} {r['wall_s']:8.2f} s wall {r['cpu_s']:8.2f} s cpu"
            f" {r['peak_rss_mib']:8.0f} MiB")


def _get(r: dict[str, Any], key: str) -> float:
    return float(r.get(key) or 0.0)


def bench_size(attempts: int, work: Path, inline: bool = False, smoke: bool = False
               ) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    pilot_dir, db = work / PILOT, work / "warehouse.duckdb"
    shutil.rmtree(pilot_dir, ignore_errors=True)
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    t = time.perf_counter()
    counts = generate(pilot_dir, attempts)
    res: dict[str, Any] = {"size": label(attempts), **counts,
                           "generate_s": round(time.perf_counter() - t, 1), "stages": {},
                           "peers": {}}
    for stage in STAGES:
        res["stages"][stage] = r = _child(stage, db, pilot_dir, inline, smoke)
        print(_line(res["size"], stage, r), flush=True)
        if stage == "analytics":  # floors and peers read the tables the SQL stages wrote
            res["floors_run"] = f = _child("floors", db, pilot_dir, inline, smoke)
            print(_line(res["size"], "(floors)", f), flush=True)
            # peers hold their input in memory (pandas: several GiB at 10 M): compared up
            # to PEER_MAX_ATTEMPTS only, so the 100 M run measures the pipeline alone
            for peer in PEERS if attempts <= PEER_MAX_ATTEMPTS else ():
                res["peers"][peer] = p = _child(f"peer_{peer}", db, pilot_dir, inline, smoke)
                print(_line(res["size"], f"({peer})", p), flush=True)
    res["floor_ratios"] = _floor_ratios(res)
    res["peer_vs_duckdb"] = _peer_ratios(res)
    res["failed_stages"] = [s for s, r in res["stages"].items() if "error" in r]
    res["total_wall_s"] = round(sum(_get(s, "wall_s") for s in res["stages"].values()), 2)
    res["total_cpu_s"] = round(sum(_get(s, "cpu_s") for s in res["stages"].values()), 2)
    pipeline_s = sum(_get(res["stages"][s], "wall_s") for s in PIPELINE)
    res["pipeline_wall_s"] = round(pipeline_s, 2)
    res["throughput_aps"] = (round(attempts / pipeline_s) if pipeline_s and not
                             {*res["failed_stages"]} & set(PIPELINE) else None)
    res["report_s"] = res["stages"]["report"].get("wall_s")
    res["peak_rss_mib"] = max(_get(s, "peak_rss_mib") for s in res["stages"].values())
    res["inline"] = inline  # inline: peak RSS is the suite process's, cumulative
    res["smoke"] = smoke
    res["warehouse_mib"] = round(db.stat().st_size / 2**20, 1)
    return res


def _floor_ratios(res: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """group -> {time s, floor s, ratio} (wall): a stage's time is its stage's wall time, a
    layer's and a model's the sum of its models' build times."""
    floors = res["floors_run"].get("floors", {})
    per = {name: v[0] for s in SQL_STAGES for name, v in
           res["stages"][s].get("per_model", {}).items()}
    times: dict[str, float | None] = {"ingest": res["stages"]["ingest"].get("wall_s")}
    times.update({f"stage:{s}": res["stages"][s].get("wall_s") for s in SQL_STAGES})
    for g, names in _floor_groups().items():
        if not g.startswith("stage:"):
            times[g] = sum(per[n] for n in names) if all(n in per for n in names) else None
    cpu = {"ingest": res["stages"]["ingest"].get("cpu_s")}
    cpu.update({f"stage:{s}": res["stages"][s].get("cpu_s") for s in SQL_STAGES})
    out = {}
    for g, t in times.items():
        f, fc = floors.get(g, [None, None])
        w = floors.get(f"write:{g}", [None])[0]  # absent in runs before the write floor
        c = cpu.get(g)
        rw = f + w if f is not None and w is not None else None
        out[g] = {"time_s": t, "floor_s": f, "write_floor_s": w,
                  "ratio": round(t / max(f, 1e-3), 2) if t is not None and f else None,
                  # over read + write floor: the part of the time that is the query itself
                  "rw_ratio": round(t / max(rw, 1e-3), 2) if t is not None and rw else None,
                  # CPU seconds (all threads) over the floor's: steadier on a shared machine
                  "cpu_ratio": round(c / max(fc, 1e-3), 2) if c is not None and fc else None}
    return out


def _peer_ratios(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per peer table: the SQL model's build time, each peer's compute time (and with its
    share of the load), the ratios and the peer's max relative difference."""
    from benchmarks.peer_common import SQL_MODEL, TABLES

    per = {name: v[0] for s in SQL_STAGES for name, v in
           res["stages"][s].get("per_model", {}).items()}
    out: dict[str, dict[str, Any]] = {}
    for t in TABLES:
        parts = [per.get(m) for m in SQL_MODEL[t]]
        duck = None if None in parts else round(sum(parts), 3)
        row: dict[str, Any] = {"duckdb_s": duck}
        for peer, r in res["peers"].items():
            if "error" in r or duck is None:
                row[peer] = None
                continue
            c = r["compute_s"][t]
            load_share = r["load_s"] / len(TABLES)
            row[peer] = {"compute_s": c, "with_load_s": round(c + load_share, 3),
                         "ratio": round(c / max(duck, 1e-3), 2),
                         "with_load_ratio": round((c + load_share) / max(duck, 1e-3), 2),
                         "max_rel_diff": r["max_rel_diff"][t]}
        out[t] = row
    return out


# --------------------------------------------------------------------------- report

def _ok(value: float | None, goal: float, at_least: bool = False) -> str:
    if value is None:
        return "n/a"
    return "yes" if (value >= goal if at_least else value <= goal) else "**no**"


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Goals against the largest size (and its ratio to the size 10x smaller, when run)."""
    big = max(runs, key=lambda r: r["attempts"])
    small = next((r for r in runs if r["attempts"] * 10 == big["attempts"]), None)
    scaling = None
    if small:
        scaling = {s: round(_get(big["stages"][s], "wall_s")
                            / max(_get(small["stages"][s], "wall_s"), 1e-6), 2)
                   for s in STAGES if not {s} & {*big["failed_stages"], *small["failed_stages"]}}
        scaling["total"] = round(big["total_wall_s"] / max(small["total_wall_s"], 1e-6), 2)
    if small and big["failed_stages"] + small["failed_stages"]:
        scaling["total"] = None  # a failed stage makes the totals incomparable
    stage_ratios = {g: v["ratio"] for g, v in big["floor_ratios"].items()
                    if g == "ingest" or g.startswith(("stage:", "layer:"))}
    ratios = [v for v in stage_ratios.values() if v is not None]
    rw = [v["rw_ratio"] for g, v in big["floor_ratios"].items()
          if g.startswith(("stage:", "layer:")) and v.get("rw_ratio") is not None]
    # peers run up to PEER_MAX_ATTEMPTS: judged at the largest size they ran at
    peered = [r for r in runs if r["peer_vs_duckdb"]]
    peer_run = max(peered, key=lambda r: r["attempts"]) if peered else big
    peer_ok = [(v[p]["ratio"] >= 1.0) for v in peer_run["peer_vs_duckdb"].values()
               for p in PEERS if v.get(p)]
    return {"at": big["size"], "throughput_aps": big["throughput_aps"],
            "worst_floor_ratio": max(ratios) if ratios else None, "floor_ratios": stage_ratios,
            "worst_rw_floor_ratio": max(rw) if rw else None,
            "duckdb_ahead": (all(peer_ok) if peer_ok else None), "peers_at": peer_run["size"],
            "report_s": big["report_s"], "peak_rss_mib": big["peak_rss_mib"],
            "scaling_vs": small["size"] if small else None, "scaling": scaling}


def _fmt(v: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "n/a" if v is None else f"{v:{spec}}{suffix}"


def markdown(doc: dict[str, Any]) -> str:
    runs, g, G = doc["runs"], doc["goals"], GOALS
    ahead = {None: "n/a", True: "yes", False: "no"}[g["duckdb_ahead"]]
    lines = [f"# Benchmark suite ({doc['generated_at']})", "",
             f"Machine: {doc['machine']}. DuckDB memory_limit {doc['memory_limit']}. "
             "Wall seconds on a possibly shared machine; CPU seconds (all threads) beside them. "
             "Floor: one DuckDB pass over the columns the stage reads (benchmarks/floors.py).",
             "", f"Tokenization: {doc.get('tokenizer', 'not recorded')}. Machine speed: the "
             "floors run (plain DuckDB passes over the stages' inputs, nearly the same work "
             "from one version of the code to the next) sets the pace of the machine: "
             "compare it before comparing two suites' stage times: "
             + "; ".join(f"{r['size']} {r['floors_run']['wall_s']:.2f} s wall, "
                         f"{r['floors_run']['cpu_s']:.2f} s cpu" for r in runs
                         if "wall_s" in r.get("floors_run", {})) + ".",
             "", "| size | stage | wall s | cpu s | peak RSS MiB | rows | floor s | / floor | "
             "/ floor (cpu) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        for s in STAGES:
            x = r["stages"][s]
            if "error" in x:
                lines.append(f"| {r['size']} | {s} | failed | | | {x['error'][:120]} | | | |")
                continue
            fr = r["floor_ratios"].get("ingest" if s == "ingest" else f"stage:{s}", {})
            lines.append(f"| {r['size']} | {s} | {x['wall_s']:.2f} | {x['cpu_s']:.2f} | "
                         f"{x['peak_rss_mib']:.0f} | {x['rows']:,} | "
                         f"{_fmt(fr.get('floor_s'))} | {_fmt(fr.get('ratio'), '.2f', 'x')} | "
                         f"{_fmt(fr.get('cpu_ratio'), '.2f', 'x')} |")
        lines.append(f"| {r['size']} | **total** | {r['total_wall_s']:.2f} | "
                     f"{r['total_cpu_s']:.2f} | {r['peak_rss_mib']:.0f} | | | | |")
        pipe_cpu = sum(_get(r["stages"][s], "cpu_s") for s in PIPELINE)
        lines.append(f"| {r['size']} | **ingest..statistics** | {r['pipeline_wall_s']:.2f} | "
                     f"{pipe_cpu:.2f} | | {_fmt(r['throughput_aps'], ',.0f')} attempts/s | | | |")
    sc = (g["scaling"] or {}).get("total")
    lines += ["", f"## Goals at {g['at']}", "", "| goal | measured | target | met |",
              "|---|---:|---:|---|",
              f"| throughput, ingest..statistics | {_fmt(g['throughput_aps'], ',.0f')} "
              f"attempts/s | >= {G['throughput_aps']:,.0f} | "
              f"{_ok(g['throughput_aps'], G['throughput_aps'], at_least=True)} |",
              f"| worst stage / floor (wall) | {_fmt(g['worst_floor_ratio'], '.2f', 'x')} | "
              f"<= {G['floor_ratio']:g}x | {_ok(g['worst_floor_ratio'], G['floor_ratio'])} |",
              "| (not a goal) worst SQL stage / (read + write floor) | "
              f"{_fmt(g.get('worst_rw_floor_ratio'), '.2f', 'x')} | | |",
              f"| DuckDB ahead of both peers, every table (at {g.get('peers_at')}) | {ahead} "
              "| all | "
              f"{'n/a' if ahead == 'n/a' else ('yes' if ahead == 'yes' else '**no**')} |",
              f"| peak RSS, any stage | {g['peak_rss_mib']:.0f} MiB | "
              f"<= {G['peak_rss_mib']:.0f} MiB | {_ok(g['peak_rss_mib'], G['peak_rss_mib'])} |",
              f"| report render | {_fmt(g['report_s'], '.2f', ' s')} | <= {G['report_s']:g} s | "
              f"{_ok(g['report_s'], G['report_s'])} |",
              f"| time({g['at']}) / time({g['scaling_vs']}), all stages | "
              + (f"{sc:.2f} | <= {G['scaling_10x']:g} | {_ok(sc, G['scaling_10x'])} |"
                 if sc is not None else "n/a | <= 12 | n/a |")]
    lines += ["", "## Floor ratio per stage and layer (wall)", "",
              "Write floor: copying the group's own tables (benchmarks/floors.py); "
              "read + write floor is the least a group that materializes its tables costs.", "",
              "| size | group | time s | floor s | ratio | write floor s | / (read + write) |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for r in runs:
        for grp, v in r["floor_ratios"].items():
            if grp == "ingest" or grp.startswith(("stage:", "layer:")):
                lines.append(f"| {r['size']} | {grp} | {_fmt(v['time_s'])} | "
                             f"{_fmt(v['floor_s'])} | {_fmt(v['ratio'], '.2f', 'x')} | "
                             f"{_fmt(v.get('write_floor_s'))} | "
                             f"{_fmt(v.get('rw_ratio'), '.2f', 'x')} |")
    lines += ["", "## Peers (the same tables, checked equal to the SQL tables)", "",
              "DuckDB s is the SQL models' build time (for the headline: int_quantile_ranks, "
              "int_headline_quantiles and metrics_headline, which builds every headline metric, "
              "GPU, energy and jobs included; the peers compute its request metrics only). "
              "Peer 'with load' adds a third of its load time (rows out of DuckDB).", "",
              "| size | table | DuckDB s | pandas s | with load | pandas / DuckDB | polars s | "
              "with load | polars / DuckDB | max rel diff (pandas, polars) |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        for t, v in r["peer_vs_duckdb"].items():
            cells = []
            for p in PEERS:
                x = v.get(p)
                cells += (["failed", "", ""] if x is None else
                          [f"{x['compute_s']:.2f}", f"{x['with_load_s']:.2f}",
                           f"{x['ratio']:.2f}x"])
            diffs = ", ".join("n/a" if v.get(p) is None else f"{v[p]['max_rel_diff']:.1e}"
                              for p in PEERS)
            lines.append(f"| {r['size']} | {t} | {_fmt(v['duckdb_s'])} | " + " | ".join(cells)
                         + f" | {diffs} |")
    failed = [f"{r['size']}: {', '.join(r['failed_stages'])}" for r in runs if r["failed_stages"]]
    if failed:
        lines += ["", "**Failed stages** (their time is missing from the totals): "
                  + "; ".join(failed)]
    if any(r["smoke"] for r in runs):
        lines += ["", "Smoke run (--smoke): 20 bootstrap resamples, no PDF; not a benchmark."]
    if any(r["inline"] for r in runs):
        lines += ["", "Stages ran inline (--inline): peak RSS is the suite process's, cumulative."]
    if g["scaling"]:
        lines += ["", "Per stage time ratio " + f"{g['at']}/{g['scaling_vs']}: " + ", ".join(
            f"{s} {v:.2f}" for s, v in g["scaling"].items() if s != "total" and v is not None)]
    big = max(runs, key=lambda r: r["attempts"])
    lines += ["", f"## Per-model profile at {big['size']} (wall, slowest first)", "",
              "| model | stage | layer | time s | floor s | / floor | write floor s | "
              "/ (read + write) | rows |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    from pipelines.sql_models import BY_NAME

    prof = [(name, s, v) for s in SQL_STAGES
            for name, v in big["stages"][s].get("per_model", {}).items()]
    for name, s, (sec, rows) in sorted(prof, key=lambda x: -x[2][0]):
        fr = big["floor_ratios"].get(f"model:{name}", {})
        lines.append(f"| {name} | {s} | {BY_NAME[name].layer} | {sec:.2f} | "
                     f"{_fmt(fr.get('floor_s'))} | {_fmt(fr.get('ratio'), '.2f', 'x')} | "
                     f"{_fmt(fr.get('write_floor_s'))} | {_fmt(fr.get('rw_ratio'), '.2f', 'x')} | "
                     f"{rows:,} |")
    return "\n".join(lines) + "\n"


def _tokenizer() -> str:
    """Which HMAC the ingest stage ran: the compiled module (pipelines/_hmac.c) or the
    hashlib fallback of an install without a C compiler (several times the CPU)."""
    from pipelines import anonymize

    if anonymize._hmac is None:
        return "hashlib fallback (pipelines/_hmac.c not compiled)"
    return ("compiled, SHA extensions" if anonymize._hmac.accelerated()
            else "compiled, portable C (no SHA extensions)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1M,10M", help="attempts per run, e.g. 1M,10M or 20000")
    ap.add_argument("--huge", action="store_true", help="add 100M (hours, ~20 GB of disk)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--work", type=Path, default=None, help="keep data here (default: temp)")
    ap.add_argument("--inline", action="store_true",
                    help="run stages in this process (fast start, cumulative peak RSS; tests)")
    ap.add_argument("--smoke", action="store_true",
                    help="tests: 20 bootstrap resamples, HTML without PDF (not comparable)")
    ap.add_argument("--_stage", help=argparse.SUPPRESS)
    ap.add_argument("--_db", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_dir", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    os.environ.setdefault(SECRET_ENV, "stabilis-bench-secret-not-for-real-pilots")
    if a._stage:
        print(json.dumps(run_stage(a._stage, a._db, a._dir, a.smoke)))
        return {}
    sizes = [parse_size(s) for s in a.sizes.split(",") if s.strip()]
    if a.huge:
        sizes.append(100_000_000)
    tmp = None if a.work else tempfile.mkdtemp(prefix="stabilis-bench-")
    work = a.work or Path(tmp)
    from pipelines.warehouse import duckdb_config

    try:
        runs = [bench_size(n, work / label(n), a.inline, a.smoke) for n in sorted(set(sizes))]
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    doc = {"generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                      f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} "
                      f"GiB RAM, load avg {os.getloadavg()[0]:.1f} at the end",
           "memory_limit": duckdb_config(work / "w.duckdb")["memory_limit"],
           "tokenizer": _tokenizer(), "goals_targets": GOALS, "runs": runs}
    doc["goals"] = summarize(runs)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "bench.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = markdown(doc)
    (a.out / "bench.md").write_text(md)
    print(md)
    return doc


if __name__ == "__main__":
    main()
