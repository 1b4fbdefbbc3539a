"""Schedules: a nightly refresh of every active pilot's report and a weekly data-quality sweep.

Both are RUNNING by default so the UI shows their next tick as soon as `dagster dev` starts.
"Active" pilot = a registered partition whose landing folder still holds a pilot.yaml (a
pilot removed from the landing folder keeps its history but is no longer refreshed).
Runs are queued one at a time (`max_concurrent_runs: 1` in dagster.yaml): DuckDB has one
writer, and the in-process executor only serialises steps inside one run.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipelines.config import PILOT_FILE
from pipelines.jobs import pilot_report_job
from pipelines.partitions import PILOT_PARTITIONS_NAME
from pipelines.resources import PilotPaths

NIGHTLY_CRON = "0 2 * * *"  # 02:00 UTC, every day
WEEKLY_CRON = "0 3 * * 1"  # 03:00 UTC, Mondays
TIMEZONE = "UTC"

# Staging assets and the asset checks that target them. Re-ingesting re-validates every row
# (Pandera, quarantine, reconciliation), so the sweep is meaningful even without checks.
data_quality_job = dg.define_asset_job(
    name="data_quality_sweep",
    selection=dg.AssetSelection.groups("staging"),
    description=(
        "Re-ingest a pilot's staging tables and run their asset checks (weekly sweep); "
        "derived tables and the report are left as they are."
    ),
)


def active_pilots(instance: dg.DagsterInstance, paths: PilotPaths) -> list[str]:
    registered = instance.get_dynamic_partitions(PILOT_PARTITIONS_NAME)
    landing = Path(paths.landing_dir)
    return sorted(p for p in registered if (landing / p / PILOT_FILE).is_file())


def _per_pilot(
    context: dg.ScheduleEvaluationContext, paths: PilotPaths, what: str
) -> list[dg.RunRequest] | dg.SkipReason:
    pilots = active_pilots(context.instance, paths)
    if not pilots:
        return dg.SkipReason(f"No active pilot (registered and in {paths.landing_dir}).")
    tick = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M")
    return [
        dg.RunRequest(
            partition_key=p,
            run_key=f"{what}:{p}:{tick}",
            tags={"stabilis/pilot": p, "stabilis/trigger": what},
        )
        for p in pilots
    ]


@dg.schedule(
    name="nightly_pilot_reports",
    cron_schedule=NIGHTLY_CRON,
    execution_timezone=TIMEZONE,
    job=pilot_report_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every night, re-run pilot_report for every active pilot (one run each).",
)
def nightly_pilot_reports(context: dg.ScheduleEvaluationContext, paths: PilotPaths):
    return _per_pilot(context, paths, "nightly")


@dg.schedule(
    name="weekly_data_quality",
    cron_schedule=WEEKLY_CRON,
    execution_timezone=TIMEZONE,
    job=data_quality_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every Monday, re-ingest and re-check the staging tables of every active pilot.",
)
def weekly_data_quality(context: dg.ScheduleEvaluationContext, paths: PilotPaths):
    return _per_pilot(context, paths, "weekly-dq")


SCHEDULES = [nightly_pilot_reports, weekly_data_quality]
JOBS = [data_quality_job]
