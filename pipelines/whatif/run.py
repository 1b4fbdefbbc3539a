"""Model-based what-if (issue #5): replay a pilot's workload under each adjustment and measure
the replay with the same SQL as the telemetry (Dagster-free).

One measurement path: every replay is written as canonical `requests` / `jobs` / `samples`
rows under a *derived pilot key* `<pilot>--whatif-<policy>-s<seed>` (plus copies of the
pilot's sla_targets, pilot_scope, thresholds and pilots rows, and the replay window as the
phase), then the SQL models that `metrics_headline` needs are built for that key by the same
`build_model` and its rows are read back. The observed slice itself goes through the same
path under `<pilot>--whatif-observed`, so "measured" and "modeled" are computed by identical
code on the same window.

Derived keys live in a *scratch* DuckDB database (in memory, same staging DDL from
sql/staging), never in the warehouse: the warehouse only receives the two result tables, so
no derived key can leak into the report, a real pilot's tables, or another engineer's
models, and the scratch tables are small (building a model there does not scan the pilot's
million-row tables). `keep_dir` writes each scratch database to a file for inspection.

Outputs (replaced per pilot):
- `whatif_results`: per policy set x segment x breakdown x metric: the replay of today's
  policy (`baseline_value`), the replay under the policy (`predicted_value`), the paired
  change averaged over seeds (common random numbers: each seed draws the same service
  times under every policy), its seed-to-seed sd (`spread`), and the replay window;
- `whatif_model_error`: `baseline_replay` rows compare today's replay with the measured
  slice (only a per-request replay has one); `treatment_change` rows compare the predicted
  change under the pilot's declared adjustments (treatment pools only) with the measured
  change in `metrics_before_after`;
- `whatif_status` (pipelines/whatif/status.py): modeled or not, on what basis, and why not.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipelines.simulator.model import PoolWorkload, SimConfig
from pipelines.simulator.policies import (
    Policy,
    policy_label,
    policy_set,
)
from pipelines.simulator.runner import run_workloads
from pipelines.simulator.tables import HIDDEN_JOB_COLUMNS, jobs_table, requests_table, samples_table
from pipelines.sql_models import MODELS, SqlModel, build_model
from pipelines.warehouse import ensure_schema, read_sql
from pipelines.whatif.replay import NoReplayInput, ReplayInput
from pipelines.whatif.status import WhatIfStatus, modeled, prepare

TODAY = "fifo_shared"
DECLARED = "declared"  # the pilot's own adjustments on its treatment pools
# Policy sets replayed by default, each on every pool (composed sets are allowed: "a+b").
# One per adjustment of METRICS.md; power_of_two and random_routing are opt-in
# (STABILIS_WHATIF_POLICIES) to keep the demo inside its time budget.
DEFAULT_POLICIES: tuple[str, ...] = (
    "batch_separation", "priority", "burst_buffering", "segmentation", "jsq",
)
DEFAULT_MINUTES = 15.0
DEFAULT_SEEDS: tuple[int, ...] = (1, 2)
SEGMENTS = ("all", "treatment", "control")
CONFIG_TABLES = ("phases", "sla_targets", "pilot_scope", "thresholds", "pilots")

RESULTS_COLUMNS = {
    "pilot": pl.String, "policy": pl.String, "policies": pl.String, "phase": pl.String,
    "segment": pl.String, "breakdown": pl.String, "breakdown_value": pl.String,
    "metric": pl.String, "unit": pl.String, "measured_value": pl.Float64,
    "baseline_value": pl.Float64, "predicted_value": pl.Float64,
    "predicted_change": pl.Float64, "rel_change": pl.Float64, "spread": pl.Float64,
    "seeds": pl.Int32, "basis": pl.String, "replay_start": pl.Datetime("us"),
    "replay_end": pl.Datetime("us"), "replay_minutes": pl.Float64,
}
ERROR_COLUMNS = {
    "pilot": pl.String, "comparison": pl.String, "segment": pl.String, "metric": pl.String,
    "unit": pl.String, "measured": pl.Float64, "modeled": pl.Float64,
    "error_abs": pl.Float64, "error_rel": pl.Float64, "spread": pl.Float64,
    "replay_start": pl.Datetime("us"), "replay_end": pl.Datetime("us"),
}


def derived_key(pilot: str, name: str, seed: int | None = None) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"{pilot}--whatif-{slug}" + (f"-s{seed}" if seed is not None else "")


def policy_map(rep: ReplayInput, name: str) -> dict[str, frozenset[Policy]]:
    """Policy set per pool for a what-if name: `declared` = the pilot's adjustments on its
    treatment pools; any other name (or `a+b` composition) on every pool."""
    if name == DECLARED:
        ps = policy_set(rep.adjustments or [TODAY])
        return {p: ps for p in rep.treatment_pools if p in rep.cluster.pool_names}
    ps = policy_set(name.split("+"))
    return {p: ps for p in rep.cluster.pool_names}


@dataclass
class ReplayTables:
    requests: pl.DataFrame
    jobs: pl.DataFrame
    samples: pl.DataFrame
    attempts: int
    engine_s: float


def simulate_replay(rep: ReplayInput, policies: dict[str, frozenset[Policy]], seed: int,
                    workloads: list[PoolWorkload] | None = None) -> ReplayTables:
    """Run the engine on the replay input and build the canonical tables. `workloads`: the
    seed's workloads if already drawn (every policy of a seed replays the same draws)."""
    cfg: SimConfig = rep.config(policies, seed)
    run = run_workloads(cfg, rep.cluster, workloads or rep.workloads(seed), rep.jobs)
    req = requests_table(cfg, rep.cluster, run.workloads, run.outcomes)
    jobs = jobs_table(cfg, rep.cluster, run.jobs, run.outcomes).drop(list(HIDDEN_JOB_COLUMNS))
    samples = samples_table(cfg, rep.cluster, run.workloads, run.jobs, run.outcomes)
    return ReplayTables(req, jobs, samples, run.attempts, run.timings["engine_s"])


