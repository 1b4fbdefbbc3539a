"""Jobs: everything for one pilot partition, ingest to report."""

import dagster as dg

from pipelines.partitions import pilot_partitions

pilot_report_job = dg.define_asset_job(
    name="pilot_report",
    selection=dg.AssetSelection.all(),
    partitions_def=pilot_partitions,
    description="Ingest a pilot's telemetry, compute every table and render its report.",
)
