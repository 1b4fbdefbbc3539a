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
from pipelines.whatif.replay import WARMUP_MINUTES, NoReplayInput, ReplayInput, load_replay
from pipelines.whatif.status import WhatIfStatus, modeled, prepare

TODAY = "fifo_shared"
DECLARED = "declared"  # the pilot's own adjustments on its treatment pools
VALIDATION = "validation"
# Exploratory policy sets (each on every pool; "a+b" composes), replayed by default only for a
# pilot without declared adjustments; with them, the default is the declared set alone (the
# one a measurement can judge). power_of_two and random_routing are opt-in.
DEFAULT_POLICIES: tuple[str, ...] = (
    "batch_separation", "priority", "burst_buffering", "segmentation", "jsq",
)
DEFAULT_MINUTES: float | None = None  # whole phases
DEFAULT_SEEDS: tuple[int, ...] = tuple(range(1, 11))
SEGMENTS = ("all", "treatment", "control")
CONFIG_TABLES = ("phases", "sla_targets", "pilot_scope", "thresholds", "pilots")
# What the error table judges: levels and effects of latency, queueing, SLA and the client's
# outcomes. No counts (they follow from the arrivals replayed) and no GPU figures: those come
# from the simulator's default per-class efficiencies, not fitted to the pilot's GPU samples.
ERROR_METRICS: tuple[str, ...] = (
    "p50_latency_s", "p95_latency_s", "p99_latency_s", "queue_wait_p50_s", "queue_wait_p95_s",
    "timeout_drop_rate", "sla_adherence", "goodput_rps", "retry_amplification",
)
SIM_DEFAULT_METRICS = frozenset({
    "nominal_util", "effective_util", "hcl_pp", "gpu_power_w", "gpu_energy_j",
    "energy_per_good_request_j", "gpu_mem_used_bytes", "goodput_rps_per_gpu",
})
MODELED, SIM_DEFAULTS = "modeled", "modeled (simulator defaults)"

