"""Staging layer: pilot.yaml and its sources loaded into the canonical tables.

`landing_status` stands for the pilot's landing folder (not computed by Dagster): the
landing sensor reports its fingerprint as its data version and its `runnable` check. Every
staging table's data version is the fingerprint of the files it was ingested from, so the
UI marks a pilot's tables stale when its landing changed, and the nightly schedule can tell.
"""


from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from assets.checks import LANDING_STATUS
from assets.table_metadata import OWNERS, source_version, table_metadata
from pipelines.config import PILOT_FILE, PilotConfigError, load_pilot
from pipelines.ingest.load import ingest_pilot
from pipelines.ingest.prometheus_api import ensure_snapshots
from pipelines.landing import fingerprint, sha256_file
from pipelines.partitions import pilot_partitions
from pipelines.resources import PilotPaths
from pipelines.warehouse import ensure_schema

CANONICAL_TABLES = ("requests", "jobs", "samples")
BOOKKEEPING_TABLES = ("quarantine", "ingest_log", "dropped_fields")
TRACE_TABLES = ("arrivals",)  # arrival traces: characterization, not request attempts
CONFIG_TABLES = ("pilots", "phases", "sla_targets", "pilot_scope", "thresholds")
STAGING_TABLES = CANONICAL_TABLES + TRACE_TABLES + BOOKKEEPING_TABLES + CONFIG_TABLES

_DESCRIPTIONS = {
    "requests": "One row per request attempt (canonical).",
    "jobs": "Scheduler jobs sharing the GPUs (canonical).",
    "samples": "Every time series in long form (canonical).",
    "quarantine": "Refused input rows with file, line, field and reason.",
    "ingest_log": "Per file: checksum and rows in = stored + quarantined.",
    "arrivals": "Arrival traces (Azure, Mooncake, BurstGPT) for characterization/replay.",
    "dropped_fields": "Payload-like/unmapped fields dropped at the adapter, counted by name.",
}


# the code that turns landing files into staging rows: any edit marks staging stale
STAGING_CODE_VERSION = source_version(
    "assets/staging.py", "pipelines/ingest/**/*.py", "pipelines/config.py",
    "pipelines/anonymize.py", "pipelines/warehouse.py", "schemas/*.py", "sql/staging/*.sql",
)

landing_status_spec = dg.AssetSpec(
    LANDING_STATUS,
    group_name="landing",
    kinds={"file"},
    partitions_def=pilot_partitions,
    owners=OWNERS,
    description="The pilot's landing folder (pilot.yaml and its source files), observed by "
                "the landing sensor: data version = fingerprint of the files; check "
                "`runnable` = every reason it cannot run.",
)


def landing_fingerprint(con: duckdb.DuckDBPyConnection, pilot: str, pilot_yaml: Path) -> str:
    """The fingerprint of what was ingested (same function of the same files as the sensor's,
    from ingest_log's checksums: no second read of the inputs)."""
    files = con.execute(
        "SELECT DISTINCT file, sha256 FROM ingest_log WHERE pilot = ?", [pilot]).fetchall()
    return fingerprint([(PILOT_FILE, sha256_file(pilot_yaml)), *files])


@dg.multi_asset(
    name="ingest_pilot",
    specs=[
        dg.AssetSpec(
            t,
            group_name="staging",
            kinds={"duckdb"},
            description=_DESCRIPTIONS.get(t, "Pilot configuration from pilot.yaml."),
            owners=OWNERS,
            deps=[LANDING_STATUS],
            code_version=STAGING_CODE_VERSION,
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
    try:
        cfg = load_pilot(paths.pilot_dir(pilot))
    except (PilotConfigError, ValueError) as e:
        problems = e.problems if isinstance(e, PilotConfigError) else [str(e)]
        raise _failure(pilot, "pilot.yaml", "; ".join(problems)) from e
    if cfg.pilot != pilot:
        reason = f"pilot.yaml names pilot {cfg.pilot!r}, but its folder is {pilot!r}"
        raise _failure(pilot, "pilot.yaml", reason)
    # live sources (prometheus-api) without a snapshot are pulled first, outside the DuckDB
    # lock, so sensor, schedule and backfill runs read the same files a CLI run would
    for pulled in ensure_snapshots(cfg):
        if pulled.error:
            context.log.warning(f"pilot {pilot}: source {pulled.source_index}: pull failed: "
                                f"{pulled.error}")
    with warehouse.get_connection() as con:
        ensure_schema(con)
        try:
            summary = ingest_pilot(con, cfg)
        except Exception as e:  # rolled back already; say which pilot and why in the run
            raise _failure(pilot, "ingest", f"{type(e).__name__}: {e}") from e
        previews = {t: table_metadata(con, t, pilot) for t in STAGING_TABLES}
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
        landed = landing_fingerprint(con, pilot, cfg.root / PILOT_FILE)
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
    for line in failed:  # the run goes on with the other sources; say so in the run log
        context.log.warning(f"pilot {pilot}: source {line}")
    for t in STAGING_TABLES:
        metadata: dict[str, object] = {"dagster/row_count": int(counts[t]),
                                       "landing_fingerprint": landed, **previews[t]}
        if t == "ingest_log":
            metadata["sources"] = dg.MetadataValue.md(sources_md)
            metadata["failed_sources"] = dg.MetadataValue.json(failed)
        yield dg.MaterializeResult(asset_key=t, metadata=metadata,
                                   data_version=dg.DataVersion(landed))
    yield dg.AssetCheckResult(
        asset_key="ingest_log",
        check_name="rows_reconcile",
        passed=not unreconciled,
        metadata={"unreconciled_files": dg.MetadataValue.json([u[0] for u in unreconciled])},
    )


def _failure(pilot: str, source: str, reason: str) -> dg.Failure:
    """A run failure that names the pilot, the source and the reason (shown in the UI)."""
    return dg.Failure(
        description=f"pilot {pilot}: {source}: {reason}",
        metadata={"pilot": pilot, "source": source, "reason": reason},
    )
