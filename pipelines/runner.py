"""Materialize a pilot's assets in-process through Dagster (CLI, demo and tests share it).

Runs are recorded in the DAGSTER_HOME instance when it is set, so the Dagster UI shows
what the CLI did; otherwise an ephemeral instance is used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import dagster as dg

from pipelines.definitions import ALL_ASSETS
from pipelines.partitions import PILOT_PARTITIONS_NAME
from pipelines.resources import SqlEngine, default_resources


def instance() -> dg.DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def run_pilot(
    pilot: str,
    *,
    selection: Sequence[str] | None = None,
    resources: Mapping[str, object] | None = None,
    dagster_instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Register `pilot` as a partition and materialize its assets (all, or `selection`)."""
    inst = dagster_instance or instance()
    # callers that pass their own resources (tests, benchmarks) get the engine the
    # environment selects (DuckDB unless STABILIS_SQL_ENGINE says otherwise)
    res = {"sql_engine": SqlEngine.from_env(), **resources} if resources else default_resources()
    if not inst.has_dynamic_partition(PILOT_PARTITIONS_NAME, pilot):
        inst.add_dynamic_partitions(PILOT_PARTITIONS_NAME, [pilot])
    return dg.materialize(
        ALL_ASSETS,
        instance=inst,
        resources=res,
        partition_key=pilot,
        selection=list(selection) if selection else None,
        tags={"stabilis/pilot": pilot},
        # nothing on the console: a failure reaches the caller as the exception (the CLI
        # prints its one line); the full event log stays in the instance (UI)
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
    )


def materialized_row_counts(result: dg.ExecuteInProcessResult) -> dict[str, int | None]:
    """Asset name -> row count from the run's materialization events."""
    out: dict[str, int | None] = {}
    for ev in result.get_asset_materialization_events():
        mat = ev.event_specific_data.materialization  # type: ignore[union-attr]
        rc = mat.metadata.get("dagster/row_count")
        out[mat.asset_key.to_user_string()] = int(rc.value) if rc is not None else None
    return out