RESULTS_COLUMNS = {
    "pilot": pl.String, "policy": pl.String, "policies": pl.String, "phase": pl.String,
    "segment": pl.String, "breakdown": pl.String, "breakdown_value": pl.String,
    "metric": pl.String, "unit": pl.String, "measured_value": pl.Float64,
    "baseline_value": pl.Float64, "predicted_value": pl.Float64,
    "predicted_min": pl.Float64, "predicted_max": pl.Float64,
    "predicted_change": pl.Float64, "change_min": pl.Float64, "change_median": pl.Float64,
    "change_max": pl.Float64, "rel_change": pl.Float64, "spread": pl.Float64,
    "seeds": pl.Int32, "basis": pl.String, "replay_start": pl.Datetime("us"),
    "replay_end": pl.Datetime("us"), "replay_minutes": pl.Float64,
    "warmup_minutes": pl.Float64,
}
ERROR_COLUMNS = {
    "pilot": pl.String, "comparison": pl.String, "segment": pl.String, "metric": pl.String,
    "unit": pl.String, "measured": pl.Float64, "measured_lo": pl.Float64,
    "measured_hi": pl.Float64, "modeled": pl.Float64, "modeled_min": pl.Float64,
    "modeled_median": pl.Float64, "modeled_max": pl.Float64, "error_abs": pl.Float64,
    "error_rel": pl.Float64, "inside": pl.Boolean, "same_sign": pl.Boolean,
    "spread": pl.Float64, "seeds": pl.Int32, "replay_start": pl.Datetime("us"),
    "replay_end": pl.Datetime("us"),
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
    p = {"p": rep.pilot, "s": rep.phase_start, "e": rep.end}
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
    # the warm-up is replayed but lies outside the phase, so no metric counts it
    con.execute("INSERT INTO phases VALUES (?, ?, ?, ?)",
                [key, rep.phase, rep.phase_start, rep.end])
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
EMPTY_MEASURED = {"segment": pl.String, "breakdown": pl.String, "breakdown_value": pl.String,
                  "metric": pl.String, "unit": pl.String, "measured_value": pl.Float64}


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_name = ?", [table]).fetchone()[0])


def whole_phase(con: duckdb.DuckDBPyConnection, rep: ReplayInput) -> bool:
    """Whether the replay measures exactly the pilot's phase (then the warehouse's own
    metrics_headline rows are the measured side)."""
    row = con.execute("SELECT start_ts, end_ts FROM phases WHERE pilot = ? AND phase = ?",
                      [rep.pilot, rep.phase]).fetchone()
    return row is not None and (row[0], row[1]) == (rep.phase_start, rep.end)


def measured_levels(con: duckdb.DuckDBPyConnection, pilot: str, phase: str) -> pl.DataFrame:
    """The pilot's measured headline rows of `phase` (overall and per priority)."""
    if not _has_table(con, "metrics_headline"):
        return pl.DataFrame(schema=EMPTY_MEASURED)
    return con.execute(
        """
        SELECT segment, breakdown, coalesce(breakdown_value, '') AS breakdown_value, metric,
               unit, value AS measured_value
        FROM metrics_headline
        WHERE pilot = ? AND phase = ? AND breakdown IN ('overall', 'priority')
        ORDER BY ALL
        """, [pilot, phase]).pl()


def has_validation(con: duckdb.DuckDBPyConnection, pilot: str) -> bool:
    """A validation phase with first attempts: the counterfactual has arrivals to replay."""
    return bool(con.execute(
        """
        SELECT count(*) FROM phases p JOIN requests r
          ON r.pilot = p.pilot AND r.attempt = 0
         AND r.arrival_ts >= p.start_ts AND r.arrival_ts < p.end_ts
        WHERE p.pilot = ? AND p.phase = ?
        """, [pilot, VALIDATION]).fetchone()[0])


def run_whatif(
    con: duckdb.DuckDBPyConnection | None,
    pilot: str,
    policies: Iterable[str] | None = None,
    phase: str = "baseline",
    minutes: float | None = DEFAULT_MINUTES,
    seeds: Iterable[int] = DEFAULT_SEEDS,
    keep_dir: str | None = None,
    rep: ReplayInput | None = None,
    config: dict[str, pl.DataFrame] | None = None,
    warmup_minutes: float = WARMUP_MINUTES,
    workers: int = 2,
) -> WhatIfRun:
    """Replay `pilot`'s phases and measure every replay with the metric SQL; return (not
    write) the what-if tables.

    A pilot with per-request rows and a validation phase gets (METRICS.md, What-if):
    - calibration: `phase` (the baseline), whole unless `minutes`, under today's policy;
    - counterfactual: the validation phase's own arrivals (after `warmup_minutes` of the
      arrivals before it) under today's policy and under each of `policies` (default: the
      declared adjustments), every seed drawing the same service times and client decisions
      under every policy (common random numbers).
    Otherwise (a trace, a declared service model, no validation phase) `phase` is replayed
    under today's policy and `policies`. Without a warehouse (`con` None: a trace replay)
    `rep` and `config` must be given. Simulation (Python) and measurement (DuckDB, which
    releases the GIL) overlap in a pool of `workers` threads."""
    t0 = time.perf_counter()
    seeds = tuple(seeds)
    if rep is None:
        if con is None:
            raise ValueError("a replay input or a warehouse connection is needed")
        prepared, _ = prepare(con, pilot, phase, minutes, warmup_minutes)
        if prepared is None:
            raise NoReplayInput(_.reason or "not modeled")
        rep = prepared
    if config is None:
        if con is None:
            raise ValueError("config rows or a warehouse connection are needed")
        config = config_rows(con, pilot)
    if policies is None:
        policies = (DECLARED,) if rep.adjustments else DEFAULT_POLICIES
    names = [TODAY, *[p for p in dict.fromkeys(policies) if p != TODAY]]
    if DECLARED in names and not rep.adjustments:
        names.remove(DECLARED)
    groups: list[tuple[ReplayInput, list[str]]] = [(rep, names)]
    if (con is not None and rep.observed and phase != VALIDATION
            and has_validation(con, pilot)):
        rep_v = load_replay(con, pilot, VALIDATION, minutes, warmup_minutes=warmup_minutes)
        groups = [(rep, [TODAY]), (rep_v, names)]
    timings = {"load_s": time.perf_counter() - t0, "simulate_s": 0.0}
    attempts = 0

    def measured_key(key: str, r: ReplayInput, tables: ReplayTables) -> pl.DataFrame:
        path = None if keep_dir is None else str(Path(keep_dir) / f"{key}.duckdb")
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).unlink(missing_ok=True)
        sc = scratch(path)
        try:
            write_derived(sc, r, key, tables, config)
            return measure(sc, key, r.phase)
        finally:
            sc.close()

    futures: dict[tuple[int, str, int], Future[pl.DataFrame]] = {}
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        pending: list[Future[pl.DataFrame]] = []
        for g, (r, group_names) in enumerate(groups):
            if con is not None and r.observed and not whole_phase(con, r):
                futures[(g, "observed", 0)] = pool.submit(
                    measured_key, derived_key(pilot, f"observed-{r.phase}"), r,
                    observed_tables(con, r))
            for seed in seeds:
                drawn = r.workloads(seed)  # common random numbers across the policies
                for name in group_names:
                    t = time.perf_counter()
                    tables = simulate_replay(r, policy_map(r, name), seed, drawn)
                    attempts += tables.attempts
                    timings["simulate_s"] += time.perf_counter() - t
                    # bounded backlog: replays wait in memory only while a worker is busy
                    while sum(not f.done() for f in pending) > max(workers, 1):
                        next(f for f in pending if not f.done()).result()
                    f = pool.submit(measured_key, derived_key(pilot, f"{r.phase}-{name}", seed),
                                    r, tables)
                    pending.append(f)
                    futures[(g, name, seed)] = f
        done = {k: f.result() for k, f in futures.items()}
    timings["simulate_and_measure_s"] = time.perf_counter() - t0 - timings["load_s"]
    frames, per_all = [], []
    for g, (r, group_names) in enumerate(groups):
        per: dict[str, list[pl.DataFrame]] = {}
        for (gg, name, seed), df in sorted(done.items(), key=lambda kv: kv[0][1:]):
            if gg == g and name != "observed":
                per.setdefault(name, []).append(df.with_columns(seed=pl.lit(seed)))
        if (g, "observed", 0) in done:
            measured = done[(g, "observed", 0)].rename({"value": "measured_value"})
        elif con is not None and r.observed:
            measured = measured_levels(con, pilot, r.phase)
        else:
            measured = pl.DataFrame(schema=EMPTY_MEASURED)
        frames.append(_results(r, group_names, per, measured, seeds))
        per_all.append((r, per))
    results = pl.concat(frames).sort(
        "phase", "policy", "segment", "breakdown", "breakdown_value", "metric")
    error = _model_error(con, pilot, results, per_all)
    timings["total_s"] = time.perf_counter() - t0
    notes = list(dict.fromkeys(n for r, _ in groups for n in r.notes))
    return WhatIfRun(results, error, timings, attempts, notes, modeled(rep))


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
            predicted_min=pl.col("pred").min(),
            predicted_max=pl.col("pred").max(),
            predicted_change=pl.col("diff").mean(),
            change_min=pl.col("diff").min(),
            change_median=pl.col("diff").median(),
            change_max=pl.col("diff").max(),
            spread=pl.col("diff").std(),
            seeds=pl.col("seed").n_unique().cast(pl.Int32),
        )
        label = (policy_label(policy_set(rep.adjustments or [TODAY])) if name == DECLARED
                 else policy_label(policy_set(name.split("+"))))
        frames.append(agg.with_columns(policy=pl.lit(name), policies=pl.lit(label)))
    out = pl.concat(frames).join(measured.drop("unit"), on=KEY, how="left")
    return out.with_columns(
        pilot=pl.lit(rep.pilot), phase=pl.lit(rep.phase),
        basis=pl.when(pl.col("metric").is_in(list(SIM_DEFAULT_METRICS)))
        .then(pl.lit(SIM_DEFAULTS)).otherwise(pl.lit(MODELED)),
        rel_change=pl.col("predicted_change") / pl.col("baseline_value").abs().replace(0, None),
        replay_start=pl.lit(rep.phase_start).cast(pl.Datetime("us")),
        replay_end=pl.lit(rep.end).cast(pl.Datetime("us")),
        replay_minutes=pl.lit((rep.end - rep.phase_start).total_seconds() / 60),
        warmup_minutes=pl.lit((rep.phase_start - rep.start).total_seconds() / 60),
    ).select(list(RESULTS_COLUMNS)).cast(RESULTS_COLUMNS)