def observed_tables(con: duckdb.DuckDBPyConnection, rep: ReplayInput) -> ReplayTables:
    """The pilot's own rows for the replay window (logical requests first arriving in it)."""
    p = {"p": rep.pilot, "s": rep.start, "e": rep.end}
    # retries arrive after their first attempt: one time-bounded scan, then keep the
    # attempts whose logical request starts in the window
    req = con.execute(
        """
        WITH r AS (
            SELECT * EXCLUDE (pilot) FROM requests
            WHERE pilot = $p AND arrival_ts >= $s AND arrival_ts < $e + INTERVAL 1 HOUR
        ),
        roots AS (SELECT request_id AS root FROM r WHERE attempt = 0 AND arrival_ts < $e)
        SELECT r.* FROM r JOIN roots ON roots.root = coalesce(r.parent_request_id, r.request_id)
        """, p).pl()
    samples = con.execute("SELECT * EXCLUDE (pilot) FROM samples WHERE pilot = $p "
                          "AND ts >= $s AND ts < $e", p).pl()
    jobs = con.execute("SELECT * EXCLUDE (pilot) FROM jobs WHERE pilot = $p "
                       "AND end_ts > $s AND start_ts < $e", p).pl()
    return ReplayTables(req, jobs, samples, req.height, 0.0)


def _insert(con: duckdb.DuckDBPyConnection, table: str, df: pl.DataFrame, key: str) -> None:
    if df.height == 0:
        return
    con.register("__whatif", df.with_columns(pl.lit(key).alias("pilot")))
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM __whatif")
    finally:
        con.unregister("__whatif")


def config_rows(con: duckdb.DuckDBPyConnection, pilot: str) -> dict[str, pl.DataFrame]:
    """The pilot's config rows (without `pilot`) that every derived key copies."""
    return {t: con.execute(f"SELECT * EXCLUDE (pilot) FROM {t} WHERE pilot = ?", [pilot]).pl()
            for t in ("sla_targets", "pilot_scope", "thresholds", "pilots")}


