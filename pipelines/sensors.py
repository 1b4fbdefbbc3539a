"""Landing sensor: a pilot folder dropped into the landing directory becomes a report.

Every tick scans `<landing>/*/pilot.yaml` (see pipelines/landing.py):

- a new valid pilot registers its dynamic partition and asks for a `pilot_report` run;
- a pilot whose inputs changed (content, not just mtime) asks for a re-run;
- a pilot that cannot run, because its pilot.yaml is invalid (bad values, folder name !=
  `pilot:` slug) or because the secret variable it names (anonymization.secret_env) is unset,
  gets no run. It shows as a failed `runnable` check on its `landing_status` partition (every
  message in the check's metadata, visible in the asset's page and the lineage), and in the
  skip reason and tick log; it never fails the tick.
- a ready pilot's landing fingerprint is reported as a `landing_status` materialization
  whose data version is the fingerprint: the staging tables of the pilot read it, so the UI
  shows them stale when the landing changed.

The cursor keeps each pilot's fingerprint, so nothing is re-run while nothing changed. A
pilot that could not run is kept "pending", not done: the next tick looks at it again, so
fixing pilot.yaml or setting the secret is enough, with no restart of anything else.

The secret is read from the environment of the process that evaluates the sensor (the code
server `dagster dev` starts): export it before `dagster dev`/`make dev`, or put it in a `.env`
file next to workspace.yaml and reload the code location (Deployment > Reload in the UI);
exporting it in another shell does not reach a running server. Runs inherit the same
environment.

A failed run is not retried automatically (that would loop on a real problem): fix the
input (which changes the fingerprint) or re-run from the UI / `stabilis backfill`.
"""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg

from assets.checks import LANDING_CHECK, LANDING_STATUS, landing_check_fields
from pipelines.config import PILOT_FILE, SLUG_RE
from pipelines.jobs import DATA_VERSION_TAG, TRIGGER_LANDING, pilot_report_job, run_tags
from pipelines.landing import (
    DEFAULT_SETTLE_S,
    Cursor,
    PilotState,
    ScanResult,
    missing_secret,
    scan_landing,
)
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
        tags=run_tags(state.folder, f"{TRIGGER_LANDING}:{reason}"),
    )


def _status_events(
    landing: Path, scan: ScanResult, blocked: dict[str, str], cursor: Cursor
) -> tuple[list[dg.AssetCheckEvaluation | dg.AssetMaterialization | dg.AssetObservation],
           list[str], list[str]]:
    """What the UI should learn this tick, each only when it changed since the last tick:

    - per pilot partition of `landing_status`: a materialization whose data version is the
      landing fingerprint (when it changed), and an observation of its state and problems;
    - the `runnable` check of `landing_status`: failed with every problem of every folder,
      or passed. (One check for the landing folder, not one per partition: Dagster 1.13
      stores one runless evaluation per check and partition, so a partitioned one could
      never be reported twice.)

    Returns the events, the pilot partitions to add and every problem.
    """
    states: dict[str, tuple[str, list[str], PilotState]] = {}
    for st in scan.invalid:
        # a folder that is no slug or has no pilot.yaml is no pilot (yet): check only
        if SLUG_RE.fullmatch(st.folder) and (landing / st.folder / PILOT_FILE).is_file():
            states[st.folder] = ("invalid", list(st.problems), st)
    for st in [*scan.new, *scan.changed, *scan.unchanged]:
        # an up-to-date pilot whose secret went away would fail its next (nightly) run too
        problem = blocked.get(st.folder) or missing_secret(st)
        states[st.folder] = ("cannot run", [problem], st) if problem else ("ready", [], st)
    events: list[dg.AssetCheckEvaluation | dg.AssetMaterialization | dg.AssetObservation] = []
    for folder, (label, problems, st) in sorted(states.items()):
        seen = cursor.reported.setdefault(folder, {})
        if st.status == "ready" and seen.get("landed") != st.digest:
            events.append(dg.AssetMaterialization(
                asset_key=LANDING_STATUS, partition=folder,
                description="Landing fingerprint of the pilot's pilot.yaml and source files.",
                metadata={"fingerprint": st.digest, "files": len(st.files),
                          "bytes": sum(stamp[0] for stamp in st.files.values()),
                          # (size, mtime_ns, sha256) per file: the nightly schedule re-hashes
                          # only the files that changed since
                          "files_json": dg.MetadataValue.json(
                              {k: list(v) for k, v in st.files.items()})},
                tags={DATA_VERSION_TAG: st.digest},
            ))
            seen["landed"] = st.digest
        if seen.get("state") != [label, problems]:
            events.append(dg.AssetObservation(
                asset_key=LANDING_STATUS, partition=folder,
                description=f"{folder}: {label}",
                metadata={"state": label, "problem_count": len(problems),
                          "problems": dg.MetadataValue.md(_bullets(problems))},
            ))
            seen["state"] = [label, problems]
    for gone in set(cursor.reported) - set(states):
        if gone not in {s.folder for s in scan.settling}:
            cursor.reported.pop(gone)
    problems = [*scan.problems, *(p for f in sorted(states) for p in states[f][1]
                                  if states[f][0] != "invalid")]
    if cursor.check != problems:
        events.append(check_evaluation(problems))
        cursor.check = problems
    return events, sorted(states), problems


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines) or "none"


def check_evaluation(problems: list[str]) -> dg.AssetCheckEvaluation:
    """The `runnable` check of landing_status: every problem of every pilot folder."""
    return dg.AssetCheckEvaluation(asset_key=LANDING_STATUS, check_name=LANDING_CHECK,
                                   passed=not problems, **landing_check_fields(problems))


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
    blocked: dict[str, str] = {}
    for state in [*scan.new, *scan.changed]:
        problem = missing_secret(state)
        if problem is not None:  # no run; looked at again next tick
            blocked[state.folder] = problem
            cursor.record(state, bump=False, pending=True)
            continue
        if state in scan.new and _already_reported(instance, state):
            cursor.record(state, bump=False)
            continue
        reason = "new" if state in scan.new else "changed"
        run_requests.append(_run_request(state, cursor.record(state, bump=True), reason))
    for state in scan.unchanged:
        cursor.record(state, bump=False)  # refreshed mtimes spare a re-hash next tick
    for pilot in scan.gone:
        # forget the fingerprint (a pilot dropped again later is new); the partition and
        # its report history stay
        cursor.pilots.pop(pilot, None)

    events, pilots, problems = _status_events(landing, scan, blocked, cursor)
    to_register = [p for p in pilots if not instance.has_dynamic_partition(
        PILOT_PARTITIONS_NAME, p)]
    for problem in problems:
        context.log.warning(problem)
    skip_reason: str | None = None
    if not run_requests:
        if problems:
            skip_reason = "Pilot folder(s) that cannot run:\n" + "\n".join(
                f"- {p}" for p in problems
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
        asset_events=events,
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
        "pilot_report; a changed file re-runs it; a pilot that cannot run (invalid pilot.yaml, "
        "secret variable unset) fails its landing_status check and is retried every tick."
    ),
)
def pilot_landing_sensor(context: dg.SensorEvaluationContext, paths: PilotPaths):
    return evaluate_landing(context, paths)


SENSORS = [pilot_landing_sensor]