def _seed_stats(df: pl.DataFrame, value: str) -> list[pl.Expr]:
    return [pl.col(value).mean().alias("modeled"), pl.col(value).min().alias("modeled_min"),
            pl.col(value).median().alias("modeled_median"),
            pl.col(value).max().alias("modeled_max"), pl.col(value).std().alias("spread"),
            pl.col("seed").n_unique().cast(pl.Int32).alias("seeds")]


def _levels(per: dict[str, list[pl.DataFrame]], name: str, segments: Iterable[str]
            ) -> pl.DataFrame:
    """Per segment x metric: the seeds' levels of one policy (overall, judged metrics)."""
    d = pl.concat(per[name]).filter(
        (pl.col("breakdown") == "overall") & pl.col("metric").is_in(list(ERROR_METRICS))
        & pl.col("segment").is_in(list(segments)))
    return d.group_by("segment", "metric").agg(pl.col("unit").first(),
                                               *_seed_stats(d, "value"))


def _measured_did(con: duckdb.DuckDBPyConnection, pilot: str) -> pl.DataFrame:
    """The measured difference-in-differences and its bootstrap interval (metrics_ci; the
    point estimate alone from metrics_did when the statistics layer has not run)."""
    if _has_table(con, "metrics_ci"):
        d = con.execute("SELECT metric, did AS measured, did_lo AS measured_lo, "
                        "did_hi AS measured_hi FROM metrics_ci WHERE pilot = ? "
                        "AND segment = 'treatment' AND did IS NOT NULL", [pilot]).pl()
        if d.height:
            return d
    if _has_table(con, "metrics_did"):
        return con.execute("SELECT metric, did AS measured, NULL::DOUBLE AS measured_lo, "
                           "NULL::DOUBLE AS measured_hi FROM metrics_did WHERE pilot = ? "
                           "AND did IS NOT NULL", [pilot]).pl()
    return pl.DataFrame(schema={"metric": pl.String, "measured": pl.Float64,
                                "measured_lo": pl.Float64, "measured_hi": pl.Float64})


