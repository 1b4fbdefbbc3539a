"""What-if layer: the pilot's baseline replayed under each adjustment (modeled, not measured).

Replayed from the pilot's per-request rows, or from its arrival trace with the service model
pilot.yaml declares (`whatif:`); without either the asset still succeeds: `whatif_status`
says `not_modeled` and why, and the what-if tables hold no rows for the pilot.

Whole phases, ten seeds (`pipelines.whatif` defaults): the baseline replayed under today's
policy (calibration) and the validation phase's arrivals under today's policy and the declared
adjustments (counterfactual), judged against the measured difference-in-differences of
metrics_ci. STABILIS_WHATIF_MINUTES (a representative slice; 0 or unset = whole phases),
STABILIS_WHATIF_SEEDS and STABILIS_WHATIF_POLICIES (comma-separated policy sets) override.
"""

import os

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from assets.checks import table_check_results, table_check_specs
from assets.table_metadata import OWNERS, markdown_table
from pipelines.partitions import pilot_partitions
from pipelines.whatif import (
    DEFAULT_MINUTES,
    DEFAULT_SEEDS,
    headline_table,
    not_modeled_run,
    prepare,
    run_whatif,
    store,
)

WHATIF_TABLES = ("whatif_results", "whatif_model_error", "whatif_status")
WHATIF_DEPS = ("requests", "jobs", "samples", "arrivals", "phases", "sla_targets",
               "pilot_scope", "thresholds", "pilots", "metrics_headline", "metrics_before_after",
               "metrics_ci")


def _preview(df: pl.DataFrame, digits: int = 3) -> str:
    if df.height == 0:
        return "(empty)"
    df = df.with_columns(pl.col(pl.Float64).round(digits))
    return markdown_table(df.columns, df.rows())


def _settings() -> dict:
    minutes = float(os.environ.get("STABILIS_WHATIF_MINUTES") or DEFAULT_MINUTES or 0)
    seeds = int(os.environ.get("STABILIS_WHATIF_SEEDS", len(DEFAULT_SEEDS)))
    env = os.environ.get("STABILIS_WHATIF_POLICIES")
    # None: the declared adjustments, or the exploratory sets for a pilot without them
    policies = [p.strip() for p in env.split(",") if p.strip()] if env else None
    return {"minutes": minutes or None, "seeds": tuple(range(1, max(seeds, 1) + 1)),
            "policies": policies}


@dg.multi_asset(
    name="whatif",
    specs=[
        dg.AssetSpec("whatif_results", group_name="whatif", kinds={"duckdb", "python"},
                     deps=[dg.AssetKey(d) for d in WHATIF_DEPS], owners=OWNERS,
                     description="Modeled: the baseline replayed under today's policy, the "
                                 "validation arrivals under today's policy and the declared "
                                 "adjustments, measured by the metric SQL (seed spread)."),
        dg.AssetSpec("whatif_model_error", group_name="whatif", kinds={"duckdb", "python"},
                     deps=[dg.AssetKey(d) for d in WHATIF_DEPS], owners=OWNERS,
                     description="Model error: calibration (today's baseline replay vs measured "
                                 "levels), predicted effect vs measured DiD and its interval, "
                                 "predicted vs measured validation levels."),
        dg.AssetSpec("whatif_status", group_name="whatif", kinds={"duckdb", "python"},
                     deps=[dg.AssetKey(d) for d in WHATIF_DEPS], owners=OWNERS,
                     description="Per pilot: modeled or not_modeled, on what basis (per-request "
                                 "replay or arrival trace + declared service model), the "
                                 "reason and the declared service model."),
    ],
    check_specs=[spec for t in WHATIF_TABLES for spec in table_check_specs(t)],
    partitions_def=pilot_partitions,
)
def whatif_asset(context: dg.AssetExecutionContext, warehouse: DuckDBResource):
    pilot = context.partition_key
    settings = _settings()
    with warehouse.get_connection() as con:
        rep, status = prepare(con, pilot, minutes=settings["minutes"])
        if rep is None:
            context.log.info(f"what-if for {pilot}: {status.reason}")
            run = not_modeled_run(status)
        else:
            run = run_whatif(con, pilot, rep=rep, **settings)
        counts = store(con, pilot, run)
        checks = [r for t in WHATIF_TABLES for r in table_check_results(con, t, pilot)]
    r = run.results
    window = "; ".join(
        f"{ph}: {g['replay_start'][0]} – {g['replay_end'][0]} ({g['replay_minutes'][0]:.0f} min, "
        f"warm-up {g['warmup_minutes'][0]:.0f} min, seeds {g['seeds'].max()})"
        for ph, g in sorted(r.group_by("phase"), key=lambda x: str(x[0][0])))
    err = run.model_error.filter(pl.col("segment") == "all").select(
        "comparison", "metric", "measured", "modeled", "error_rel")
    st = run.status
    common = {"whatif_status": st.status, "basis": st.basis or "", "reason": st.reason or "",
              "service_model": st.service_model or "",
              "replay_window": window, "attempts_simulated": run.attempts,
              "timings_s": dg.MetadataValue.json({k: round(v, 2) for k, v in run.timings.items()}),
              "notes": dg.MetadataValue.json(run.notes)}
    yield dg.MaterializeResult(asset_key="whatif_results", metadata={
        "dagster/row_count": counts["whatif_results"],
        "preview": dg.MetadataValue.md(_preview(headline_table(r))), **common})
    yield dg.MaterializeResult(asset_key="whatif_model_error", metadata={
        "dagster/row_count": counts["whatif_model_error"],
        "preview": dg.MetadataValue.md(_preview(err.head(25))), **common})
    yield dg.MaterializeResult(asset_key="whatif_status", metadata={
        "dagster/row_count": counts["whatif_status"],
        "preview": dg.MetadataValue.md(_preview(st.frame())), **common})
    yield from checks
