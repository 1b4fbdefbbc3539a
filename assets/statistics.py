"""Statistics layer: block-bootstrap intervals (metrics_ci) and the energy–latency correlation.

Computed in Python (pipelines/statistics.py) from per-block sums that DuckDB aggregates: a
bootstrap is a resampling loop, which SQL expresses poorly.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.checks import table_check_results, table_check_specs
from assets.table_metadata import source_version
from pipelines.analytics.scoring import score_landed_pilot
from pipelines.partitions import pilot_partitions
from pipelines.resources import PilotPaths
from pipelines.statistics import BootstrapConfig, build_energy_latency_corr, build_metrics_ci

METRICS_CI_DEPS = ("metrics_headline", "metrics_before_after", "metrics_did",
                   "int_logical_requests", "int_attempts", "int_gpu_samples", "burst_windows",
                   "int_thresholds", "phases")
STATISTICS_CODE_VERSION = source_version("assets/statistics.py", "pipelines/statistics.py")
SCORING_CODE_VERSION = source_version("assets/statistics.py", "pipelines/analytics/scoring.py",
                                      "pipelines/analytics/ground_truth.py")


@dg.asset(
    name="metrics_ci",
    group_name="statistics",
    deps=[dg.AssetKey(d) for d in METRICS_CI_DEPS],
    kinds={"duckdb", "python"},
    partitions_def=pilot_partitions,
    description="95 % block-bootstrap intervals of every headline metric (baseline, validation, "
                "change) per segment, and of the difference-in-differences.",
    code_version=STATISTICS_CODE_VERSION,
    check_specs=table_check_specs("metrics_ci"),
)
def metrics_ci_asset(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    cfg = BootstrapConfig()
    with warehouse.get_connection() as con:
        rows = build_metrics_ci(con, context.partition_key, cfg)
        checks = table_check_results(con, "metrics_ci", context.partition_key)
    return dg.MaterializeResult(metadata={"dagster/row_count": rows,
                                          "resamples": cfg.resamples, "seed": cfg.seed},
                                check_results=checks)


@dg.asset(
    name="energy_latency_corr",
    group_name="statistics",
    deps=[dg.AssetKey("energy_latency_windows")],
    kinds={"duckdb", "python"},
    partitions_def=pilot_partitions,
    description="Spearman correlation of per-minute GPU power and P95 latency, with a "
                "moving-block bootstrap interval.",
    code_version=STATISTICS_CODE_VERSION,
    check_specs=table_check_specs("energy_latency_corr"),
)
def energy_latency_corr_asset(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    with warehouse.get_connection() as con:
        rows = build_energy_latency_corr(con, context.partition_key)
        checks = table_check_results(con, "energy_latency_corr", context.partition_key)
    return dg.MaterializeResult(metadata={"dagster/row_count": rows}, check_results=checks)


@dg.asset(
    name="detector_scores",
    group_name="statistics",
    deps=[dg.AssetKey("findings"), dg.AssetKey("phases")],
    kinds={"duckdb", "python"},
    partitions_def=pilot_partitions,
    description="Precision and recall of each pattern detector against the ground truth of a "
                "simulated pilot (ground_truth.parquet in its landing folder), with a chance "
                "baseline; no rows for a real pilot, which has no ground truth.",
    code_version=SCORING_CODE_VERSION,
)
def detector_scores_asset(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: PilotPaths
) -> dg.MaterializeResult:
    pilot = context.partition_key
    with warehouse.get_connection() as con:
        rows = score_landed_pilot(con, pilot, paths.pilot_dir(pilot))
    return dg.MaterializeResult(metadata={"dagster/row_count": rows})


statistics_assets = [metrics_ci_asset, energy_latency_corr_asset, detector_scores_asset]
