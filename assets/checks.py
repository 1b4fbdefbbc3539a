"""Data-quality gates as Dagster asset checks, per pilot partition.

- `schema` (blocking) on requests/jobs/samples: the pilot's stored rows fit the Pandera model;
  a failure stops every downstream asset of that pilot.
- `quality_suite` on requests/jobs/samples: the Great Expectations suite; results go to the
  check's metadata and to `quality_results` (the report's data-quality appendix).
- `no_raw_identifiers` (blocking) on ingest_log: no VARCHAR value in any warehouse table is
  a raw identifier whose token is also stored (observer-only proof on every run).
- `unique_key` on every derived table (non-blocking): the pilot's rows have no NULL and no
  duplicate natural key (TABLE_RULES); the row count is in the metadata. `value_range` on
  the tables of (value, unit) rows: shares within 0-1, seconds not negative. Both come from
  one query, run inside the asset's own step (assets/sql_factory.py), so they cost no step.
- `runnable` on landing_status: every pilot folder is valid and its secret is set; failed,
  it lists every problem. The landing sensor reports it at every change (and each pilot's
  state on its landing_status partition); executing it from the UI re-inspects the folder.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from pipelines.anonymize import Anonymizer, secret_from_env
from pipelines.config import load_pilot
from pipelines.landing import Cursor, problems_of, scan_landing
from pipelines.partitions import pilot_partitions
from pipelines.quality.expectations import run_suite, store_results
from pipelines.quality.leaks import scan_for_raw_ids
from pipelines.quality.schema_gate import schema_gate
from pipelines.resources import PilotPaths
from pipelines.warehouse import ensure_schema

GATED_TABLES = ("requests", "jobs", "samples")
LANDING_STATUS = dg.AssetKey("landing_status")
LANDING_CHECK = "runnable"
KEY_CHECK = "unique_key"
RANGE_CHECK = "value_range"
# Partitioned asset checks are "preview" in Dagster 1.13; they are what per-pilot gates need.
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")


def _schema_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=table,
        name="schema",
        blocking=True,
        partitions_def=pilot_partitions,
        description=f"The pilot's `{table}` rows fit the Pandera model (blocking).",
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: DuckDBResource
               ) -> dg.AssetCheckResult:
        with warehouse.get_connection() as con:
            passed, meta = schema_gate(con, table, context.partition_key)
        return dg.AssetCheckResult(passed=passed, metadata=meta)

    return _check


def _suite_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=table,
        name="quality_suite",
        partitions_def=pilot_partitions,
        description=f"Great Expectations suite on `{table}`; results in quality_results.",
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: DuckDBResource
               ) -> dg.AssetCheckResult:
        pilot = context.partition_key
        with warehouse.get_connection() as con:
            ensure_schema(con)
            results = run_suite(con, table, pilot)
            store_results(con, pilot, table, results)
        failed = [r for r in results if not r.passed]
        return dg.AssetCheckResult(
            passed=not failed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "expectations": len(results),
                "failed": len(failed),
                "results": dg.MetadataValue.md(
                    "| check | passed | observed | expected |\n|---|---|---|---|\n"
                    + "\n".join(f"| {r.check} | {r.passed} | {r.observed} | {r.expected} |"
                                for r in results)
                ),
            },
        )

    return _check


@dg.asset_check(
    asset="ingest_log",
    name="no_raw_identifiers",
    blocking=True,
    partitions_def=pilot_partitions,
    description="No raw identifier from the inputs in any VARCHAR column of the warehouse.",
)
def no_raw_identifiers(
    context: dg.AssetCheckExecutionContext, warehouse: DuckDBResource, paths: PilotPaths
) -> dg.AssetCheckResult:
    pilot = context.partition_key
    cfg = load_pilot(paths.pilot_dir(pilot))
    anon = Anonymizer(secret_from_env(cfg.anonymization.secret_env))
    with warehouse.get_connection() as con:
        report = scan_for_raw_ids(con, pilot, anon)
    return dg.AssetCheckResult(
        passed=report.passed,
        metadata={
            "tables_scanned": report.tables_scanned,
            "distinct_values_scanned": report.values_scanned,
            "tokens_seen": report.tokens_seen,
            "leaks_by_column": dg.MetadataValue.json(report.leaks),  # counts, never values
            "sampled": report.truncated,
        },
    )


@dg.asset_check(
    asset=LANDING_STATUS,
    name=LANDING_CHECK,
    description="Every pilot folder in the landing directory can run: pilot.yaml is valid, the "
                "folder name matches `pilot:`, the secret variable it names is set. Reported "
                "by the landing sensor with every problem; executing it re-inspects the folder.",
)
def landing_runnable(paths: PilotPaths) -> dg.AssetCheckResult:
    scan = scan_landing(Path(paths.landing_dir), Cursor(), settle_s=0)
    problems = [*scan.problems,
                *(p for st in [*scan.new, *scan.changed] for p in problems_of(st))]
    return dg.AssetCheckResult(passed=not problems, **landing_check_fields(problems))


def landing_check_fields(problems: list[str]) -> dict:
    """Description and metadata of the `runnable` check for these problems."""
    pilots = sorted({p.split(":", 1)[0] for p in problems})
    return {
        "description": ("every pilot folder can run" if not problems else
                        f"cannot run: {', '.join(pilots)}; fix them and the next tick runs them"),
        "metadata": {"pilots_blocked": dg.MetadataValue.json(pilots),
                     "problem_count": len(problems),
                     "problems": dg.MetadataValue.md(
                         "\n".join(f"- {p}" for p in problems) or "none")},
    }


# ------------------------------------------------------------------------------------------
# Derived tables: a declared natural key per table, checked per pilot in one query

SHARES_AND_SECONDS = ("(unit = 'share' AND NOT value BETWEEN -1e-9 AND 1 + 1e-9) "
                      "OR (unit = 's' AND value < 0)")


@dataclass(frozen=True)
class TableRule:
    key: tuple[str, ...]  # unique per pilot ('pilot' implied); () = rows have no natural key
    nullable: tuple[str, ...] = ()  # key columns that may be NULL (e.g. the 'all' breakdown)
    not_null: tuple[str, ...] = ()  # more columns that must be set
    out_of_range: str | None = None  # SQL predicate of a row whose value is impossible
    # a key kept on some rows only (NULL on the others): unique where set
    sparse_key: str | None = None


_METRIC_ROWS = ("phase", "segment", "breakdown", "breakdown_value", "metric")
TABLE_RULES: dict[str, TableRule] = {
    "int_thresholds": TableRule(()),
    # the requests with a retry: one row per logical id (what int_attempts looks up)
    "int_retried_requests": TableRule(("logical_id",),
                                      not_null=("phase", "segment", "first_arrival_ts")),
    # the view of every logical request: the id is kept only for those with a retry
    "int_logical_requests": TableRule((), not_null=("phase", "segment", "first_arrival_ts"),
                                      sparse_key="logical_id"),
    # one row per request attempt; the request id is not kept (narrow table)
    "int_attempts": TableRule((), not_null=("attempt", "arrival_ts", "phase")),
    "int_gpu_samples": TableRule(("pool", "node", "gpu", "series", "ts"),
                                 nullable=("node", "gpu")),  # pool-level aggregates
    "burst_windows": TableRule(("pool", "w")),
    "burst_episodes": TableRule(("pool", "episode_id")),
    "latency_histogram_quantiles": TableRule(
        ("phase", "segment", "breakdown", "breakdown_value", "family", "q"),
        nullable=("breakdown_value",), out_of_range="value_s < 0 OR q NOT BETWEEN 0 AND 1"),
    "series_metrics": TableRule(_METRIC_ROWS, nullable=("breakdown_value",),
                                out_of_range=SHARES_AND_SECONDS),
    "job_timeline": TableRule(("job_id",)),
    # the headline quantiles' two passes: the bucket of each needed rank, then the values
    "int_quantile_ranks": TableRule(
        ("phase", "segment", "breakdown", "breakdown_value", "series", "qi", "side"),
        nullable=("breakdown_value",), out_of_range="j < 1 OR lo > hi"),
    "int_headline_quantiles": TableRule(("phase", "segment", "breakdown", "breakdown_value"),
                                        nullable=("breakdown_value",)),
    "metrics_headline": TableRule(_METRIC_ROWS, nullable=("breakdown_value",),
                                  out_of_range=SHARES_AND_SECONDS),
    "metrics_before_after": TableRule(("segment", "metric")),
    "metrics_did": TableRule(("metric",)),
    "pool_windows": TableRule(("pool", "window_start"),
                              out_of_range="NOT sla_adherence BETWEEN 0 AND 1"),
    "hidden_idle_map": TableRule(("pool", "node", "gpu", "window_start"),
                                 nullable=("node", "gpu")),
    "energy_latency_windows": TableRule(("window_start",)),
    "int_pool_minutes": TableRule(("pool", "m")),
    "burst_amplification": TableRule(("pool", "episode_id")),
    "arrival_burstiness": TableRule(("phase", "pool")),
    "idle_overload_states": TableRule(("pool", "window_start")),
    "queue_saturation_zones": TableRule(("pool", "zone_id")),
    "int_wave_events": TableRule(("phase", "from_pool", "episode_id", "to_pool")),
    "latency_cascade_paths": TableRule(("phase", "from_pool", "to_pool"),
                                       out_of_range="NOT share BETWEEN 0 AND 1"),
    "sla_risk_map": TableRule(("pool", "window_start"),
                              out_of_range="NOT sla_adherence BETWEEN 0 AND 1"),
    "slot_locking_zones": TableRule(("pool", "gpu", "zone_id")),
    "disruption_episodes": TableRule(("segment", "episode_id")),
    "disruption_timeline": TableRule(("segment", "episode_id", "ord")),
    "indices": TableRule(("phase", "segment", "index"), out_of_range=SHARES_AND_SECONDS),
    "sync_map": TableRule(("phase", "segment", "kind", "name"),
                          out_of_range=SHARES_AND_SECONDS),
    "int_delayed_waits": TableRule((), not_null=("pool", "arrival_us", "queue_wait_s")),
    "int_job_waits": TableRule(("job_id",)),
    "findings": TableRule(("pattern", "phase", "scope_pool", "start_ts"),
                          nullable=("phase", "scope_pool", "start_ts"),
                          out_of_range="NOT queue_wait_share BETWEEN 0 AND 1"),
    "patterns_tested": TableRule(("pattern",)),
    "measurement_coverage": TableRule(("item",)),
    "identifier_audit": TableRule(("table_name", "column_name"),
                                  out_of_range="n_tokens > n_values OR n_values < 0"),
    "staging_inventory": TableRule(("item", "key"), nullable=("key",),
                                   out_of_range="n < 0 OR n_first > n OR lo > hi"),
    # statistics layer (assets/statistics.py)
    "metrics_ci": TableRule(("segment", "metric")),
    "whatif_results": TableRule(("policy", "phase", "segment", "breakdown", "breakdown_value",
                                 "metric"), nullable=("breakdown_value",)),
    "whatif_model_error": TableRule(("comparison", "segment", "metric")),
    "whatif_status": TableRule(("status",)),
    "energy_latency_corr": TableRule(("phase", "x", "y")),
}


def table_check_specs(table: str) -> list[dg.AssetCheckSpec]:
    """The check specs of a derived table, for its asset's `check_specs`."""
    rule = TABLE_RULES[table]
    key = ", ".join(rule.key) or "none (row count and required columns only)"
    if rule.sparse_key:
        key += f"; {rule.sparse_key} unique where set"
    specs = [dg.AssetCheckSpec(
        KEY_CHECK, asset=table,
        description=f"No NULL and no duplicate key per pilot; key: {key}. Row count recorded.")]
    if rule.out_of_range:
        specs.append(dg.AssetCheckSpec(
            RANGE_CHECK, asset=table,
            description=f"No impossible value: no row where {rule.out_of_range}."))
    return specs