def _modeled_did(baseline: dict[str, list[pl.DataFrame]],
                 validation: dict[str, list[pl.DataFrame]]) -> pl.DataFrame:
    """The measured DiD's own construction on replayed levels, per seed: (declared validation
    - today's baseline) on the treatment segment minus the same on the control segment. It
    differs from the `effect` by what the phases' workloads changed besides the policy (the
    DiD's parallel-trends assumption)."""
    key = ["segment", "metric", "seed"]

    def lv(frames: list[pl.DataFrame], name: str) -> pl.DataFrame:
        return pl.concat(frames).filter(
            (pl.col("breakdown") == "overall") & pl.col("metric").is_in(list(ERROR_METRICS))
        ).select(*key, "unit", pl.col("value").alias(name))

    ch = lv(validation[DECLARED], "v").join(lv(baseline[TODAY], "b").drop("unit"), on=key
                                            ).with_columns(ch=pl.col("v") - pl.col("b"))
    d = ch.filter(pl.col("segment") == "treatment").join(
        ch.filter(pl.col("segment") == "control").select("metric", "seed", c="ch"),
        on=["metric", "seed"]).with_columns(did=pl.col("ch") - pl.col("c"))
    return d.group_by("segment", "metric").agg(pl.col("unit").first(), *_seed_stats(d, "did"))


