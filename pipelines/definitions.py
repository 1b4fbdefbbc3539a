"""The one Dagster Definitions object (loaded by workspace.yaml and `dagster dev`).

DuckDB allows a single writer, so every run uses the in-process executor: steps run one
after another in one process and never contend for the warehouse file.
"""

import dagster as dg

from assets.checks import quality_checks
from assets.intermediate import intermediate_assets
from assets.metrics import metrics_assets
from assets.report import report_asset
from assets.staging import ingest_pilot_asset, landing_status_spec
from assets.statistics import statistics_assets
from assets.table_metadata import OWNERS, source_version
from assets.topology import topology_assets
from assets.whatif import whatif_asset
from pipelines.jobs import pilot_report_job
from pipelines.resources import default_resources
from pipelines.schedules import JOBS as SCHEDULED_JOBS
from pipelines.schedules import SCHEDULES
from pipelines.sensors import SENSORS

_ASSETS = [
    ingest_pilot_asset,
    *intermediate_assets,
    *metrics_assets,
    *topology_assets,
    *statistics_assets,
    whatif_asset,  # modeled what-if replays (assets/whatif.py)
    report_asset,
    *quality_checks,  # data-quality gates (asset checks run with their assets)
]

# Code versions of the Python assets defined without one: a hash of the sources they run.
# (SQL assets hash their .sql file; staging and statistics set theirs where defined.)
PYTHON_CODE_VERSIONS = {
    "whatif": source_version("assets/whatif.py", "pipelines/whatif*.py", "pipelines/whatif/*.py",
                             "pipelines/simulator/**/*.py"),
    "report": source_version("assets/report.py", "reports/**/*", "pipelines/metric_catalog.py",
                             "pipelines/version.py"),
}


def _conventions(spec: dg.AssetSpec) -> dg.AssetSpec:
    # an asset that names no owner belongs to the team (the UI filters and groups by owner);
    # an asset without a code version gets its sources' hash (whatif_* are the whatif layer)
    if not spec.owners:
        spec = spec.replace_attributes(owners=OWNERS)
    if spec.code_version is None:
        layer = "whatif" if spec.key.path[-1].startswith("whatif") else spec.key.path[-1]
        if layer in PYTHON_CODE_VERSIONS:
            spec = spec.replace_attributes(code_version=PYTHON_CODE_VERSIONS[layer])
    return spec


# with the conventions applied: what every job (CLI runs too, pipelines/runner.py) runs
ALL_ASSETS = dg.map_asset_specs(_conventions, _ASSETS)

defs = dg.Definitions(
    assets=[landing_status_spec, *ALL_ASSETS],
    jobs=[pilot_report_job, *SCHEDULED_JOBS],
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=default_resources(),
    executor=dg.in_process_executor,
)
