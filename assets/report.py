"""Report layer: the pilot's HTML and PDF report, built from the metric tables."""


from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.table_metadata import OWNERS
from pipelines.partitions import pilot_partitions
from pipelines.resources import PilotPaths
from pipelines.sql_models import MODELS
from pipelines.version import PIPELINE_VERSION
from reports.model import build_report_model
from reports.render import render_report

REPORT_DEPS = [m.name for m in MODELS if m.layer in ("metrics", "topology")] + [
    "ingest_log",
    "quarantine",
    "pilots",
    "metrics_ci",  # statistics layer (assets/statistics.py)
    "energy_latency_corr",
    "detector_scores",
    "whatif_results",  # section 6 reads the what-if and its status
    "whatif_model_error",
    "whatif_status",
    "arrivals",  # the inventory counts them
    "jobs",
]


@dg.asset(
    name="report",
    group_name="report",
    deps=[dg.AssetKey(d) for d in REPORT_DEPS],
    kinds={"html", "pdf"},
    partitions_def=pilot_partitions,
    description="Operational synchronization report of the pilot (self-contained HTML + PDF).",
    owners=OWNERS,
)
def report_asset(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: PilotPaths
) -> dg.MaterializeResult:
    pilot = context.partition_key
    with warehouse.get_connection() as con:
        model = build_report_model(
            con,
            pilot,
            run_id=context.run.run_id,
            pipeline_version=PIPELINE_VERSION,
            generated_at=datetime.now(UTC).replace(tzinfo=None),
        )
    html, pdf = render_report(model, paths.report_dir(pilot))
    return dg.MaterializeResult(
        metadata={
            "html": dg.MetadataValue.path(str(html)),
            "pdf": dg.MetadataValue.path(str(pdf)),
            # clickable in the UI (opens in the browser of the machine running it)
            "html_url": dg.MetadataValue.url(html.resolve().as_uri()),
            "pdf_url": dg.MetadataValue.url(pdf.resolve().as_uri()),
            "html_bytes": html.stat().st_size,
            "pdf_bytes": pdf.stat().st_size,
        }
    )
