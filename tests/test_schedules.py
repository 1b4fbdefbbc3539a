"""Schedules: the nightly run asks for each active pilot that is stale (code, landing files or
an unfinished run) and skips those up to date; the weekly sweep is staging + checks."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from pipelines.definitions import defs
from pipelines.jobs import CODE_VERSION_TAG, DATA_VERSION_TAG
from pipelines.landing import inspect_pilot
from pipelines.partitions import PILOT_PARTITIONS_NAME
from pipelines.resources import PilotPaths
from pipelines.schedules import (
    data_quality_job,
    nightly_pilot_reports,
    weekly_data_quality,
)

TICK = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
FIXTURE = Path(__file__).parent / "fixtures" / "pilot_ok"


def drop_pilot(landing: Path, name: str) -> Path:
    """A valid pilot folder `name` (the fixture's sources that have files)."""
    dest = landing / name
    shutil.copytree(FIXTURE, dest)
    yaml = dest / "pilot.yaml"
    lines = yaml.read_text().splitlines(keepends=True)
    yaml.write_text("".join(ln for ln in lines if "samples/" not in ln))
    return dest


@pytest.fixture()
def paths(tmp_path: Path) -> PilotPaths:
    landing = tmp_path / "landing"
    landing.mkdir()
    for pilot in ("pilot-a", "pilot-b"):
        yaml = drop_pilot(landing, pilot) / "pilot.yaml"
        yaml.write_text(yaml.read_text().replace("pilot: fixture-a", f"pilot: {pilot}"))
    return PilotPaths(landing_dir=str(landing), reports_dir=str(tmp_path / "reports"))


@pytest.fixture()
def instance():
    # build_schedule_context needs a persistent instance (it passes an instance ref)
    with dg.instance_for_test() as inst:
        yield inst


def evaluate(schedule: dg.ScheduleDefinition, instance: dg.DagsterInstance, paths: PilotPaths):
    # `with`: the context opens its own instance from the ref and must close it again
    # (else a dead instance stays current for later Definitions loads in this process)
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=TICK, resources={"paths": paths}
    ) as context:
        return schedule(context)


def test_nightly_requests_one_run_per_active_pilot(instance, paths):
    # pilot-c is registered but its folder left the landing directory: not refreshed
    instance.add_dynamic_partitions(PILOT_PARTITIONS_NAME, ["pilot-b", "pilot-a", "pilot-c"])
    requests = evaluate(nightly_pilot_reports, instance, paths)
    assert [r.partition_key for r in requests] == ["pilot-a", "pilot-b"]
    assert [r.run_key for r in requests] == [
        "nightly:pilot-a:2026-03-10T02:00",
        "nightly:pilot-b:2026-03-10T02:00",
    ]
    assert all(r.tags["stabilis/trigger"] == "nightly" for r in requests)


def test_no_registered_pilot_is_a_skip(instance, paths):
    result = evaluate(nightly_pilot_reports, instance, paths)
    assert isinstance(result, dg.SkipReason)
    assert "No active pilot" in result.skip_message


def test_weekly_sweep_runs_per_pilot_on_the_staging_job(instance, paths):
    instance.add_dynamic_partitions(PILOT_PARTITIONS_NAME, ["pilot-a"])
    (req,) = evaluate(weekly_data_quality, instance, paths)
    assert req.partition_key == "pilot-a"
    assert req.run_key.startswith("weekly-dq:pilot-a:")
    assert weekly_data_quality.job_name == data_quality_job.name


def test_schedules_are_running_with_a_next_tick():
    crons = {"nightly_pilot_reports": "0 2 * * *", "weekly_data_quality": "0 3 * * 1"}
    for name, cron in crons.items():
        sched = defs.resolve_schedule_def(name)
        assert sched.cron_schedule == cron
        assert sched.execution_timezone == "UTC"
        assert sched.default_status == dg.DefaultScheduleStatus.RUNNING
    assert defs.resolve_schedule_def("nightly_pilot_reports").job_name == "pilot_report"


def test_quality_sweep_selects_the_staging_assets_and_their_checks():
    graph = defs.resolve_asset_graph()
    staging = {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "staging"}
    job = defs.resolve_job_def("data_quality_sweep")
    assert set(job.asset_layer.selected_asset_keys) == staging
    staging_checks = {c for c in graph.asset_check_keys if c.asset_key in staging}
    assert staging_checks  # at least rows_reconcile on ingest_log
    assert staging_checks <= set(job.asset_layer.asset_graph.asset_check_keys)


def record_full_run(instance: dg.DagsterInstance, paths: PilotPaths, pilot: str, **override):
    """What a successful pilot_report run leaves: every asset materialized in order with its
    code version, staging carrying the landing fingerprint as data version."""
    graph = defs.resolve_asset_graph()
    digest = inspect_pilot(paths.pilot_dir(pilot), {}, settle_s=0).digest
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if not node.is_executable:
            continue
        tags = {CODE_VERSION_TAG: override.get(key.to_user_string(), node.code_version)}
        if node.group_name == "staging":
            tags[DATA_VERSION_TAG] = digest
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=key, partition=pilot, tags=tags))


def test_nightly_skips_up_to_date_pilots_and_reruns_stale_ones(instance, paths):
    instance.add_dynamic_partitions(PILOT_PARTITIONS_NAME, ["pilot-a", "pilot-b"])
    for pilot in ("pilot-a", "pilot-b"):
        record_full_run(instance, paths, pilot)
    skipped = evaluate(nightly_pilot_reports, instance, paths)
    assert isinstance(skipped, dg.SkipReason)
    assert "pilot-a: up to date" in skipped.skip_message
    # new landing content for pilot-a, an old code version of one SQL table for pilot-b
    csv = Path(paths.landing_dir) / "pilot-a" / "requests" / "part-1.csv"
    csv.write_text(csv.read_text() + csv.read_text().splitlines(keepends=True)[-1])
    record_full_run(instance, paths, "pilot-b", metrics_headline="an-older-sql-text")
    assert [r.partition_key for r in evaluate(nightly_pilot_reports, instance, paths)] == [
        "pilot-a", "pilot-b"]


def test_nightly_reruns_a_pilot_whose_last_run_stopped_half_way(instance, paths):
    instance.add_dynamic_partitions(PILOT_PARTITIONS_NAME, ["pilot-a"])
    shutil.rmtree(Path(paths.landing_dir) / "pilot-b")
    record_full_run(instance, paths, "pilot-a")
    # a later run re-ingested, then failed: the derived tables are older than staging
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key="requests", partition="pilot-a",
        tags={CODE_VERSION_TAG: defs.resolve_asset_graph().get(
            dg.AssetKey("requests")).code_version}))
    (req,) = evaluate(nightly_pilot_reports, instance, paths)
    assert req.partition_key == "pilot-a"


def test_nightly_does_not_launch_an_invalid_pilot(instance, paths):
    instance.add_dynamic_partitions(PILOT_PARTITIONS_NAME, ["pilot-a", "pilot-b"])
    (Path(paths.landing_dir) / "pilot-b" / "pilot.yaml").write_text("pilot: pilot-b\n")
    (req,) = evaluate(nightly_pilot_reports, instance, paths)
    assert req.partition_key == "pilot-a"
