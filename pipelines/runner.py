"""Materialize a pilot's assets in-process through Dagster (CLI, demo and tests share it).

Runs are recorded in the DAGSTER_HOME instance when it is set, so the Dagster UI shows
what the CLI did; otherwise an ephemeral instance is used.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping, Sequence

import dagster as dg

from pipelines.definitions import ALL_ASSETS
from pipelines.jobs import TRIGGER_CLI, run_tags
from pipelines.partitions import PILOT_PARTITIONS_NAME
from pipelines.resources import SqlEngine, default_resources


def instance() -> dg.DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


CLI_JOB = "pilot_cli"  # the job name CLI, demo and backfill runs carry in the UI
StepListener = Callable[[str, str, int, int], None]  # (event, step key, steps done, steps)


def run_pilot(
    pilot: str,
    *,
    selection: Sequence[str] | None = None,
    resources: Mapping[str, object] | None = None,
    dagster_instance: dg.DagsterInstance | None = None,
    on_step: StepListener | None = None,
    trigger: str = TRIGGER_CLI,
) -> dg.ExecuteInProcessResult:
    """Register `pilot` as a partition and materialize its assets (all, or `selection`).

    `on_step(event, step, done, total)` is called as each step starts and ends (event
    'start', 'success' or 'failure'), for progress display."""
    inst = dagster_instance or instance()
    # callers that pass their own resources (tests, benchmarks) get the engine the
    # environment selects (DuckDB unless STABILIS_SQL_ENGINE says otherwise)
    res = {"sql_engine": SqlEngine.from_env(), **resources} if resources else default_resources()
    if not inst.has_dynamic_partition(PILOT_PARTITIONS_NAME, pilot):
        inst.add_dynamic_partitions(PILOT_PARTITIONS_NAME, [pilot])
    # what dg.materialize does, with a named job and a run id known in advance (listener)
    defs = dg.Definitions(
        jobs=[dg.define_asset_job(CLI_JOB, selection=list(selection) if selection else None)],
        assets=ALL_ASSETS, resources=res)
    job = defs.resolve_job_def(CLI_JOB)
    run_id = str(uuid.uuid4())
    if on_step is not None:
        inst.add_event_listener(run_id, _StepCounter(on_step, len(job.graph.nodes)))
    return job.execute_in_process(
        instance=inst,
        partition_key=pilot,
        run_id=run_id,
        tags=run_tags(pilot, trigger),
        # nothing on the console: a failure reaches the caller as the exception (the CLI
        # prints its one line); the full event log stays in the instance (UI)
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
    )


class _StepCounter:
    """Turns a run's step events into (event, step, done, total) calls."""

    _KINDS = {"STEP_START": "start", "STEP_SUCCESS": "success", "STEP_FAILURE": "failure"}

    def __init__(self, on_step: StepListener, total: int) -> None:
        self.on_step, self.total, self.done = on_step, total, 0

    def __call__(self, entry: object) -> None:
        event = getattr(entry, "dagster_event", None)
        kind = self._KINDS.get(getattr(event, "event_type_value", ""))
        if kind is None or event is None:
            return
        if kind != "start":
            self.done += 1
        self.on_step(kind, event.step_key or "", self.done, max(self.total, self.done))


def materialized_row_counts(result: dg.ExecuteInProcessResult) -> dict[str, int | None]:
    """Asset name -> row count from the run's materialization events."""
    out: dict[str, int | None] = {}
    for ev in result.get_asset_materialization_events():
        mat = ev.event_specific_data.materialization  # type: ignore[union-attr]
        rc = mat.metadata.get("dagster/row_count")
        out[mat.asset_key.to_user_string()] = int(rc.value) if rc is not None else None
    return out