def _model_error(con: duckdb.DuckDBPyConnection | None, pilot: str, results: pl.DataFrame,
                 groups: list[tuple[ReplayInput, dict[str, list[pl.DataFrame]]]]
                 ) -> pl.DataFrame:
    """`calibration`: today's replay of the calibrated phase vs its measured levels;
    `effect`: the predicted difference-in-differences (declared - today on the validation
    arrivals, treatment minus control, per seed) vs the measured one and its interval;
    `modeled_did`: the DiD computed like the measured one from replayed levels of both phases
    (see `_modeled_did`), vs the measured one and its interval;
    `validation_level`: the declared replay of the validation phase vs its measured levels."""
    frames: list[pl.DataFrame] = []
    measured = results.filter(pl.col("breakdown") == "overall").select(
        "phase", "segment", "metric", measured="measured_value").unique(
        ["phase", "segment", "metric"], keep="first")
    window = {r.phase: (r.phase_start, r.end) for r, _ in groups}
    calibrated: dict[str, list[pl.DataFrame]] | None = None
    for r, per in groups:
        if not r.observed:
            continue
        meas = measured.filter(pl.col("phase") == r.phase).drop("phase")
        if r.phase != VALIDATION:
            calibrated = per
            frames.append(_levels(per, TODAY, SEGMENTS).join(
                meas, on=["segment", "metric"], how="inner").with_columns(
                comparison=pl.lit("calibration"), phase=pl.lit(r.phase)))
            continue
        if DECLARED not in per:
            continue
        frames.append(_levels(per, DECLARED, SEGMENTS).join(
            meas, on=["segment", "metric"], how="inner").with_columns(
            comparison=pl.lit("validation_level"), phase=pl.lit(r.phase)))
        if con is None:
            continue
        key = ["segment", "metric", "seed"]
        d = pl.concat(per[DECLARED]).filter(pl.col("breakdown") == "overall").select(
            *key, "unit", dec="value").join(
            pl.concat(per[TODAY]).filter(pl.col("breakdown") == "overall").select(
                *key, today="value"), on=key).with_columns(diff=pl.col("dec") - pl.col("today"))
        did = d.filter(pl.col("segment") == "treatment").join(
            d.filter(pl.col("segment") == "control").select("metric", "seed", ctrl="diff"),
            on=["metric", "seed"]).with_columns(did=pl.col("diff") - pl.col("ctrl")).filter(
            pl.col("metric").is_in(list(ERROR_METRICS)))
        eff = did.group_by("segment", "metric").agg(pl.col("unit").first(),
                                                    *_seed_stats(did, "did"))
        measured_did = _measured_did(con, pilot)
        frames.append(eff.join(measured_did, on="metric", how="inner")
                      .with_columns(comparison=pl.lit("effect"), phase=pl.lit(r.phase)))
        if calibrated is not None:
            frames.append(_modeled_did(calibrated, per).join(measured_did, on="metric",
                                                             how="inner")
                          .with_columns(comparison=pl.lit("modeled_did"),
                                        phase=pl.lit(r.phase)))
    if not frames:
        return pl.DataFrame(schema=ERROR_COLUMNS)
    out = pl.concat(frames, how="diagonal_relaxed")
    for c in ("measured_lo", "measured_hi"):
        if c not in out.columns:
            out = out.with_columns(pl.lit(None, pl.Float64).alias(c))
    starts = {p: w[0] for p, w in window.items()}
    ends = {p: w[1] for p, w in window.items()}
    return out.with_columns(
        pilot=pl.lit(pilot),
        error_abs=pl.col("modeled") - pl.col("measured"),
        error_rel=(pl.col("modeled") - pl.col("measured"))
        / pl.col("measured").abs().replace(0, None),
        inside=pl.when(pl.col("measured_lo").is_not_null() & pl.col("measured_hi").is_not_null())
        .then((pl.col("modeled") >= pl.col("measured_lo"))
              & (pl.col("modeled") <= pl.col("measured_hi"))),
        same_sign=pl.when(pl.col("comparison").is_in(["effect", "modeled_did"]))
        .then(pl.col("modeled").sign() == pl.col("measured").sign()),
        replay_start=pl.col("phase").replace_strict(starts, return_dtype=pl.Datetime("us")),
        replay_end=pl.col("phase").replace_strict(ends, return_dtype=pl.Datetime("us")),
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
                have = [c for (c,) in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                    "ORDER BY ordinal_position", [table]).fetchall()]
                if have and have != df.columns:  # an older shape: its rows are rebuildable
                    con.execute(f"DROP TABLE {table}")
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


def last_phase(results: pl.DataFrame) -> pl.DataFrame:
    """The rows of the replay the policies were compared on (the counterfactual, when the
    pilot has a validation phase; else the one phase replayed)."""
    if results.height == 0:
        return results
    phases = results["phase"].unique().to_list()
    return results.filter(pl.col("phase") == (VALIDATION if VALIDATION in phases
                                              else phases[0]))


def headline_table(results: pl.DataFrame, segment: str = "all") -> pl.DataFrame:
    """Wide view for printing: one row per policy, headline metrics as predicted values."""
    r = last_phase(results).filter(
        (pl.col("segment") == segment) & (pl.col("breakdown") == "overall")
        & pl.col("metric").is_in(HEADLINE))
    if r.height == 0:
        return pl.DataFrame()
    wide = r.pivot(on="metric", index="policy", values="predicted_value")
    return wide.select("policy", *[m for m in HEADLINE if m in wide.columns])
