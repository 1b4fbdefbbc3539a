"""`stabilis backfill PILOT... [--from ASSET]`: selection, several pilots, failures named."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import pipelines.runner
from assets.staging import STAGING_TABLES
from pipelines.cli import app, downstream_selection

runner = CliRunner()


@pytest.fixture()
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STABILIS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # runs go to an ephemeral instance
    monkeypatch.setenv("STABILIS_SECRET", "test-secret")
    for pilot in ("pilot-a", "pilot-b"):
        (tmp_path / "landing" / pilot).mkdir(parents=True)
        (tmp_path / "landing" / pilot / "pilot.yaml").write_text(f"pilot: {pilot}\n")
    return tmp_path


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str] | None]]:
    """Record run_pilot calls instead of running. The real run: tests/test_dagster.py
    materializes its small pilot with `stabilis backfill` into a DAGSTER_HOME instance and
    checks what the UI shows (one Dagster run for both files)."""
    seen: list[tuple[str, list[str] | None]] = []

    def fake_run_pilot(pilot: str, *, selection=None, **_: object) -> object:
        if pilot == "pilot-b" and selection is None:
            raise RuntimeError("boom in pilot-b")
        seen.append((pilot, selection))
        return object()

    monkeypatch.setattr(pipelines.runner, "run_pilot", fake_run_pilot)
    monkeypatch.setattr(pipelines.runner, "materialized_row_counts", lambda _r: {"x": 1})
    return seen


def test_downstream_selection_of_a_derived_table():
    sel = downstream_selection("metrics_headline")
    assert "metrics_headline" in sel and "report" in sel
    assert "requests" not in sel and "int_attempts" not in sel


def test_downstream_of_one_staging_table_takes_the_whole_ingest_step():
    # ingest_pilot writes every staging table at once: it cannot run for one table alone
    sel = set(downstream_selection("requests"))
    assert set(STAGING_TABLES) <= sel and "report" in sel


def test_several_pilots_run_one_after_another_and_failures_are_named(data, calls):
    out = runner.invoke(app, ["backfill", "pilot-a", "pilot-b", "pilot-a"])
    assert out.exit_code == 1
    assert [p for p, _ in calls] == ["pilot-a", "pilot-a"]  # pilot-b failed, the rest ran
    assert "error: pilot pilot-b: boom in pilot-b" in out.output
    assert "1 of 3 pilots failed: pilot-b" in out.output


def test_from_asset_selects_it_and_its_downstream(data, calls):
    out = runner.invoke(app, ["backfill", "pilot-a", "pilot-b", "--from", "metrics_headline"])
    assert out.exit_code == 0, out.output
    assert [p for p, _ in calls] == ["pilot-a", "pilot-b"]
    assert calls[0][1] == downstream_selection("metrics_headline")


def test_unknown_asset_and_missing_pilot(data, calls):
    out = runner.invoke(app, ["backfill", "pilot-a", "--from", "no_such_table"])
    assert out.exit_code == 2 and "unknown asset" in out.output
    out = runner.invoke(app, ["backfill", "nowhere", "../etc"])
    assert out.exit_code == 1
    assert "no " in out.output and "not a pilot slug" in out.output
    assert calls == []  # nothing ran, no partition registered for a typo


def test_preview_cells_are_escaped_and_truncated():
    from assets.table_metadata import PREVIEW_CELL_CHARS, markdown_table, md_cell

    assert md_cell("a|b*c_d`e<f>\nnext") == "a\\|b\\*c\\_d\\`e\\<f\\> next"
    long = md_cell("x" * 500)
    assert len(long) == PREVIEW_CELL_CHARS and long.endswith("…")
    assert md_cell(None) == ""
    table = markdown_table(["pilot", "n"], [("p|1", 1), ("p2", None)])
    assert table.splitlines() == ["| pilot | n |", "|---|---|", "| p\\|1 | 1 |", "| p2 |  |"]
