"""What the peers (pandas_peer.py, polars_peer.py) read, compute and are checked against.

Three tables, each computed by a peer from the same warehouse rows the SQL models read and
compared with the SQL table (rows matched on their keys, both ways):

    headline          metrics_headline, the request metrics: per phase x segment ('all' and
                      each segment) x breakdown (overall, pool, priority): p50/p95/p99 latency
                      of ok logical requests, timeout/drop rate, SLA adherence, retry
                      amplification, logical requests, attempts (int_logical_requests); queue
                      wait p50/p95/max, scheduling delay p95, delay index (int_attempts).
                      (GPU, energy and job metrics of the same table are not in the peers.)
    int_pool_minutes  per pool x minute with arrivals: every column from attempts, starts and
                      GPU samples (queue_depth and the segment/phase labels excepted)
    arrival_burstiness per phase x pool and all pools: arrivals, rate, inter-arrival count,
                      CV, Gamma shape, index of dispersion

A peer's `compute_s` per table is its own work on rows already in memory; `load_s` (reading
the rows out of DuckDB into the peer's frames) is timed apart, once for all tables.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pandas as pd

ALL_POOLS = "(all pools)"
TABLES = ("headline", "int_pool_minutes", "arrival_burstiness")
# The SQL models whose build times, summed, are DuckDB's side of each comparison (the headline
# quantiles are two tables of their own, built for metrics_headline alone).
SQL_MODEL = {"headline": ("int_quantile_ranks", "int_headline_quantiles", "metrics_headline"),
             "int_pool_minutes": ("int_pool_minutes",),
             "arrival_burstiness": ("arrival_burstiness",)}

ATTEMPTS_SQL = """
    SELECT pool, phase, segment, priority, arrival_us, epoch_us(start_ts) AS start_us, attempt,
           status, queue_wait_s, sched_delay_s, e2e_s, logical_met_sla
    FROM int_attempts WHERE pilot = $pilot"""
LOGICAL_SQL = """
    SELECT phase, segment, pool, priority, latency_s, outcome, met_sla, attempts
    FROM int_logical_requests WHERE pilot = $pilot"""
GPU_SQL = """
    SELECT pool, gpu, series, ts_us, value, dt_s
    FROM int_gpu_samples WHERE pilot = $pilot"""
# Small inputs: phases, SLA targets, thresholds (plain Python values).
PHASES_SQL = """
    SELECT phase, epoch_us(start_ts) AS s_us, epoch_us(end_ts) AS e_us
    FROM phases WHERE pilot = $pilot ORDER BY s_us"""
SLA_SQL = "SELECT priority, e2e_ms FROM sla_targets WHERE pilot = $pilot"
THRESHOLDS_SQL = """
    SELECT sched_delay_target_s, CAST(burst_window_s * 1e6 AS BIGINT) AS win_us
    FROM int_thresholds WHERE pilot = $pilot"""

HEADLINE_METRICS = ("p50_latency_s", "p95_latency_s", "p99_latency_s", "timeout_drop_rate",
                    "sla_adherence", "retry_amplification", "logical_requests", "attempts",
                    "queue_wait_p50_s", "queue_wait_p95_s", "queue_wait_max_s",
                    "sched_delay_p95_s", "delay_index")
POOL_MINUTE_COLUMNS = ("arrivals", "first_arrivals", "retries", "timeouts", "starts",
                       "queue_wait_p95_s", "wait_sla_ratio_p95", "latency_p95_s",
                       "sla_adherence", "dispatched", "sched_ok_share", "ok_wait_s",
                       "ok_e2e_s", "nominal_util", "sm_active_util", "power_w", "gpus")
BURSTINESS_COLUMNS = ("arrivals", "arrival_rate_rps", "inter_arrivals", "interarrival_cv",
                      "gamma_shape_k", "index_of_dispersion")
KEYS = {"headline": ["phase", "segment", "breakdown", "breakdown_value", "metric"],
        "int_pool_minutes": ["pool", "m"], "arrival_burstiness": ["phase", "pool"]}


def small_inputs(con: duckdb.DuckDBPyConnection, pilot: str) -> dict[str, Any]:
    p = {"pilot": pilot}
    phases = con.execute(PHASES_SQL, p).fetchall()
    sla = dict(con.execute(SLA_SQL, p).fetchall())
    target, win_us = con.execute(THRESHOLDS_SQL, p).fetchone()
    return {"phases": phases, "sla_e2e_ms": sla, "sched_delay_target_s": target,
            "win_us": int(win_us)}


def sql_tables(con: duckdb.DuckDBPyConnection, pilot: str) -> dict[str, pd.DataFrame]:
    """The SQL models' answers, in the peers' shape (pandas, for the comparison only)."""
    p = {"pilot": pilot}
    metrics = ", ".join(f"'{m}'" for m in HEADLINE_METRICS)
    return {
        "headline": con.execute(
            "SELECT phase, segment, breakdown, coalesce(breakdown_value, '') AS breakdown_value,"
            f" metric, value FROM metrics_headline WHERE pilot = $pilot AND metric IN ({metrics})"
            " AND value IS NOT NULL", p).df(),
        "int_pool_minutes": con.execute(
            f"SELECT pool, m, {', '.join(POOL_MINUTE_COLUMNS)} FROM int_pool_minutes "
            "WHERE pilot = $pilot AND arrivals > 0", p).df(),
        "arrival_burstiness": con.execute(
            f"SELECT phase, pool, {', '.join(BURSTINESS_COLUMNS)} FROM arrival_burstiness "
            "WHERE pilot = $pilot", p).df(),
    }


def max_rel_diff(mine: pd.DataFrame, theirs: pd.DataFrame, keys: list[str]) -> float:
    """Largest relative difference over every value column; inf when a row of either side
    has no partner (a group one side has and the other does not: not the same answer)."""
    mine, theirs = _norm_keys(mine, keys), _norm_keys(theirs, keys)
    j = mine.merge(theirs, on=keys, suffixes=("", "_sql"), how="outer", indicator=True)
    if (j["_merge"] != "both").any() or len(j) != len(mine) or len(j) != len(theirs):
        return math.inf
    worst = 0.0
    for c in mine.columns.difference(keys):
        x = pd.to_numeric(j[c], errors="coerce").astype("float64").to_numpy()
        y = pd.to_numeric(j[f"{c}_sql"], errors="coerce").astype("float64").to_numpy()
        both_nan = np.isnan(x) & np.isnan(y)
        d = np.abs(x - y) / np.maximum(np.abs(y), 1e-12)
        d[both_nan] = 0.0
        worst = max(worst, float(np.nan_to_num(d, nan=np.inf).max(initial=0.0)))
    return worst


def _norm_keys(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    # the minute is an integer, every other key text (categorical or not)
    return df.astype({k: "int64" if k == "m" else "string" for k in keys})


def compare(con: duckdb.DuckDBPyConnection, pilot: str,
            answers: dict[str, pd.DataFrame]) -> dict[str, float]:
    """max_rel_diff per table between a peer's answers (pandas frames) and the SQL tables."""
    sql = sql_tables(con, pilot)
    return {t: max_rel_diff(answers[t], sql[t], KEYS[t]) for t in TABLES}


def run_peer(con: duckdb.DuckDBPyConnection, pilot: str, load: Callable[..., dict[str, Any]],
             compute: dict[str, Callable[[dict[str, Any]], Any]],
             to_pandas: Callable[[Any], pd.DataFrame] = lambda df: df) -> dict[str, Any]:
    """A peer's run: load its inputs, compute every table (timed apart), compare with the SQL
    tables. `to_pandas` converts a peer's frame for the comparison (outside the timing)."""
    t0 = time.perf_counter()
    d = load(con, pilot)
    load_s = time.perf_counter() - t0
    answers: dict[str, pd.DataFrame] = {}
    compute_s = {}
    for table, fn in compute.items():
        t = time.perf_counter()
        out = fn(d)
        compute_s[table] = round(time.perf_counter() - t, 3)
        answers[table] = to_pandas(out)
    return {"rows": len(d["att"]), "load_s": round(load_s, 3), "compute_s": compute_s,
            "max_rel_diff": compare(con, pilot, answers)}
