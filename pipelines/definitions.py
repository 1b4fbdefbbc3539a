"""The one Dagster Definitions object (loaded by workspace.yaml and `dagster dev`).

DuckDB allows a single writer, so every run uses the in-process executor: steps run one
after another in one process and never contend for the warehouse file.
"""

import dagster as dg

from assets.intermediate import intermediate_assets
from assets.metrics import metrics_assets
from assets.report import report_asset
from assets.staging import ingest_pilot_asset
from assets.topology import topology_assets
from pipelines.jobs import pilot_report_job
from pipelines.resources import default_resources

ALL_ASSETS = [
    ingest_pilot_asset,
    *intermediate_assets,
    *metrics_assets,
    *topology_assets,
    report_asset,
]

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=[pilot_report_job],
    resources=default_resources(),
    executor=dg.in_process_executor,
)
