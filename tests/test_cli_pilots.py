"""`stabilis pilots` lists what the control room knows of each pilot; `pilots remove` takes a
misspelt or retired pilot out of the partitions and the warehouse (issue 16)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.partitions import PILOT_PARTITIONS_NAME
from pipelines.warehouse import connect, ensure_schema

runner = CliRunner()


def _setup(tmp_path: Path, monkeypatch) -> tuple[Path, dg.DagsterInstance]:
    data = tmp_path / "data"
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("STABILIS_DATA_DIR", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    (data / "landing" / "kept").mkdir(parents=True)
    (data / "landing" / "kept" / "pilot.yaml").write_text("pilot: kept\n")
    con = connect(data / "warehouse.duckdb")
    ensure_schema(con)
    for p in ("gone", "kept"):
        con.execute("INSERT INTO pilots VALUES (?, 't', 'UTC', '{}', now())", [p])
        con.execute("INSERT INTO phases VALUES (?, 'baseline', now(), now())", [p])
    con.close()
    inst = dg.DagsterInstance.get()
    inst.add_dynamic_partitions(PILOT_PARTITIONS_NAME, ["gone", "kept"])
    return data, inst


def test_pilots_lists_landing_and_partitions(tmp_path: Path, monkeypatch) -> None:
    _setup(tmp_path, monkeypatch)
    out = runner.invoke(app, ["pilots"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    lines = {ln.split("│")[1].strip(): ln for ln in out.output.splitlines() if "│" in ln}
    assert set(lines) == {"gone", "kept"}
    assert [c.strip() for c in lines["gone"].split("│")[2:4]] == ["no", "yes"]
    assert [c.strip() for c in lines["kept"].split("│")[2:4]] == ["yes", "yes"]


def test_pilots_remove_deletes_rows_and_partition(tmp_path: Path, monkeypatch) -> None:
    data, inst = _setup(tmp_path, monkeypatch)
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        # a view with a pilot column (as int_logical_requests): its rows are its table's
        con.execute("CREATE VIEW a_view_of_phases AS SELECT * FROM phases")
    out = runner.invoke(app, ["pilots", "remove", "gone"], input="n\n")
    assert out.exit_code == 1 and inst.has_dynamic_partition(PILOT_PARTITIONS_NAME, "gone")

    out = runner.invoke(app, ["pilots", "remove", "gone", "--yes"])
    assert out.exit_code == 0, out.output
    assert "2 warehouse rows deleted" in out.output
    assert not inst.has_dynamic_partition(PILOT_PARTITIONS_NAME, "gone")
    assert inst.has_dynamic_partition(PILOT_PARTITIONS_NAME, "kept")
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT DISTINCT pilot FROM phases").fetchall() == [("kept",)]
        assert con.execute("SELECT DISTINCT pilot FROM a_view_of_phases").fetchall() == [("kept",)]

    out = runner.invoke(app, ["pilots", "remove", "gone", "--yes"])
    assert out.exit_code == 2
