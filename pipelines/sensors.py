"""Landing sensor: a pilot folder dropped into the landing directory becomes a report.

Every tick scans `<landing>/*/pilot.yaml` (see pipelines/landing.py):

- a new valid pilot registers its dynamic partition and asks for a `pilot_report` run;
- a pilot whose inputs changed (content, not just mtime) asks for a re-run;
- an invalid pilot (bad pilot.yaml, folder name != `pilot:` slug) is reported as the skip
  reason (and in the tick log), with every validation message; it never fails the tick.

The cursor keeps each pilot's fingerprint, so nothing is re-run while nothing changed. A
failed run is not retried automatically (that would loop on a real problem): fix the input
(which changes the fingerprint) or re-run from the UI / `stabilis backfill`.
"""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg

from pipelines.jobs import pilot_report_job
from pipelines.landing import DEFAULT_SETTLE_S, Cursor, PilotState, scan_landing
from pipelines.partitions import PILOT_PARTITIONS_NAME, pilot_partitions
from pipelines.resources import PilotPaths

LANDING_SENSOR_NAME = "pilot_landing"
REPORT_KEY = dg.AssetKey("report")


def _already_reported(instance: dg.DagsterInstance, state: PilotState) -> bool:
    """A pilot first seen by this cursor whose report is newer than its files (e.g. made by
    `stabilis demo` before `dagster dev` started) needs no run."""
    if not instance.has_dynamic_partition(PILOT_PARTITIONS_NAME, state.folder):
        return False
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=REPORT_KEY, asset_partitions=[state.folder]), limit=1
    ).records
    if not records:
        return False
    newest_input = max(stamp[1] for stamp in state.files.values()) / 1e9
    return records[0].timestamp > newest_input


def _run_request(state: PilotState, seq: int, reason: str) -> dg.RunRequest:
    return dg.RunRequest(
        partition_key=state.folder,
        # the sequence makes A -> B -> A a new run key (Dagster drops repeated run keys)
        run_key=f"{state.folder}:{seq}:{state.digest[:12]}",
        tags={"stabilis/pilot": state.folder, "stabilis/trigger": f"landing:{reason}"},
    )


def evaluate_landing(
    context: dg.SensorEvaluationContext,
    paths: PilotPaths,
    *,
    now: float | None = None,
    settle_s: float = DEFAULT_SETTLE_S,
) -> dg.SensorResult:
    """The sensor body (separate so tests can pass `now` and skip the settle wait)."""
    landing = Path(paths.landing_dir)
    cursor = Cursor.parse(context.cursor)
    scan = scan_landing(landing, cursor, now=time.time() if now is None else now, settle_s=settle_s)
    instance = context.instance

    run_requests: list[dg.RunRequest] = []
    to_register: list[str] = []
    for state in scan.new:
        if not instance.has_dynamic_partition(PILOT_PARTITIONS_NAME, state.folder):
            to_register.append(state.folder)
        if _already_reported(instance, state):
            cursor.record(state, bump=False)
            continue
        run_requests.append(_run_request(state, cursor.record(state, bump=True), "new"))
    for state in scan.changed:
        run_requests.append(_run_request(state, cursor.record(state, bump=True), "changed"))
    for state in scan.unchanged:
        cursor.record(state, bump=False)  # refreshed mtimes spare a re-hash next tick
    for pilot in scan.gone:
        # forget the fingerprint (a pilot dropped again later is new); the partition and
        # its report history stay
        cursor.pilots.pop(pilot, None)

    for problem in scan.problems:
        context.log.warning(problem)
    skip_reason: str | None = None
    if not run_requests:
        if scan.problems:
            skip_reason = "Invalid pilot folder(s) in the landing directory:\n" + "\n".join(
                f"- {p}" for p in scan.problems
            )
        elif scan.settling:
            skip_reason = "Waiting for files to settle: " + ", ".join(
                s.folder for s in scan.settling
            )
        else:
            watched = len(scan.unchanged) + len(scan.new)
            skip_reason = f"No new or changed pilot in {landing} ({watched} up to date)."
    return dg.SensorResult(
        run_requests=run_requests,
        skip_reason=skip_reason,
        cursor=cursor.dumps(),
        dynamic_partitions_requests=(
            [pilot_partitions.build_add_request(to_register)] if to_register else None
        ),
    )


@dg.sensor(
    name=LANDING_SENSOR_NAME,
    job=pilot_report_job,
    minimum_interval_seconds=15,
    # with the daemon running (`dagster dev` starts one), dropping a folder is enough
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Watches the landing folder: a new pilot folder registers its partition and runs "
        "pilot_report; a changed file re-runs it; an invalid pilot.yaml is the skip reason."
    ),
)
def pilot_landing_sensor(context: dg.SensorEvaluationContext, paths: PilotPaths):
    return evaluate_landing(context, paths)


SENSORS = [pilot_landing_sensor]
