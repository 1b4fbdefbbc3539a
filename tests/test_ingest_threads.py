"""The ingest runs DuckDB on INGEST_THREADS threads (the reader thread has the other core)
and gives the connection its own setting back, after a commit and after a rollback alike."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.config import load_pilot
from pipelines.ingest import load
from pipelines.ingest.load import GIL_SWITCH_S, INGEST_THREADS, ingest_pilot
from pipelines.warehouse import connect
from tests.test_ingest_canonical import _make_pilot, _snapshot


def _threads(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT current_setting('threads')").fetchone()
    assert row is not None
    return int(row[0])


def test_threads_are_few_while_storing_and_restored_after(tmp_path: Path, monkeypatch):
    con = connect(tmp_path / "w.duckdb")
    con.execute("SET threads = 3")
    seen: list[int] = []
    real = load.insert_frame

    def spy(c: duckdb.DuckDBPyConnection, table: str, df) -> None:
        seen.append(_threads(c))
        real(c, table, df)

    monkeypatch.setattr(load, "insert_frame", spy)
    ingest_pilot(con, load_pilot(_make_pilot(tmp_path)))
    assert seen and set(seen) == {INGEST_THREADS}
    assert _threads(con) == 3


def test_a_failed_run_restores_threads_and_leaves_the_warehouse_as_it_was(tmp_path: Path,
                                                                          monkeypatch):
    con = connect(tmp_path / "w.duckdb")
    cfg = load_pilot(_make_pilot(tmp_path))
    ingest_pilot(con, cfg)
    before = _snapshot(con, audit=True)
    con.execute("SET threads = 2")

    def boom(*_: object) -> None:
        con.execute("SELECT CAST('x' AS INTEGER)")  # a failed statement aborts the transaction

    monkeypatch.setattr(load, "_drop_duplicates", boom)
    with pytest.raises(duckdb.ConversionException):
        ingest_pilot(con, cfg)
    assert _threads(con) == 2
    assert _snapshot(con, audit=True) == before


def test_thread_switches_are_quick_while_ingesting_and_restored_after(tmp_path: Path,
                                                                      monkeypatch):
    # the tokenizer holds the GIL: the reader and the inserts must not wait 5 ms for it
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    seen: list[float] = []
    real = load.insert_frame

    def spy(c: duckdb.DuckDBPyConnection, table: str, df) -> None:
        seen.append(sys.getswitchinterval())
        real(c, table, df)

    monkeypatch.setattr(load, "insert_frame", spy)
    cfg = load_pilot(_make_pilot(tmp_path))
    try:
        ingest_pilot(connect(tmp_path / "w.duckdb"), cfg)
        assert seen and max(seen) <= GIL_SWITCH_S < 0.005
        assert sys.getswitchinterval() == pytest.approx(0.005)
        monkeypatch.setattr(load, "_drop_duplicates", _fail)
        with pytest.raises(RuntimeError, match="boom"):
            ingest_pilot(connect(tmp_path / "w.duckdb"), cfg)
        assert sys.getswitchinterval() == pytest.approx(0.005)  # after a failed run too
    finally:
        sys.setswitchinterval(before)


def _fail(*_: object) -> None:
    raise RuntimeError("boom")
