"""Schedules: a nightly refresh of every stale pilot's report and a weekly data-quality sweep.

Both are RUNNING by default so the UI shows their next tick as soon as `dagster dev` starts.
"Active" pilot = a registered partition whose landing folder still holds a pilot.yaml (a
pilot removed from the landing folder keeps its history but is no longer refreshed).
Runs are queued one at a time (`max_concurrent_runs: 1` in dagster.yaml): DuckDB has one
writer, and the in-process executor only serialises steps inside one run.

The nightly run skips a pilot that is up to date (`stale_reason`): every asset of
pilot_report has a materialization for it made by today's code (its code version), none
is older than an asset it reads, and its staging tables were ingested from the files that
are in the landing folder now (the landing fingerprint is their data version). Anything
else (new code, new files, a failed or partial run) re-runs the whole pilot.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipelines.config import PILOT_FILE
from pipelines.jobs import (
    CODE_VERSION_TAG,
    DATA_VERSION_TAG,
    TRIGGER_NIGHTLY,
    TRIGGER_WEEKLY_DQ,
    pilot_report_job,
    run_tags,
)
from pipelines.landing import PilotState, inspect_pilot, problems_of
from pipelines.partitions import PILOT_PARTITIONS_NAME
from pipelines.resources import PilotPaths

LANDING_KEY = dg.AssetKey("landing_status")
INGEST_KEY = dg.AssetKey("ingest_log")  # one staging table stands for the ingest step

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


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey, pilot: str
            ) -> dg.EventLogRecord | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[pilot]), limit=1).records
    return records[0] if records else None


def _tags(record: dg.EventLogRecord) -> dict[str, str]:
    return dict(record.event_log_entry.tags or {})


def landing_state(instance: dg.DagsterInstance, paths: PilotPaths, pilot: str) -> PilotState:
    """The pilot's landing folder now; files the sensor last reported with the same size and
    mtime keep their recorded sha256 (not read again)."""
    landing = _latest(instance, LANDING_KEY, pilot)
    mat = landing.asset_materialization if landing else None
    files = mat.metadata.get("files_json") if mat else None
    stamps = files.value if files is not None else {}
    previous = {k: (int(v[0]), int(v[1]), str(v[2])) for k, v in stamps.items()}
    return inspect_pilot(paths.pilot_dir(pilot), previous, settle_s=0)


def stale_reason(
    instance: dg.DagsterInstance, graph: dg.AssetGraph, keys: set[dg.AssetKey], pilot: str,
    landing_digest: str,
) -> str | None:
    """Why `pilot` needs a run of the assets `keys`, or None when it is up to date."""
    latest = {k: _latest(instance, k, pilot) for k in keys}
    for key in sorted(keys):
        record, code = latest[key], graph.get(key).code_version
        if record is None:
            return f"{key.to_user_string()} never materialized"
        if code is not None and _tags(record).get(CODE_VERSION_TAG) != code:
            return f"{key.to_user_string()}: code changed"
        for parent in graph.get(key).parent_keys & keys:
            seen = latest[parent]
            if seen is not None and seen.storage_id > record.storage_id:
                return f"{key.to_user_string()} older than {parent.to_user_string()}"
    ingest = latest.get(INGEST_KEY)
    if ingest is not None and _tags(ingest).get(DATA_VERSION_TAG) != landing_digest:
        return "landing files changed"
    return None


def _per_pilot(
    context: dg.ScheduleEvaluationContext, paths: PilotPaths, what: str,
    job: dg.UnresolvedAssetJobDefinition | None = None,
) -> list[dg.RunRequest] | dg.SkipReason:
    """One run request per active pilot; with `job`, only for the runnable pilots it finds
    stale (an invalid pilot would only fail: its landing_status check says why)."""
    pilots = active_pilots(context.instance, paths)
    if not pilots:
        return dg.SkipReason(f"No active pilot (registered and in {paths.landing_dir}).")
    if job is not None:
        from pipelines.definitions import defs  # deferred: definitions imports this module

        graph = defs.resolve_asset_graph()
        keys = set(defs.resolve_job_def(job.name).asset_layer.selected_asset_keys)
        due, notes = [], []
        for p in pilots:
            state = landing_state(context.instance, paths, p)
            problems = problems_of(state)
            reason = ("cannot run: " + "; ".join(problems) if problems else
                      stale_reason(context.instance, graph, keys, p, state.digest))
            notes.append(f"{p}: {reason or 'up to date'}")
            if reason is not None and not problems:
                due.append(p)
        for note in notes:
            context.log.info(note)
        if not due:
            return dg.SkipReason("No pilot to refresh:\n" + "\n".join(f"- {n}" for n in notes))
        pilots = due
    tick = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M")
    return [
        dg.RunRequest(partition_key=p, run_key=f"{what}:{p}:{tick}", tags=run_tags(p, what))
        for p in pilots
    ]


@dg.schedule(
    name="nightly_pilot_reports",
    cron_schedule=NIGHTLY_CRON,
    execution_timezone=TIMEZONE,
    job=pilot_report_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every night, re-run pilot_report for every active pilot whose code or landing "
                "files changed since its last run, or whose last run did not finish.",
)
def nightly_pilot_reports(context: dg.ScheduleEvaluationContext, paths: PilotPaths):
    return _per_pilot(context, paths, TRIGGER_NIGHTLY, job=pilot_report_job)


@dg.schedule(
    name="weekly_data_quality",
    cron_schedule=WEEKLY_CRON,
    execution_timezone=TIMEZONE,
    job=data_quality_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every Monday, re-ingest and re-check the staging tables of every active pilot.",
)
def weekly_data_quality(context: dg.ScheduleEvaluationContext, paths: PilotPaths):
    return _per_pilot(context, paths, TRIGGER_WEEKLY_DQ)


SCHEDULES = [nightly_pilot_reports, weekly_data_quality]
JOBS = [data_quality_job]