def _quote(col: str) -> str:
    return '"' + col.replace('"', '""') + '"'


def table_check_sql(table: str) -> str:
    """One query: rows, duplicate keys, rows with a NULL required column, out-of-range rows."""
    rule = TABLE_RULES[table]
    required = [c for c in (*rule.key, *rule.not_null) if c not in rule.nullable]
    dups = (f"count(*) - count(DISTINCT row({', '.join(map(_quote, rule.key))}))"
            if rule.key else "0")
    if rule.sparse_key:
        sk = _quote(rule.sparse_key)
        dups += f" + count({sk}) - count(DISTINCT {sk})"
    nulls = " OR ".join(f"{_quote(c)} IS NULL" for c in required) or "false"
    bad = f"coalesce({rule.out_of_range}, false)" if rule.out_of_range else "false"
    return (f"SELECT count(*), {dups}, count(*) FILTER (WHERE {nulls}), "  # noqa: S608
            f"count(*) FILTER (WHERE {bad}) FROM {_quote(table)} WHERE pilot = $pilot")


def table_check_results(
    con: duckdb.DuckDBPyConnection, table: str, pilot: str
) -> list[dg.AssetCheckResult]:
    """The results of `table_check_specs(table)` for the pilot's rows (one query)."""
    rule = TABLE_RULES[table]
    try:
        rows, dups, nulls, bad = con.execute(table_check_sql(table), {"pilot": pilot}).fetchone()
    except duckdb.CatalogException:  # never created: no rows for any pilot yet
        rows = dups = nulls = bad = 0
    results = [dg.AssetCheckResult(
        asset_key=table, check_name=KEY_CHECK, passed=not dups and not nulls,
        metadata={"rows": int(rows),
                  "key": ", ".join((*rule.key, *filter(None, [rule.sparse_key]))) or "none",
                  "duplicate_keys": int(dups), "rows_with_null_key": int(nulls)})]
    if rule.out_of_range:
        results.append(dg.AssetCheckResult(
            asset_key=table, check_name=RANGE_CHECK, passed=not bad,
            metadata={"rows": int(rows), "rows_out_of_range": int(bad),
                      "rule": rule.out_of_range}))
    return results


quality_checks = [
    *[_schema_check(t) for t in GATED_TABLES],
    *[_suite_check(t) for t in GATED_TABLES],
    no_raw_identifiers,
    landing_runnable,
]
