"""Staging layer: pilot.yaml and its sources loaded into the canonical tables."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines.config import load_pilot
from pipelines.ingest.load import ingest_pilot
from pipelines.partitions import pilot_partitions
from pipelines.resources import PilotPaths
from pipelines.warehouse import ensure_schema

CANONICAL_TABLES = ("requests", "jobs", "samples")
BOOKKEEPING_TABLES = ("quarantine", "ingest_log")
CONFIG_TABLES = ("pilots", "phases", "sla_targets", "pilot_scope", "thresholds")
STAGING_TABLES = CANONICAL_TABLES + BOOKKEEPING_TABLES + CONFIG_TABLES

_DESCRIPTIONS = {
    "requests": "One row per request attempt (canonical).",
    "jobs": "Scheduler jobs sharing the GPUs (canonical).",
    "samples": "Every time series in long form (canonical).",
    "quarantine": "Refused input rows with file, line, field and reason.",
    "ingest_log": "Per file: checksum and rows in = stored + quarantined.",
}


@dg.multi_asset(
    name="ingest_pilot",
    specs=[
        dg.AssetSpec(
            t,
            group_name="staging",
            kinds={"duckdb"},
            description=_DESCRIPTIONS.get(t, "Pilot configuration from pilot.yaml."),
        )
        for t in STAGING_TABLES
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "rows_reconcile",
            asset="ingest_log",
            blocking=True,
            description="Per file, rows in = rows stored + rows quarantined.",
        )
    ],
    partitions_def=pilot_partitions,
)
def ingest_pilot_asset(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: PilotPaths
):
    """Validate pilot.yaml, then replace the pilot's rows in every staging table at once."""
    pilot = context.partition_key
    cfg = load_pilot(paths.pilot_dir(pilot))
    if cfg.pilot != pilot:
        raise ValueError(f"pilot.yaml names pilot {cfg.pilot!r}, but its folder is {pilot!r}")
    with warehouse.get_connection() as con:
        ensure_schema(con)
        summary = ingest_pilot(con, cfg)
        counts = {
            t: con.execute(f"SELECT count(*) FROM {t} WHERE pilot = ?", [pilot]).fetchone()[0]
            for t in STAGING_TABLES
        }
        per_source = con.execute(
            "SELECT source_index, source_kind, coalesce(target_table, ''), "
            "sum(rows_in), sum(rows_stored), sum(rows_quarantined), count(*) "
            "FROM ingest_log WHERE pilot = ? GROUP BY ALL ORDER BY 1",
            [pilot],
        ).fetchall()
        unreconciled = con.execute(
            "SELECT file FROM ingest_log WHERE pilot = ? "
            "AND rows_in <> rows_stored + rows_quarantined",
            [pilot],
        ).fetchall()
    sources_md = "\n".join(
        [
            "| # | kind | table | files | rows in | stored | quarantined |",
            "|---|---|---|---|---|---|---|",
        ]
        + [
            f"| {i} | {k} | {t} | {n} | {ri} | {rs} | {rq} |"
            for i, k, t, ri, rs, rq, n in per_source
        ]
    )
    failed = [f"{i}: {f}: {r}" for i, f, r in summary.failed_sources]
    for t in STAGING_TABLES:
        metadata: dict[str, object] = {"dagster/row_count": int(counts[t])}
        if t == "ingest_log":
            metadata["sources"] = dg.MetadataValue.md(sources_md)
            metadata["failed_sources"] = dg.MetadataValue.json(failed)
        yield dg.MaterializeResult(asset_key=t, metadata=metadata)
    yield dg.AssetCheckResult(
        asset_key="ingest_log",
        check_name="rows_reconcile",
        passed=not unreconciled,
        metadata={"unreconciled_files": dg.MetadataValue.json([u[0] for u in unreconciled])},
    )
