"""A failing command ends at once with one clear line and a non-zero exit (issue 13 item 7).

Each case runs the real `stabilis` console script in a subprocess under a timeout (a hang
fails the test), then checks the exit code, that stderr is one line naming the cause, that no
traceback was printed, and that the warehouse is not left locked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.pilot_yaml import write_pilot_yaml

STABILIS = Path(sys.executable).parent / "stabilis"
TIMEOUT_S = 120


def _stabilis(args: list[str], data: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "STABILIS_DATA_DIR": str(data), "COLUMNS": "200", **env}
    full.pop("DAGSTER_HOME", None)
    return subprocess.run([str(STABILIS), *args], capture_output=True, text=True, env=full,
                          timeout=TIMEOUT_S, check=False)


def _one_line(p: subprocess.CompletedProcess[str], *needles: str) -> str:
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("error: "), lines
    assert "Traceback" not in p.stdout + p.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def _unlocked(data: Path) -> None:
    wh = data / "warehouse.duckdb"
    if wh.exists():  # a writer can open it: no process holds the lock
        duckdb.connect(str(wh)).close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    (d / "landing").mkdir(parents=True)
    return d


def _pilot(data: Path, name: str, *, secret_env: str = "STABILIS_SECRET",
           title: str = "t", header: str = "ts,host,util") -> Path:
    folder = data / "landing" / name
    folder.mkdir()
    (folder / "gpu.csv").write_text(f"{header}\n1772409600,node-1,50\n")
    src = {"kind": "tabular", "table": "samples", "path": "gpu.csv",
           "options": {"columns": {"ts": "ts", "node": "host", "value": "util"},
                       "series": "gpu_util", "units": {"ts": "epoch_s", "value": "percent"}}}
    write_pilot_yaml(folder, name, [src], title=title)
    if secret_env != "STABILIS_SECRET":
        text = (folder / "pilot.yaml").read_text().replace("STABILIS_SECRET", secret_env)
        (folder / "pilot.yaml").write_text(text)
    return folder


def test_run_of_an_unknown_pilot_is_refused_before_anything_runs(data: Path) -> None:
    p = _stabilis(["run", "no-such-pilot"], data)
    assert p.returncode == 2
    _one_line(p, "no-such-pilot", "pilot.yaml")
    assert not (data / "warehouse.duckdb").exists()


def test_report_of_a_pilot_the_warehouse_does_not_hold(data: Path) -> None:
    p = _stabilis(["report", "no-such-pilot"], data)
    assert p.returncode == 2
    _one_line(p, "no-such-pilot", "not in the warehouse")
    _unlocked(data)


def test_ingest_without_the_secret_is_one_line(data: Path) -> None:
    folder = _pilot(data, "no-secret", secret_env="STABILIS_UNSET_SECRET_FOR_TEST")
    p = _stabilis(["ingest", str(folder)], data)
    assert p.returncode == 1
    _one_line(p, "no-secret", "STABILIS_UNSET_SECRET_FOR_TEST")
    _unlocked(data)


def test_run_without_the_secret_names_the_step_and_leaves_no_lock(data: Path) -> None:
    _pilot(data, "no-secret", secret_env="STABILIS_UNSET_SECRET_FOR_TEST")
    p = _stabilis(["run", "no-secret"], data)
    assert p.returncode == 1
    _one_line(p, "pilot no-secret", "STABILIS_UNSET_SECRET_FOR_TEST")
    _unlocked(data)


def test_markup_in_pilot_text_prints_literally_and_every_source_failing_exits_1(
        data: Path) -> None:
    # a title and a CSV header that Rich would read as markup; the only source is refused
    folder = _pilot(data, "markup", title="[/red] [bold]x", header="ts,[/red],util")
    p = _stabilis(["ingest", str(folder)], data)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "MarkupError" not in p.stdout + p.stderr
    assert "[/red]" in p.stderr  # the failing source's reason quotes the header literally
    assert p.stderr.rstrip().splitlines()[-1].startswith("error: pilot markup: every source")
    _unlocked(data)