def scratch(path: str | None = None) -> duckdb.DuckDBPyConnection:
    """A scratch warehouse with the staging schema (in memory unless `path`)."""
    con = duckdb.connect(path or ":memory:")
    # the tables are small; one thread leaves the other core to the simulation thread
    con.execute("SET threads = 1")
    ensure_schema(con)
    return con


def write_derived(con: duckdb.DuckDBPyConnection, rep: ReplayInput, key: str,
                  tables: ReplayTables, config: dict[str, pl.DataFrame]) -> None:
    """Staging rows of a derived key: the replay's tables, the pilot's config rows, and the
    replay window as the phase `rep.phase`."""
    for t in ("requests", "jobs", "samples", *CONFIG_TABLES):
        con.execute(f"DELETE FROM {t} WHERE pilot = ?", [key])
    _insert(con, "requests", tables.requests, key)
    _insert(con, "jobs", tables.jobs, key)
    _insert(con, "samples", tables.samples, key)
    con.execute("INSERT INTO phases VALUES (?, ?, ?, ?)", [key, rep.phase, rep.start, rep.end])
    for t, df in config.items():
        _insert(con, t, df, key)


def headline_models(target: str = "metrics_headline") -> list[SqlModel]:
    """`target` and every model it reads, in registry order."""
    by_name = {m.name: m for m in MODELS}
    need: set[str] = set()
    todo = [target]
    while todo:
        n = todo.pop()
        if n in need or n not in by_name:
            continue
        need.add(n)
        todo.extend(by_name[n].deps)
    return [m for m in MODELS if m.name in need]


def measure(con: duckdb.DuckDBPyConnection, key: str, phase: str) -> pl.DataFrame:
    """The same SQL as for telemetry: build the headline closure for `key`, read it back."""
    for m in headline_models():
        build_model(con, m, key)
    return con.execute(
        """
        SELECT segment, breakdown, coalesce(breakdown_value, '') AS breakdown_value, metric,
               unit, value
        FROM metrics_headline
        WHERE pilot = ? AND phase = ? AND breakdown IN ('overall', 'priority')
        """, [key, phase]).pl()


@dataclass
class WhatIfRun:
    results: pl.DataFrame
    model_error: pl.DataFrame
    timings: dict[str, float]
    attempts: int
    notes: list[str]
    status: WhatIfStatus  # whatif_status row: modeled (on what basis) or why not


KEY = ["segment", "breakdown", "breakdown_value", "metric"]


