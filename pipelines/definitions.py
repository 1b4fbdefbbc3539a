"""The one Dagster Definitions object (loaded by workspace.yaml and `dagster dev`).

DuckDB allows a single writer, so every run uses the in-process executor: steps run one
after another in one process and never contend for the warehouse file.
"""

import dagster as dg

from assets.checks import quality_checks
from assets.intermediate import intermediate_assets
from assets.metrics import metrics_assets
from assets.report import report_asset
from assets.staging import ingest_pilot_asset
from assets.statistics import statistics_assets
from assets.table_metadata import OWNERS
from assets.topology import topology_assets
from assets.whatif import whatif_asset
from pipelines.jobs import pilot_report_job
from pipelines.resources import default_resources
from pipelines.schedules import JOBS as SCHEDULED_JOBS
from pipelines.schedules import SCHEDULES
from pipelines.sensors import SENSORS

ALL_ASSETS = [
    ingest_pilot_asset,
    *intermediate_assets,
    *metrics_assets,
    *topology_assets,
    *statistics_assets,
    whatif_asset,  # modeled what-if replays (assets/whatif.py)
    report_asset,
    *quality_checks,  # data-quality gates (asset checks run with their assets)
]



def _team_owned(spec: dg.AssetSpec) -> dg.AssetSpec:
    # an asset that names no owner belongs to the team (the UI filters and groups by owner)
    return spec if spec.owners else spec.replace_attributes(owners=OWNERS)


defs = dg.Definitions(
    assets=dg.map_asset_specs(_team_owned, ALL_ASSETS),
    jobs=[pilot_report_job, *SCHEDULED_JOBS],
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=default_resources(),
    executor=dg.in_process_executor,
)
