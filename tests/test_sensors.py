"""The landing sensor: new pilot -> partition + run; unchanged -> nothing; changed -> re-run;
broken pilot.yaml or unset secret -> no run, a failed landing_status check with every message
(and the skip reason), never a crash; fixed -> the next tick runs it."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.checks import LANDING_CHECK, LANDING_STATUS
from pipelines.jobs import DATA_VERSION_TAG
from pipelines.landing import Cursor, inspect_pilot, scan_landing
from pipelines.partitions import PILOT_PARTITIONS_NAME
from pipelines.resources import PilotPaths
from pipelines.sensors import LANDING_SENSOR_NAME, evaluate_landing, pilot_landing_sensor

FIXTURE = Path(__file__).parent / "fixtures" / "pilot_ok"
PILOT = "fixture-a"  # the `pilot:` of the fixture's pilot.yaml
LATER = time.time() + 3600  # "now" for evaluations that must not wait for files to settle


def age(folder: Path, seconds: float = 600) -> None:
    """Backdate every mtime under `folder` (as if the copy finished a while ago)."""
    t = time.time() - seconds
    for p in [folder, *folder.rglob("*")]:
        os.utime(p, (t, t))


@pytest.fixture()
def landing(tmp_path: Path) -> Path:
    d = tmp_path / "landing"
    d.mkdir()
    return d


@pytest.fixture()
def paths(tmp_path: Path, landing: Path) -> PilotPaths:
    return PilotPaths(landing_dir=str(landing), reports_dir=str(tmp_path / "reports"))


@pytest.fixture()
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


def drop_pilot(landing: Path, name: str = PILOT) -> Path:
    dest = landing / name
    shutil.copytree(FIXTURE, dest)
    # keep the sources that have files in the fixture (a glob matching nothing is refused)
    yaml = dest / "pilot.yaml"
    lines = yaml.read_text().splitlines(keepends=True)
    yaml.write_text("".join(ln for ln in lines if "samples/" not in ln))
    return dest


def evaluate(
    instance: dg.DagsterInstance, paths: PilotPaths, cursor: str | None = None, **kw
) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = evaluate_landing(context, paths, now=kw.pop("now", LATER), **kw)
    # what the daemon does with the result: register the partitions it asked for
    for req in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    return result


def test_new_pilot_registers_its_partition_and_requests_a_run(instance, paths, landing):
    drop_pilot(landing)
    result = evaluate(instance, paths)
    (add,) = result.dynamic_partitions_requests
    assert isinstance(add, dg.AddDynamicPartitionsRequest)
    assert (add.partitions_def_name, list(add.partition_keys)) == (PILOT_PARTITIONS_NAME, [PILOT])
    (run,) = result.run_requests
    assert run.partition_key == PILOT
    assert run.tags["stabilis/trigger"] == "landing:new"
    assert result.skip_reason is None
    assert Cursor.parse(result.cursor).digest(PILOT)


def test_unchanged_pilot_requests_nothing(instance, paths, landing):
    drop_pilot(landing)
    first = evaluate(instance, paths)
    again = evaluate(instance, paths, first.cursor)
    assert not again.run_requests
    assert not again.dynamic_partitions_requests
    assert "No new or changed pilot" in again.skip_reason.skip_message
    assert again.cursor == first.cursor


def test_touch_without_change_is_not_a_change(instance, paths, landing):
    folder = drop_pilot(landing)
    first = evaluate(instance, paths)
    csv = folder / "requests" / "part-1.csv"
    os.utime(csv, (time.time() - 10, time.time() - 10))
    again = evaluate(instance, paths, first.cursor)
    assert not again.run_requests
    # the refreshed stamp is kept, so the next tick does not hash the file again
    assert Cursor.parse(again.cursor).stamps(PILOT)["requests/part-1.csv"][1] == (
        csv.stat().st_mtime_ns
    )


def test_changed_file_requests_a_rerun(instance, paths, landing):
    folder = drop_pilot(landing)
    first = evaluate(instance, paths)
    csv = folder / "requests" / "part-1.csv"
    original = csv.read_bytes()
    csv.write_bytes(original + original.splitlines(keepends=True)[-1])
    second = evaluate(instance, paths, first.cursor)
    (run,) = second.run_requests
    assert run.partition_key == PILOT
    assert run.tags["stabilis/trigger"] == "landing:changed"
    assert not second.dynamic_partitions_requests  # already registered
    # back to the original content: a new run again, with a fresh run key
    csv.write_bytes(original)
    third = evaluate(instance, paths, second.cursor)
    (back,) = third.run_requests
    assert back.run_key not in {first.run_requests[0].run_key, run.run_key}


def test_a_new_source_file_is_a_change(instance, paths, landing):
    folder = drop_pilot(landing)
    first = evaluate(instance, paths)
    shutil.copy(folder / "requests" / "part-1.csv", folder / "requests" / "part-2.csv")
    assert evaluate(instance, paths, first.cursor).run_requests


def test_broken_pilot_yaml_is_a_skip_reason_with_the_messages(instance, paths, landing):
    folder = drop_pilot(landing)
    text = (folder / "pilot.yaml").read_text()
    (folder / "pilot.yaml").write_text(
        text.replace("timezone: Europe/Berlin", "timezone: Mars/Olympus").replace(
            "timeout_ms: 30000", "timeout_ms: -1"
        )
    )
    result = evaluate(instance, paths)
    assert not result.run_requests
    # registered all the same, so its failed landing_status check shows on its partition
    (add,) = result.dynamic_partitions_requests
    assert list(add.partition_keys) == [PILOT]
    msg = result.skip_reason.skip_message
    assert "Pilot folder(s) that cannot run" in msg
    assert "Mars/Olympus" in msg and "timeout_ms" in msg
    assert msg.count(f"- {PILOT}: ") >= 2  # one line per validation message


def test_yaml_syntax_error_and_folder_name_mismatch_are_skip_reasons(instance, paths, landing):
    bad = landing / "bad-yaml"
    bad.mkdir()
    (bad / "pilot.yaml").write_text("pilot: bad-yaml\nphases: [unclosed\n")
    drop_pilot(landing, "other-name")
    (landing / "Not_A_Slug").mkdir()
    msg = evaluate(instance, paths).skip_reason.skip_message
    assert "bad-yaml: pilot.yaml: YAML syntax error" in msg
    assert "other-name: pilot.yaml says `pilot: fixture-a`" in msg
    assert "Not_A_Slug: folder name is not a pilot slug" in msg


def test_fixing_a_broken_pilot_then_runs_it(instance, paths, landing):
    folder = drop_pilot(landing)
    good = (folder / "pilot.yaml").read_text()
    (folder / "pilot.yaml").write_text("pilot: [\n")
    first = evaluate(instance, paths)
    assert first.skip_reason
    (folder / "pilot.yaml").write_text(good)
    (run,) = evaluate(instance, paths, first.cursor).run_requests
    assert run.partition_key == PILOT


def test_valid_and_invalid_pilots_together(instance, paths, landing):
    drop_pilot(landing)
    (landing / "broken").mkdir()
    (landing / "broken" / "pilot.yaml").write_text("- not a mapping\n")
    result = evaluate(instance, paths)
    assert [r.partition_key for r in result.run_requests] == [PILOT]
    assert result.skip_reason is None  # Dagster allows runs or a skip reason; problems go to log


def test_copy_in_progress_waits_then_runs(instance, paths, landing):
    folder = drop_pilot(landing)
    now = time.time()
    assert inspect_pilot(folder, {}, now=now).status == "settling"
    result = evaluate(instance, paths, now=now)
    assert not result.run_requests
    assert "Waiting for files to settle: fixture-a" in result.skip_reason.skip_message
    assert evaluate(instance, paths, result.cursor).run_requests


def test_hidden_and_temporary_folders_are_ignored(instance, paths, landing):
    drop_pilot(landing, ".fixture-a")
    drop_pilot(landing, "fixture-a.tmp")
    (landing / "README.txt").write_text("not a folder")
    scan = scan_landing(landing, Cursor(), now=LATER)
    assert not (scan.new or scan.invalid or scan.settling)


def test_pilot_already_reported_before_the_sensor_started_is_not_rerun(instance, paths, landing):
    folder = drop_pilot(landing)
    age(folder)
    instance.add_dynamic_partitions(PILOT_PARTITIONS_NAME, [PILOT])
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key="report", partition=PILOT)
    )
    result = evaluate(instance, paths)
    assert not result.run_requests
    assert Cursor.parse(result.cursor).digest(PILOT)  # but now watched for changes


def test_removed_pilot_is_forgotten_by_the_cursor(instance, paths, landing):
    folder = drop_pilot(landing)
    first = evaluate(instance, paths)
    shutil.rmtree(folder)
    gone = evaluate(instance, paths, first.cursor)
    assert Cursor.parse(gone.cursor).pilots == {}
    assert instance.has_dynamic_partition(PILOT_PARTITIONS_NAME, PILOT)  # history stays


def test_missing_landing_folder_and_garbage_cursor(instance, tmp_path):
    paths = PilotPaths(landing_dir=str(tmp_path / "nope"), reports_dir=str(tmp_path / "r"))
    result = evaluate(instance, paths, cursor="{not json")
    assert not result.run_requests and "No new or changed pilot" in result.skip_reason.skip_message


def test_the_sensor_definition_runs_by_default_and_targets_pilot_report(paths, landing):
    assert pilot_landing_sensor.name == LANDING_SENSOR_NAME
    assert pilot_landing_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert pilot_landing_sensor.job_name == "pilot_report"
    age(drop_pilot(landing))
    context = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(), resources={"paths": paths}
    )
    result = pilot_landing_sensor(context)
    assert [r.partition_key for r in result.run_requests] == [PILOT]


def test_the_sensor_is_in_the_definitions():
    from pipelines.definitions import defs

    sensor = defs.resolve_sensor_def(LANDING_SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


SECRET_VAR = "STABILIS_SENSOR_TEST_SECRET"


def landing_check(result: dg.SensorResult) -> dg.AssetCheckEvaluation | None:
    (check,) = [e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)] or [
        None]
    assert check is None or (check.asset_key, check.check_name) == (LANDING_STATUS,
                                                                   LANDING_CHECK)
    return check


def pilot_states(result: dg.SensorResult) -> dict[str, str]:
    return {e.partition: e.metadata["state"].value for e in result.asset_events
            if isinstance(e, dg.AssetObservation)}


def test_unset_secret_launches_nothing_and_fails_the_check_until_it_is_set(
    instance, paths, landing, monkeypatch
):
    folder = drop_pilot(landing)
    yaml = folder / "pilot.yaml"
    yaml.write_text(yaml.read_text().replace("STABILIS_SECRET", SECRET_VAR))
    monkeypatch.delenv(SECRET_VAR, raising=False)
    first = evaluate(instance, paths)
    assert not first.run_requests
    assert SECRET_VAR in first.skip_reason.skip_message
    check = landing_check(first)
    assert not check.passed and SECRET_VAR in check.metadata["problems"].value
    assert check.metadata["pilots_blocked"].value == [PILOT]
    # the pilot's partition exists and says why; the landing data version is known
    assert pilot_states(first) == {PILOT: "cannot run"}
    assert instance.has_dynamic_partition(PILOT_PARTITIONS_NAME, PILOT)
    (mat,) = [e for e in first.asset_events if isinstance(e, dg.AssetMaterialization)]
    assert mat.tags[DATA_VERSION_TAG] == inspect_pilot(folder, {}, now=LATER).digest
    # still unset: nothing new to say, still no run (the cursor did not take it as done)
    second = evaluate(instance, paths, first.cursor)
    assert not second.run_requests and not second.asset_events
    # exported in the sensor's process: the next tick runs it and the check passes
    monkeypatch.setenv(SECRET_VAR, "now-set")
    third = evaluate(instance, paths, second.cursor)
    (run,) = third.run_requests
    assert run.partition_key == PILOT and run.tags["stabilis/trigger"] == "landing:new"
    assert landing_check(third).passed and pilot_states(third) == {PILOT: "ready"}
    assert not evaluate(instance, paths, third.cursor).run_requests  # done now


def test_invalid_pilot_fails_the_landing_check_with_every_message(instance, paths, landing):
    folder = drop_pilot(landing)
    text = (folder / "pilot.yaml").read_text()
    (folder / "pilot.yaml").write_text(
        text.replace("timezone: Europe/Berlin", "timezone: Mars/Olympus").replace(
            "timeout_ms: 30000", "timeout_ms: -1"))
    (landing / "Not_A_Slug").mkdir()
    result = evaluate(instance, paths)
    check = landing_check(result)
    assert not check.passed and check.metadata["problem_count"].value == 3
    problems = check.metadata["problems"].value
    assert "Mars/Olympus" in problems and "timeout_ms" in problems and "Not_A_Slug" in problems
    assert pilot_states(result) == {PILOT: "invalid"}
    assert instance.has_dynamic_partition(PILOT_PARTITIONS_NAME, PILOT)
    # what the daemon does with the events (on a persistent instance): the check's latest
    # execution is a failure, then a pass once fixed (reported twice: it must not collide)
    key = dg.AssetCheckKey(LANDING_STATUS, LANDING_CHECK)
    with dg.instance_for_test() as stored:
        for event in result.asset_events:
            stored.report_runless_asset_event(event)
        latest = stored.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
        assert latest.status.value == "FAILED"
        (folder / "pilot.yaml").write_text(text)
        shutil.rmtree(landing / "Not_A_Slug")
        fixed = evaluate(instance, paths, result.cursor)
        assert fixed.run_requests and landing_check(fixed).passed
        for event in fixed.asset_events:
            stored.report_runless_asset_event(event)
        latest = stored.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
        assert latest.status.value == "SUCCEEDED"