def run_whatif(
    con: duckdb.DuckDBPyConnection | None,
    pilot: str,
    policies: Iterable[str] = (*DEFAULT_POLICIES, DECLARED),
    phase: str = "baseline",
    minutes: float | None = DEFAULT_MINUTES,
    seeds: Iterable[int] = DEFAULT_SEEDS,
    keep_dir: str | None = None,
    rep: ReplayInput | None = None,
    config: dict[str, pl.DataFrame] | None = None,
) -> WhatIfRun:
    """Replay `phase` of `pilot` under today's policy and each of `policies`, measure every
    replay with the metric SQL, and return (not write) the two what-if tables.

    Without a warehouse (`con` None: a trace replay) `rep` and `config` must be given; without
    observed requests (`rep.observed` false: a trace replay) nothing is measured to compare
    with. Simulation (Python) and measurement (DuckDB, which
    releases the GIL) of consecutive replays overlap in a one-worker thread pool."""
    t0 = time.perf_counter()
    seeds = tuple(seeds)
    if rep is None:
        if con is None:
            raise ValueError("a replay input or a warehouse connection is needed")
        prepared, status = prepare(con, pilot, phase, minutes)
        if prepared is None:
            raise NoReplayInput(status.reason or "not modeled")
        rep = prepared
    if config is None:
        if con is None:
            raise ValueError("config rows or a warehouse connection are needed")
        config = config_rows(con, pilot)
    timings = {"load_s": time.perf_counter() - t0, "simulate_s": 0.0}
    attempts = 0
    names = [TODAY, *[p for p in dict.fromkeys(policies) if p != TODAY]]
    if DECLARED in names and not rep.adjustments:
        names.remove(DECLARED)

    def measured_key(key: str, tables: ReplayTables) -> pl.DataFrame:
        path = None if keep_dir is None else str(Path(keep_dir) / f"{key}.duckdb")
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).unlink(missing_ok=True)
        sc = scratch(path)
        try:
            write_derived(sc, rep, key, tables, config)
            return measure(sc, key, rep.phase)
        finally:
            sc.close()

    futures: dict[tuple[str, int], Future[pl.DataFrame]] = {}
    drawn = {seed: rep.workloads(seed) for seed in seeds}  # common random numbers
    with ThreadPoolExecutor(max_workers=1) as workers:
        if con is not None and rep.observed:
            futures[("observed", 0)] = workers.submit(
                measured_key, derived_key(pilot, "observed"), observed_tables(con, rep))
        for name in names:
            pm = policy_map(rep, name)
            for seed in seeds:
                t = time.perf_counter()
                tables = simulate_replay(rep, pm, seed, drawn[seed])
                attempts += tables.attempts
                timings["simulate_s"] += time.perf_counter() - t
                futures[(name, seed)] = workers.submit(
                    measured_key, derived_key(pilot, name, seed), tables)
        done = {k: f.result() for k, f in futures.items()}
    per: dict[str, list[pl.DataFrame]] = {}
    for (name, seed), df in done.items():
        if name != "observed":
            per.setdefault(name, []).append(df.with_columns(seed=pl.lit(seed)))
    measured = (done[("observed", 0)] if ("observed", 0) in done
                else pl.DataFrame(schema={"segment": pl.String, "breakdown": pl.String,
                                          "breakdown_value": pl.String, "metric": pl.String,
                                          "unit": pl.String, "value": pl.Float64})
                ).rename({"value": "measured_value"})
    timings["simulate_and_measure_s"] = time.perf_counter() - t0 - timings["load_s"]
    results = _results(rep, names, per, measured, seeds)
    error = _model_error(con, rep, results, per)
    timings["total_s"] = time.perf_counter() - t0
    return WhatIfRun(results, error, timings, attempts, rep.notes, modeled(rep))


def _results(rep: ReplayInput, names: list[str], per: dict[str, list[pl.DataFrame]],
             measured: pl.DataFrame, seeds: tuple[int, ...]) -> pl.DataFrame:
    today = pl.concat(per[TODAY]).select(*KEY, "unit", "seed", base=pl.col("value"))
    frames = []
    for name in names:
        pol = pl.concat(per[name]).select(*KEY, "seed", pred=pl.col("value"))
        j = pol.join(today, on=[*KEY, "seed"], how="inner").with_columns(
            diff=pl.col("pred") - pl.col("base"))
        agg = j.group_by(KEY).agg(
            pl.col("unit").first(),
            baseline_value=pl.col("base").mean(),
            predicted_value=pl.col("pred").mean(),
            predicted_change=pl.col("diff").mean(),
            spread=pl.col("diff").std(),
            seeds=pl.col("seed").n_unique().cast(pl.Int32),
        )
        label = (policy_label(policy_set(rep.adjustments or [TODAY])) if name == DECLARED
                 else policy_label(policy_set(name.split("+"))))
        frames.append(agg.with_columns(policy=pl.lit(name), policies=pl.lit(label)))
    out = pl.concat(frames).join(measured.drop("unit"), on=KEY, how="left")
    return out.with_columns(
        pilot=pl.lit(rep.pilot), phase=pl.lit(rep.phase), basis=pl.lit("modeled"),
        rel_change=pl.col("predicted_change") / pl.col("baseline_value").abs().replace(0, None),
        replay_start=pl.lit(rep.start).cast(pl.Datetime("us")),
        replay_end=pl.lit(rep.end).cast(pl.Datetime("us")),
        replay_minutes=pl.lit(rep.duration_s / 60),
    ).select(list(RESULTS_COLUMNS)).cast(RESULTS_COLUMNS).sort(
        "policy", "segment", "breakdown", "breakdown_value", "metric")


