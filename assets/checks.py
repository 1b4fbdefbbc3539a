"""Data-quality gates as Dagster asset checks, per pilot partition.

- `schema` (blocking) on requests/jobs/samples: the pilot's stored rows fit the Pandera model;
  a failure stops every downstream asset of that pilot.
- `quality_suite` on requests/jobs/samples: the Great Expectations suite; results go to the
  check's metadata and to `quality_results` (the report's data-quality appendix).
- `no_raw_identifiers` (blocking) on ingest_log: no VARCHAR value in any warehouse table is
  a raw identifier whose token is also stored (observer-only proof on every run).
"""

import warnings

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines.anonymize import Anonymizer, secret_from_env
from pipelines.config import load_pilot
from pipelines.partitions import pilot_partitions
from pipelines.quality.expectations import run_suite, store_results
from pipelines.quality.leaks import scan_for_raw_ids
from pipelines.quality.schema_gate import schema_gate
from pipelines.resources import PilotPaths
from pipelines.warehouse import ensure_schema

GATED_TABLES = ("requests", "jobs", "samples")
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


quality_checks = [
    *[_schema_check(t) for t in GATED_TABLES],
    *[_suite_check(t) for t in GATED_TABLES],
    no_raw_identifiers,
]
