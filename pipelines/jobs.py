"""Jobs: everything for one pilot partition, ingest to report."""

import dagster as dg

pilot_report_job = dg.define_asset_job(
    name="pilot_report",
    selection=dg.AssetSelection.all(),
    description="Ingest a pilot's telemetry, compute every table and render its report.",
)
