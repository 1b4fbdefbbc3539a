"""The pandas peer: two analytics tables written the way a pandas user would, for comparison.

The bench suite's `peer` stage runs this on the warehouse the pipeline just built and compares
its answers with the SQL models':

    int_pool_minutes (core)  per pool x 1-minute window: arrivals, retries, timeouts, exact
                             P95 queue wait, exact P95 latency of ok attempts, SLA adherence
                             of first attempts
    arrival_burstiness (CV)  per phase x pool and all pools: CV of first-attempt
                             inter-arrival times

pandas is the peer the issue names: idiomatic, vectorized (groupby, sort_values, diff), no
Python loop over rows. The rows are read out of DuckDB first (timed apart as `load_s`), so
`compute_s` is pandas' own work. `max_rel_diff` is the largest relative difference between
its answers and the warehouse tables: the comparison is only meaningful when both agree.
"""

from __future__ import annotations

import time
from typing import Any

import duckdb
import numpy as np
import pandas as pd

COLUMNS = "pool, phase, arrival_us, attempt, status, queue_wait_s, e2e_s, logical_met_sla"
ALL_POOLS = "(all pools)"


def load(con: duckdb.DuckDBPyConnection, pilot: str) -> pd.DataFrame:
    return con.execute(f"SELECT {COLUMNS} FROM int_attempts WHERE pilot = ?", [pilot]).df()


def pool_minutes(a: pd.DataFrame) -> pd.DataFrame:
    a = a.assign(
        m=a["arrival_us"] // 60_000_000,
        first=(a["attempt"] == 0),
        retry=(a["attempt"] > 0),
        timeout=a["status"].isin(["timeout", "dropped"]),
        ok_e2e=a["e2e_s"].where(a["status"] == "ok"),
        met=np.where(a["attempt"] == 0, a["logical_met_sla"].astype("float64"), np.nan),
    )
    g = a.groupby(["pool", "m"], sort=False)
    out = pd.DataFrame({
        "arrivals": g.size(),
        "retries": g["retry"].sum(),
        "timeouts": g["timeout"].sum(),
        "queue_wait_p95_s": g["queue_wait_s"].quantile(0.95),
        "latency_p95_s": g["ok_e2e"].quantile(0.95),
        "sla_adherence": g["met"].mean(),
    })
    return out.reset_index()


def interarrival_cv(a: pd.DataFrame) -> pd.DataFrame:
    first = a.loc[a["attempt"] == 0, ["phase", "pool", "arrival_us"]]
    both = pd.concat([first, first.assign(pool=ALL_POOLS)], ignore_index=True)
    both = both.sort_values(["phase", "pool", "arrival_us"], kind="stable")
    gap = both.groupby(["phase", "pool"], sort=False)["arrival_us"].diff() / 1e6
    g = both.assign(gap=gap).groupby(["phase", "pool"])["gap"]
    return (g.std() / g.mean()).rename("interarrival_cv").reset_index()


def _max_rel_diff(mine: pd.DataFrame, theirs: pd.DataFrame, keys: list[str]) -> float:
    j = mine.merge(theirs, on=keys, suffixes=("", "_sql"), how="inner")
    if len(j) != len(mine):
        return float("inf")  # a group the SQL does not have: not the same answer
    worst = 0.0
    for c in mine.columns.difference(keys):
        x, y = j[c].astype("float64").to_numpy(), j[f"{c}_sql"].astype("float64").to_numpy()
        both_nan = np.isnan(x) & np.isnan(y)
        d = np.abs(x - y) / np.maximum(np.abs(y), 1e-12)
        d[both_nan] = 0.0
        worst = max(worst, float(np.nan_to_num(d, nan=np.inf).max(initial=0.0)))
    return worst


def run(con: duckdb.DuckDBPyConnection, pilot: str) -> dict[str, Any]:
    """Load, compute both tables, compare with the SQL models' tables; timings in seconds."""
    t0 = time.perf_counter()
    a = load(con, pilot)
    t1 = time.perf_counter()
    pm = pool_minutes(a)
    cv = interarrival_cv(a)
    t2 = time.perf_counter()
    sql_pm = con.execute(
        "SELECT pool, m, arrivals, retries, timeouts, queue_wait_p95_s, latency_p95_s, "
        "sla_adherence FROM int_pool_minutes WHERE pilot = ? AND arrivals > 0", [pilot]).df()
    sql_cv = con.execute(
        "SELECT phase, pool, interarrival_cv FROM arrival_burstiness WHERE pilot = ?",
        [pilot]).df()
    return {
        "rows": len(a),
        "load_s": round(t1 - t0, 3),
        "compute_s": round(t2 - t1, 3),
        "max_rel_diff": max(_max_rel_diff(pm, sql_pm, ["pool", "m"]),
                            _max_rel_diff(cv, sql_cv, ["phase", "pool"])),
    }
