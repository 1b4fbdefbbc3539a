"""The Polars peer: the peer tables (benchmarks/peer_common.py) as Polars lazy frames.

Idiomatic Polars: the rows are read out of DuckDB as Arrow into DataFrames (timed apart as
load), every table is one lazy query collected once (Polars plans it and runs it on every
core), group_by/agg with the same linear-interpolation quantiles as DuckDB's quantile_cont,
and the inter-arrival gaps from one sort of the first attempts by time with `shift().over()`.
No Python loop over rows. The answers are checked against the SQL tables
(peer_common.compare); `run` is what the bench suite's polars peer stage calls.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from benchmarks.peer_common import (
    ALL_POOLS,
    ATTEMPTS_SQL,
    GPU_SQL,
    LOGICAL_SQL,
    run_peer,
    small_inputs,
)

MINUTE_US = 60_000_000
SCOPE_KEYS = ["phase", "segment", "breakdown", "breakdown_value"]


def load(con: duckdb.DuckDBPyConnection, pilot: str) -> dict[str, Any]:
    p = {"pilot": pilot}
    return {"att": con.execute(ATTEMPTS_SQL, p).pl(), "lg": con.execute(LOGICAL_SQL, p).pl(),
            "gpu": con.execute(GPU_SQL, p).pl(), **small_inputs(con, pilot)}


# --------------------------------------------------------------------------- headline

def _scopes(lf: pl.LazyFrame, aggs: list[pl.Expr]) -> pl.LazyFrame:
    """`aggs` over phase x segment ('all', then each) x breakdown, in long form."""
    lf = lf.filter(pl.col("phase").is_not_null())
    parts = []
    for breakdown, col in (("overall", None), ("pool", "pool"), ("priority", "priority")):
        for own_segment in (False, True):
            keys = ["phase", *(["segment"] if own_segment else []), *([col] if col else [])]
            parts.append(lf.group_by(keys).agg(aggs).with_columns(
                *([] if own_segment else [pl.lit("all").alias("segment")]),
                pl.lit(breakdown).alias("breakdown"),
                (pl.col(col).cast(pl.String) if col else pl.lit("")).alias("breakdown_value"),
            ).drop([col] if col else []))
    wide = pl.concat(parts, how="diagonal")
    return (wide.unpivot(index=SCOPE_KEYS, variable_name="metric", value_name="value")
            .filter(pl.col("value").is_not_null() & pl.col("value").is_not_nan()))


def headline(d: dict[str, Any]) -> pl.DataFrame:
    ok_lat = pl.col("latency_s").filter(pl.col("outcome") == "ok")
    n = pl.len().cast(pl.Float64)
    logical = _scopes(d["lg"].lazy(), [
        ok_lat.quantile(0.5, "linear").alias("p50_latency_s"),
        ok_lat.quantile(0.95, "linear").alias("p95_latency_s"),
        ok_lat.quantile(0.99, "linear").alias("p99_latency_s"),
        pl.col("outcome").is_in(["timeout", "dropped"]).mean().alias("timeout_drop_rate"),
        pl.col("met_sla").fill_null(False).mean().alias("sla_adherence"),
        (pl.col("attempts").sum() / n).alias("retry_amplification"),
        n.alias("logical_requests"),
        pl.col("attempts").sum().cast(pl.Float64).alias("attempts"),
    ])
    ok = pl.col("status") == "ok"
    ok_e2e = pl.col("e2e_s").filter(ok).sum()
    attempts = _scopes(d["att"].lazy(), [
        pl.col("queue_wait_s").quantile(0.5, "linear").alias("queue_wait_p50_s"),
        pl.col("queue_wait_s").quantile(0.95, "linear").alias("queue_wait_p95_s"),
        pl.col("queue_wait_s").max().alias("queue_wait_max_s"),
        pl.col("sched_delay_s").quantile(0.95, "linear").alias("sched_delay_p95_s"),
        (pl.when(pl.col("e2e_s").filter(ok).count() > 0)
         .then(pl.col("queue_wait_s").filter(ok).sum() / pl.when(ok_e2e != 0).then(ok_e2e))
         ).alias("delay_index"),
    ])
    # as in metrics_headline, a scope is one that has logical requests
    attempts = attempts.join(logical.select(SCOPE_KEYS).unique(), on=SCOPE_KEYS,
                             nulls_equal=True)
    return pl.concat([logical, attempts]).collect()


# --------------------------------------------------------------------------- pool minutes

def pool_minutes(d: dict[str, Any]) -> pl.DataFrame:
    sla = pl.DataFrame({"priority": list(d["sla_e2e_ms"]),
                        "sla_s": [v / 1e3 if v else None for v in d["sla_e2e_ms"].values()]},
                       schema={"priority": pl.String, "sla_s": pl.Float64})
    # the stored priority is an ENUM (Categorical here): the join keys must match
    sla = sla.with_columns(pl.col("priority").cast(d["att"].schema["priority"])).lazy()
    target = d["sched_delay_target_s"]
    ok = pl.col("status") == "ok"
    sched = pl.col("sched_delay_s")
    a = (d["att"].lazy().join(sla, on="priority", how="left")
         .with_columns((pl.col("arrival_us") // MINUTE_US).alias("m")))
    am = a.group_by("pool", "m").agg(
        pl.len().alias("arrivals"),
        (pl.col("attempt") == 0).sum().alias("first_arrivals"),
        (pl.col("attempt") > 0).sum().alias("retries"),
        pl.col("status").is_in(["timeout", "dropped"]).sum().alias("timeouts"),
        pl.col("queue_wait_s").quantile(0.95, "linear").alias("queue_wait_p95_s"),
        (pl.col("queue_wait_s") / pl.when(pl.col("sla_s") != 0).then(pl.col("sla_s")))
        .quantile(0.95, "linear").alias("wait_sla_ratio_p95"),
        pl.col("e2e_s").filter(ok).quantile(0.95, "linear").alias("latency_p95_s"),
        pl.col("logical_met_sla").filter(pl.col("attempt") == 0).cast(pl.Float64).mean()
        .alias("sla_adherence"),
        sched.count().alias("dispatched"),
        pl.when(sched.is_not_null()).then((sched <= target).cast(pl.Float64)).mean()
        .alias("sched_ok_share"),
        pl.when(ok.any()).then(pl.col("queue_wait_s").filter(ok).sum()).alias("ok_wait_s"),
        pl.when(ok.any()).then(pl.col("e2e_s").filter(ok).sum()).alias("ok_e2e_s"),
    )
    starts = (d["att"].lazy().filter(pl.col("start_us").is_not_null())
              .group_by("pool", (pl.col("start_us") // MINUTE_US).alias("m"))
              .agg(pl.len().alias("starts")))
    energy = pl.col("value") * pl.col("dt_s")

    def share(series: str) -> pl.Expr:
        t = pl.col("dt_s").filter(pl.col("series") == series).sum()
        return (pl.when(pl.col("series").eq(series).any())
                .then(energy.filter(pl.col("series") == series).sum() / pl.when(t != 0).then(t)))

    gm = (d["gpu"].lazy().group_by("pool", (pl.col("ts_us") // MINUTE_US).alias("m")).agg(
        share("gpu_util").alias("nominal_util"), share("sm_active").alias("sm_active_util"),
        pl.when(pl.col("series").eq("power_w").any())
        .then(energy.filter(pl.col("series") == "power_w").sum() / 60.0).alias("power_w"),
        pl.col("gpu").drop_nulls().n_unique().alias("gpus"),
    ))
    return (am.join(starts, on=["pool", "m"], how="left")
            .with_columns(pl.col("starts").fill_null(0))
            .join(gm, on=["pool", "m"], how="left").collect())


# --------------------------------------------------------------------------- burstiness

def burstiness(d: dict[str, Any]) -> pl.DataFrame:
    win = d["win_us"]
    ph = pl.DataFrame(
        {"phase": [p for p, _, _ in d["phases"]], "s_us": [s for _, s, _ in d["phases"]],
         "phase_s": [(e - s) / 1e6 for _, s, e in d["phases"]],
         "windows": [(e - 1) // win - s // win + 1 for _, s, e in d["phases"]]},
        schema={"phase": pl.String, "s_us": pl.Int64, "phase_s": pl.Float64,
                "windows": pl.Int64}).lazy()
    first = (d["att"].lazy().filter((pl.col("attempt") == 0) & pl.col("phase").is_not_null())
             .select("phase", "pool", "arrival_us").join(ph, on="phase")
             .sort("arrival_us"))  # the one sort
    t = pl.col("arrival_us")

    def per(prev: pl.Expr, keys: list[str], pool: str | None) -> pl.LazyFrame:
        gap = pl.when(prev >= pl.col("s_us")).then((t - prev) / 1e6)
        x = first.with_columns(gap.alias("gap"), (t // win).alias("w"))
        cv = x.group_by(keys).agg(
            pl.len().alias("arrivals"), pl.col("gap").count().alias("inter_arrivals"),
            (pl.col("gap").std() / pl.when(pl.col("gap").mean() != 0)
             .then(pl.col("gap").mean())).alias("interarrival_cv"),
            pl.first("phase_s"), pl.first("windows"))
        # counts as Int64: pl.len() is UInt32, and the sum of its squares overflows it (10 M)
        disp = (x.group_by(*keys, "w").agg(pl.len().cast(pl.Int64).alias("c"))
                .group_by(keys).agg((pl.col("c") ** 2).sum().alias("sum_sq")))
        out = cv.join(disp, on=keys)
        return out if pool is None else out.with_columns(pl.lit(pool).alias("pool"))

    both = pl.concat([
        per(t.shift().over("pool"), ["phase", "pool"], None),
        per(t.shift(), ["phase"], ALL_POOLS).select("phase", "pool", pl.exclude("phase", "pool")),
    ])
    n, nw = pl.col("arrivals").cast(pl.Float64), pl.col("windows").cast(pl.Float64)
    cv = pl.col("interarrival_cv")
    return both.with_columns(
        (n / pl.col("phase_s")).alias("arrival_rate_rps"),
        (1 / pl.when(cv != 0).then(cv ** 2)).alias("gamma_shape_k"),
        ((pl.col("sum_sq") - n * n / nw) / pl.when(nw != 1).then(nw - 1)
         / pl.when(n != 0).then(n / nw)).alias("index_of_dispersion"),
    ).drop("sum_sq", "phase_s", "windows").collect()


COMPUTE = {"headline": headline, "int_pool_minutes": pool_minutes,
           "arrival_burstiness": burstiness}


def run(con: duckdb.DuckDBPyConnection, pilot: str) -> dict[str, Any]:
    """Load, compute every peer table (timed apart), compare with the SQL tables."""
    return run_peer(con, pilot, load, COMPUTE, to_pandas=lambda df: df.to_pandas())