def _model_error(con: duckdb.DuckDBPyConnection | None, rep: ReplayInput,
                 results: pl.DataFrame, per: dict[str, list[pl.DataFrame]]) -> pl.DataFrame:
    today = results.filter((pl.col("policy") == TODAY) & (pl.col("breakdown") == "overall")
                           & pl.lit(rep.observed))  # no measured side: no baseline rows
    base_rows = today.select(
        comparison=pl.lit("baseline_replay"), segment="segment", metric="metric", unit="unit",
        measured="measured_value", modeled="baseline_value",
        spread=pl.lit(None, pl.Float64))
    sd = pl.concat(per[TODAY]).filter(pl.col("breakdown") == "overall").group_by(
        "segment", "metric").agg(sd=pl.col("value").std())
    base_rows = base_rows.join(sd, on=["segment", "metric"], how="left").with_columns(
        spread=pl.col("sd")).drop("sd")
    frames = [base_rows]
    has_ba = con is not None and con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_name = 'metrics_before_after'").fetchone()[0]
    if has_ba and DECLARED in per:
        assert con is not None
        # a metric the pilot does not measure (NULL change) has nothing to compare with
        ba = con.execute("SELECT segment, metric, abs_change FROM metrics_before_after "
                         "WHERE pilot = ? AND abs_change IS NOT NULL", [rep.pilot]).pl()
        dec = results.filter((pl.col("policy") == DECLARED) & (pl.col("breakdown") == "overall")
                             & pl.col("segment").is_in(["treatment", "control"]))
        frames.append(dec.join(ba, on=["segment", "metric"], how="inner").select(
            comparison=pl.lit("treatment_change"), segment="segment", metric="metric",
            unit="unit", measured="abs_change", modeled="predicted_change", spread="spread"))
    out = pl.concat(frames, how="vertical_relaxed")
    return out.with_columns(
        pilot=pl.lit(rep.pilot),
        error_abs=pl.col("modeled") - pl.col("measured"),
        error_rel=(pl.col("modeled") - pl.col("measured"))
        / pl.col("measured").abs().replace(0, None),
        replay_start=pl.lit(rep.start).cast(pl.Datetime("us")),
        replay_end=pl.lit(rep.end).cast(pl.Datetime("us")),
    ).select(list(ERROR_COLUMNS)).cast(ERROR_COLUMNS).sort("comparison", "segment", "metric")


def not_modeled_run(status: WhatIfStatus) -> WhatIfRun:
    """No replay: empty what-if tables of the right shape beside the not_modeled status."""
    return WhatIfRun(pl.DataFrame(schema=RESULTS_COLUMNS), pl.DataFrame(schema=ERROR_COLUMNS),
                     {}, 0, [], status)


def store(con: duckdb.DuckDBPyConnection, pilot: str, run: WhatIfRun) -> dict[str, int]:
    """Replace the pilot's rows of whatif_results, whatif_model_error and whatif_status (one
    transaction)."""
    counts = {}
    con.execute(read_sql("staging/whatif_status.sql"))
    con.execute("BEGIN TRANSACTION")
    try:
        for table, df in (("whatif_results", run.results),
                          ("whatif_model_error", run.model_error),
                          ("whatif_status", run.status.frame())):
            con.register("__w", df)
            try:
                con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM __w LIMIT 0")
                con.execute(f"DELETE FROM {table} WHERE pilot = ?", [pilot])
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM __w")
            finally:
                con.unregister("__w")
            counts[table] = df.height
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return counts


HEADLINE = ("p50_latency_s", "p95_latency_s", "p99_latency_s", "queue_wait_p95_s",
            "timeout_drop_rate", "sla_adherence", "goodput_rps", "retry_amplification",
            "effective_util", "hcl_pp")


def headline_table(results: pl.DataFrame, segment: str = "all") -> pl.DataFrame:
    """Wide view for printing: one row per policy, headline metrics as predicted values."""
    r = results.filter((pl.col("segment") == segment) & (pl.col("breakdown") == "overall")
                       & pl.col("metric").is_in(HEADLINE))
    if r.height == 0:
        return pl.DataFrame()
    wide = r.pivot(on="metric", index="policy", values="predicted_value")
    return wide.select("policy", *[m for m in HEADLINE if m in wide.columns])
