"""The pandas peer: the peer tables (benchmarks/peer_common.py) written by a competent pandas
user, for comparison with the SQL models.

Competent means what a pandas expert would do on 10 M rows: text columns arrive as
categoricals (Arrow dictionary -> pandas Categorical, so group keys are small integers, never
Python strings), `observed=True` groupbys, several quantiles of a group in one call, and the
inter-arrival gaps from ONE sort of the first attempts by time (a stable numpy argsort on
int64), grouped without re-sorting. No Python loop over rows. The bench suite's `peer` stage
runs `run` on the warehouse the pipeline just built; the answers are checked against the SQL
tables (peer_common.compare).
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd

from benchmarks.peer_common import (
    ALL_POOLS,
    ATTEMPTS_SQL,
    GPU_SQL,
    LOGICAL_SQL,
    run_peer,
    small_inputs,
)

MINUTE_US = 60_000_000


def _frame(con: duckdb.DuckDBPyConnection, sql: str, pilot: str) -> pd.DataFrame:
    return con.execute(sql, {"pilot": pilot}).to_arrow_table().to_pandas(
        strings_to_categorical=True)


def load(con: duckdb.DuckDBPyConnection, pilot: str) -> dict[str, Any]:
    return {"att": _frame(con, ATTEMPTS_SQL, pilot), "lg": _frame(con, LOGICAL_SQL, pilot),
            "gpu": _frame(con, GPU_SQL, pilot), **small_inputs(con, pilot)}


# --------------------------------------------------------------------------- headline

def _scopes(df: pd.DataFrame, agg: Any) -> pd.DataFrame:
    """`agg(groupby)` over phase x segment ('all', then each) x breakdown, in long form."""
    parts = []
    for breakdown, col in (("overall", None), ("pool", "pool"), ("priority", "priority")):
        for own_segment in (False, True):
            keys = ["phase", *(["segment"] if own_segment else []), *([col] if col else [])]
            wide = agg(df.groupby(keys, observed=True, sort=False))
            wide.index = wide.index.set_names(keys) if wide.index.nlevels > 1 else \
                wide.index.rename(keys[0])
            w = wide.reset_index()
            w["segment"] = w["segment"].astype(str) if own_segment else "all"
            w["breakdown"] = breakdown
            w["breakdown_value"] = w[col].astype(str) if col else ""
            parts.append(w.drop(columns=[col] if col else []))
    wide = pd.concat(parts, ignore_index=True)
    keys = ["phase", "segment", "breakdown", "breakdown_value"]
    wide["phase"] = wide["phase"].astype(str)
    long = wide.melt(id_vars=keys, var_name="metric", value_name="value")
    return long[long["value"].notna()].reset_index(drop=True)


def _logical_agg(g: Any) -> pd.DataFrame:
    q = g["ok_latency_s"].quantile([0.5, 0.95, 0.99]).unstack()
    n, attempts = g.size(), g["attempts"].sum()
    return pd.DataFrame({
        "p50_latency_s": q[0.5], "p95_latency_s": q[0.95], "p99_latency_s": q[0.99],
        "timeout_drop_rate": g["timed_out"].mean(), "sla_adherence": g["met"].mean(),
        "retry_amplification": attempts / n, "logical_requests": n.astype("float64"),
        "attempts": attempts.astype("float64"),
    })


def _attempt_agg(g: Any) -> pd.DataFrame:
    q = g["queue_wait_s"].quantile([0.5, 0.95]).unstack()
    ok_e2e = g["ok_e2e_s"].sum(min_count=1)
    return pd.DataFrame({
        "queue_wait_p50_s": q[0.5], "queue_wait_p95_s": q[0.95],
        "queue_wait_max_s": g["queue_wait_s"].max(),
        "sched_delay_p95_s": g["sched_delay_s"].quantile(0.95),
        "delay_index": g["ok_wait_s"].sum(min_count=1) / ok_e2e.where(ok_e2e != 0),
    })


def headline(d: dict[str, Any]) -> pd.DataFrame:
    lg, att = d["lg"], d["att"]
    lg = lg.assign(
        ok_latency_s=lg["latency_s"].where(lg["outcome"] == "ok"),
        timed_out=lg["outcome"].isin(["timeout", "dropped"]).astype("float64"),
        met=lg["met_sla"].fillna(False).astype("float64"),
    )
    ok = att["status"] == "ok"
    att = att[["phase", "segment", "pool", "priority", "queue_wait_s", "sched_delay_s"]].assign(
        ok_wait_s=att["queue_wait_s"].where(ok), ok_e2e_s=att["e2e_s"].where(ok))
    logical = _scopes(lg, _logical_agg)
    attempts = _scopes(att, _attempt_agg)
    # as in metrics_headline, a scope is one that has logical requests: attempts alone (a
    # retry counted in another segment than its request) do not open one
    keys = ["phase", "segment", "breakdown", "breakdown_value"]
    attempts = attempts.merge(logical[keys].drop_duplicates(), on=keys)
    return pd.concat([logical, attempts], ignore_index=True)


# --------------------------------------------------------------------------- pool minutes

def pool_minutes(d: dict[str, Any]) -> pd.DataFrame:
    a, target = d["att"], d["sched_delay_target_s"]
    sla_s = a["priority"].map({k: v / 1e3 if v else np.nan for k, v in d["sla_e2e_ms"].items()})
    ok = a["status"] == "ok"
    sched = a["sched_delay_s"]
    x = pd.DataFrame({
        "pool": a["pool"], "m": a["arrival_us"] // MINUTE_US,
        "first": a["attempt"] == 0, "retry": a["attempt"] > 0,
        "timeout": a["status"].isin(["timeout", "dropped"]),
        "queue_wait_s": a["queue_wait_s"],
        "wait_ratio": a["queue_wait_s"] / sla_s.astype("float64"),
        "ok_e2e_s": a["e2e_s"].where(ok), "ok_wait_s": a["queue_wait_s"].where(ok),
        "met": a["logical_met_sla"].astype("float64").where(a["attempt"] == 0),
        "sched_ok": (sched <= target).astype("float64").where(sched.notna()),
        "sched_delay_s": sched,
    })
    g = x.groupby(["pool", "m"], observed=True, sort=False)
    q = g[["queue_wait_s", "wait_ratio", "ok_e2e_s"]].quantile(0.95)
    out = pd.DataFrame({
        "arrivals": g.size(), "first_arrivals": g["first"].sum(), "retries": g["retry"].sum(),
        "timeouts": g["timeout"].sum(), "queue_wait_p95_s": q["queue_wait_s"],
        "wait_sla_ratio_p95": q["wait_ratio"], "latency_p95_s": q["ok_e2e_s"],
        "sla_adherence": g["met"].mean(), "dispatched": g["sched_delay_s"].count(),
        "sched_ok_share": g["sched_ok"].mean(), "ok_wait_s": g["ok_wait_s"].sum(min_count=1),
        "ok_e2e_s": g["ok_e2e_s"].sum(min_count=1),
    })
    started = a["start_us"].notna()
    starts = (a.loc[started, ["pool"]].assign(m=a.loc[started, "start_us"] // MINUTE_US)
              .groupby(["pool", "m"], observed=True).size().rename("starts"))
    out = out.join(starts, how="left").fillna({"starts": 0})
    gs = d["gpu"]
    s = gs["series"]
    energy = gs["value"] * gs["dt_s"]
    gx = pd.DataFrame({"pool": gs["pool"], "m": gs["ts_us"] // MINUTE_US, "gpu": gs["gpu"]})
    for name in ("gpu_util", "sm_active", "power_w"):
        gx[f"{name}_e"] = energy.where(s == name)
        gx[f"{name}_t"] = gs["dt_s"].where(s == name)
    gg = gx.groupby(["pool", "m"], observed=True, sort=False)
    sums = gg[[c for c in gx.columns if c[-2:] in ("_e", "_t")]].sum(min_count=1)
    gm = pd.DataFrame({
        "nominal_util": sums["gpu_util_e"] / sums["gpu_util_t"].where(sums["gpu_util_t"] != 0),
        "sm_active_util": sums["sm_active_e"] / sums["sm_active_t"].where(
            sums["sm_active_t"] != 0),
        "power_w": sums["power_w_e"] / 60.0, "gpus": gg["gpu"].nunique(),
    })
    out = out.reset_index()
    gm = gm.reset_index()
    out["pool"], gm["pool"] = out["pool"].astype(str), gm["pool"].astype(str)
    return out.merge(gm, on=["pool", "m"], how="left")


# --------------------------------------------------------------------------- burstiness

def burstiness(d: dict[str, Any]) -> pd.DataFrame:
    a = d["att"]
    first = a.loc[(a["attempt"] == 0) & a["phase"].notna(), ["phase", "pool", "arrival_us"]]
    first = first.iloc[np.argsort(first["arrival_us"].to_numpy(), kind="stable")]  # the sort
    starts = {p: s for p, s, _ in d["phases"]}
    s_us = first["phase"].map(starts).astype("int64")
    t = first["arrival_us"]
    prev_pool = first.groupby("pool", observed=True, sort=False)["arrival_us"].shift()
    prev_all = t.shift()
    win = d["win_us"]
    phase_s = {p: (e - s) / 1e6 for p, s, e in d["phases"]}
    windows = {p: (e - 1) // win - s // win + 1 for p, s, e in d["phases"]}
    w = t // win
    parts = []
    for pool, prev in (("pool", prev_pool), (None, prev_all)):
        gap = ((t - prev) / 1e6).where(prev >= s_us)
        keys = [first["phase"], first["pool"]] if pool else [first["phase"]]
        g = gap.groupby(keys, observed=True)
        cv = g.std() / g.mean().where(g.mean() != 0)
        counts = w.groupby([*keys, w], observed=True).size()
        lv = list(range(len(keys)))
        n = counts.groupby(level=lv, observed=True).sum()
        sum_sq = (counts ** 2).groupby(level=lv, observed=True).sum()
        out = pd.DataFrame({"arrivals": n, "inter_arrivals": g.count(), "interarrival_cv": cv,
                            "sum_sq": sum_sq}).reset_index()
        out.columns = ["phase", "pool", *out.columns[2:]] if pool else ["phase",
                                                                         *out.columns[1:]]
        if not pool:
            out.insert(1, "pool", ALL_POOLS)
        parts.append(out)
    out = pd.concat(parts, ignore_index=True)
    out["phase"], out["pool"] = out["phase"].astype(str), out["pool"].astype(str)
    nw = out["phase"].map(windows).astype("float64")
    mean = out["arrivals"] / nw
    out["arrival_rate_rps"] = out["arrivals"] / out["phase"].map(phase_s)
    out["gamma_shape_k"] = 1 / (out["interarrival_cv"] ** 2).where(out["interarrival_cv"] != 0)
    out["index_of_dispersion"] = ((out["sum_sq"] - out["arrivals"] ** 2 / nw)
                                  / (nw - 1).where(nw != 1) / mean.where(mean != 0))
    return out.drop(columns="sum_sq")


COMPUTE = {"headline": headline, "int_pool_minutes": pool_minutes,
           "arrival_burstiness": burstiness}


def run(con: duckdb.DuckDBPyConnection, pilot: str) -> dict[str, Any]:
    """Load, compute every peer table (timed apart), compare with the SQL tables."""
    return run_peer(con, pilot, load, COMPUTE)
