"""Bounded-memory ingestion (issue #8): big files are read, validated, tokenized and parked
chunk by chunk, with the same rows, tokens and quarantine lines as a file read whole; a file
failing in a later chunk leaves nothing behind; hive day= folders load; DuckDB does not keep
the frames handed to it alive until the pilot's transaction ends. The next chunk (of the file
or the next one) is read in a worker thread while one is stored, with the same guarantees."""

from __future__ import annotations

import gc
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pytest

from pipelines.anonymize import Anonymizer
from pipelines.config import load_pilot
from pipelines.ingest import load
from pipelines.ingest.csv_blocks import csv_blocks, record_end
from pipelines.ingest.load import CHUNK_ROWS_ENV, ingest_pilot
from pipelines.ingest.spill import insert_frame
from pipelines.warehouse import connect, ensure_schema
from schemas import FrameSchemaError
from tests.pilot_yaml import write_pilot_yaml
from tests.test_ingest_canonical import _make_pilot, _snapshot, tok

T0 = datetime(2026, 3, 2, 10)
CSV_HEADER = "request_id,attempt,pool,node,model_class,priority,arrival_ts,status,note\n"


def _requests(n: int, bad: dict[int, str] | None = None) -> pl.DataFrame:
    """n valid request rows; `bad` sets the priority of some rows (0-based) to a refused one."""
    bad = bad or {}
    return pl.DataFrame({
        "request_id": [f"r{i}" for i in range(n)],
        "attempt": [0] * n,
        "pool": ["pool-a"] * n,
        "node": [f"n{i % 3}" for i in range(n)],
        "model_class": ["llm"] * n,
        "priority": [bad.get(i, "P1") for i in range(n)],
        "arrival_ts": [T0 + timedelta(seconds=i) for i in range(n)],
        "status": ["dropped"] * n,
    })


def _pilot(root: Path, sources: list[dict[str, Any]], files: dict[str, bytes | pl.DataFrame]
           ) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, pl.DataFrame):
            content.write_parquet(root / name)
        else:
            (root / name).write_bytes(content)
    write_pilot_yaml(root, root.name, sources)
    return root


def _ingest(d: Path, db: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int | None
            ) -> tuple[duckdb.DuckDBPyConnection, list[int]]:
    """Ingest `d` into a fresh warehouse with `chunk_rows` per chunk (None: the default);
    returns the connection and the height of every chunk validated."""
    if chunk_rows is None:
        monkeypatch.delenv(CHUNK_ROWS_ENV, raising=False)
    else:
        monkeypatch.setenv(CHUNK_ROWS_ENV, str(chunk_rows))
    heights: list[int] = []
    real = load.validate_frame

    def counting(table: str, df: pl.DataFrame, *window: Any
                 ) -> tuple[pl.DataFrame, pl.DataFrame]:
        heights.append(df.height)
        return real(table, df, *window)

    monkeypatch.setattr(load, "validate_frame", counting)
    con = connect(db)
    ingest_pilot(con, load_pilot(d))
    monkeypatch.setattr(load, "validate_frame", real)
    return con, heights


def _leftover_spill(db: Path) -> list[Path]:
    tmp = db.with_name(db.name + ".tmp")
    return sorted(tmp.glob("ingest-*")) if tmp.exists() else []


def _a_then_b(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, a_rows: int
              ) -> tuple[Path, Path]:
    """(pilot folder, warehouse path) of r/a.parquet (a_rows, one bad priority) then
    r/b.parquet (3 rows), read 3 rows a chunk: the two files of the failure tests."""
    d = _pilot(tmp_path / "p", [
        {"kind": "canonical", "table": "requests", "path": "r/*.parquet"},
    ], {"r/a.parquet": _requests(a_rows, bad={1: "P9"}), "r/b.parquet": _requests(3)})
    monkeypatch.setenv(CHUNK_ROWS_ENV, "3")
    return d, tmp_path / "w" / "w.duckdb"


def _assert_only_b_landed(con: duckdb.DuckDBPyConnection, db: Path) -> None:
    """r/a.parquet was taken back whole (one quarantine row, no line); r/b.parquet's 3 rows
    landed; nothing is left in the spill folder."""
    assert con.execute("SELECT count(*) FROM requests").fetchone() == (3,)
    assert con.execute("SELECT file, line FROM quarantine").fetchall() == [("r/a.parquet", None)]
    assert con.execute("SELECT file FROM ingest_log").fetchall() == [("r/b.parquet",)]
    assert _leftover_spill(db) == []


# --- Parquet ----------------------------------------------------------------------------------


def test_bad_row_in_the_second_batch_keeps_its_file_row_number(tmp_path, monkeypatch):
    d = _pilot(tmp_path / "p", [{"kind": "canonical", "table": "requests", "path": "r.parquet"}],
               {"r.parquet": _requests(10, bad={6: "P9"})})
    db = tmp_path / "w" / "w.duckdb"
    con, heights = _ingest(d, db, monkeypatch, chunk_rows=4)
    assert heights == [4, 4, 2]  # read in batches of the setting, not whole
    assert con.execute("SELECT line, field, reason, value FROM quarantine").fetchall() == [
        (7, "priority", "expected one of P0, P1, P2, P3", "P9")  # row 7 of the file
    ]
    assert con.execute("SELECT rows_in, rows_stored, rows_quarantined FROM ingest_log"
                       ).fetchall() == [(10, 9, 1)]
    stored = {r for (r,) in con.execute("SELECT request_id FROM requests").fetchall()}
    assert stored == {tok("req", f"r{i}") for i in range(10) if i != 6}  # the same tokens
    assert _leftover_spill(db) == []


def test_batches_store_exactly_what_one_chunk_stores(tmp_path, monkeypatch):
    d = _pilot(tmp_path / "p", [{"kind": "canonical", "table": "requests", "path": "r.parquet"}],
               {"r.parquet": _requests(23, bad={0: "x", 12: "P7", 22: "y"})})
    whole, h1 = _ingest(d, tmp_path / "a" / "w.duckdb", monkeypatch, chunk_rows=None)
    batched, h2 = _ingest(d, tmp_path / "b" / "w.duckdb", monkeypatch, chunk_rows=5)
    assert (h1, h2) == ([23], [5, 5, 5, 5, 3])
    assert _snapshot(batched) == _snapshot(whole)


def test_a_file_failing_in_a_later_chunk_leaves_nothing_behind(tmp_path, monkeypatch):
    d, db = _a_then_b(tmp_path, monkeypatch, a_rows=10)
    real, calls = load.validate_frame, []

    def third_chunk_breaks(table: str, df: pl.DataFrame, *window: Any
                           ) -> tuple[pl.DataFrame, pl.DataFrame]:
        calls.append(df.height)
        if len(calls) == 3:  # a.parquet's third chunk: its first two are parked already
            raise FrameSchemaError("requests: the frame went wrong")
        return real(table, df, *window)

    monkeypatch.setattr(load, "validate_frame", third_chunk_breaks)
    con = connect(db)
    summary = ingest_pilot(con, load_pilot(d))
    assert [(f, r) for _, f, r in summary.failed_sources] == [
        ("r/a.parquet", "requests: the frame went wrong")
    ]
    # only b.parquet landed; a.parquet's bad row (chunk 1) left no quarantine entry either
    _assert_only_b_landed(con, db)


def test_the_next_chunk_is_read_while_this_one_is_stored(tmp_path, monkeypatch):
    d = _pilot(tmp_path / "p", [{"kind": "canonical", "table": "requests", "path": "r/*.parquet"}],
               {"r/a.parquet": _requests(6), "r/b.parquet": _requests(3)})
    monkeypatch.setenv(CHUNK_ROWS_ENV, "3")
    real_validate, real_insert = load.validate_frame, load.insert_frame
    validated, overlapped = [], []

    def validate(table: str, df: pl.DataFrame, *window: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
        validated.append(threading.current_thread() is threading.main_thread())
        return real_validate(table, df, *window)

    def insert(con_: duckdb.DuckDBPyConnection, table: str, df: pl.DataFrame) -> None:
        # chunk k is inserted while chunk k + 1 (the next file's too) is read: wait for it
        k = len(overlapped)
        for _ in range(500):
            if len(validated) > k + 1 or k == 2:
                break
            time.sleep(0.01)
        overlapped.append(len(validated) > k + 1)
        real_insert(con_, table, df)

    monkeypatch.setattr(load, "validate_frame", validate)
    monkeypatch.setattr(load, "insert_frame", insert)
    con = connect(tmp_path / "w" / "w.duckdb")
    ingest_pilot(con, load_pilot(d))
    assert validated == [False, False, False]  # read in the worker thread
    assert overlapped == [True, True, False]  # the last chunk has nothing after it
    assert con.execute("SELECT file, rows_in FROM ingest_log ORDER BY file").fetchall() == [
        ("r/a.parquet", 6), ("r/b.parquet", 3)]


def test_chunks_are_read_tokenized_and_stored_in_three_threads(tmp_path, monkeypatch):
    d = _pilot(tmp_path / "p", [{"kind": "canonical", "table": "requests", "path": "r/*.parquet"}],
               {"r/a.parquet": _requests(6), "r/b.parquet": _requests(3)})
    monkeypatch.setenv(CHUNK_ROWS_ENV, "3")
    real_validate, real_insert = load.validate_frame, load.insert_frame
    real_frame = Anonymizer.frame
    seen: dict[str, set[str]] = {"read": set(), "tokenize": set(), "store": set()}

    def validate(table: str, df: pl.DataFrame, *window: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
        seen["read"].add(threading.current_thread().name)
        return real_validate(table, df, *window)

    def frame(self: Anonymizer, df: pl.DataFrame) -> pl.DataFrame:
        seen["tokenize"].add(threading.current_thread().name)
        return real_frame(self, df)

    def insert(con_: duckdb.DuckDBPyConnection, table: str, df: pl.DataFrame) -> None:
        seen["store"].add(threading.current_thread().name)
        real_insert(con_, table, df)

    monkeypatch.setattr(load, "validate_frame", validate)
    monkeypatch.setattr(Anonymizer, "frame", frame)
    monkeypatch.setattr(load, "insert_frame", insert)
    con = connect(tmp_path / "w" / "w.duckdb")
    ingest_pilot(con, load_pilot(d))
    names = [next(iter(v)) for v in seen.values()]
    assert all(len(v) == 1 for v in seen.values()) and len(set(names)) == 3, seen
    assert names[2] == threading.main_thread().name  # DuckDB is used from this thread only
    # b.parquet repeats a.parquet's first three ids: quarantined as duplicates
    assert con.execute("SELECT count(*) FROM requests").fetchone() == (6,)
    assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (3,)
    assert con.execute("SELECT count(*) FROM requests WHERE request_id NOT LIKE 'req-%'"
                       ).fetchone() == (0,)


def test_a_file_failing_while_tokenized_is_taken_back_alone(tmp_path, monkeypatch):
    d, db = _a_then_b(tmp_path, monkeypatch, a_rows=12)
    real, calls = Anonymizer.frame, []

    def second_chunk_breaks(self: Anonymizer, df: pl.DataFrame) -> pl.DataFrame:
        calls.append(df.height)
        if len(calls) == 2:  # a.parquet's second chunk: its first is stored already
            raise pl.exceptions.ComputeError("tokens went wrong")
        return real(self, df)

    monkeypatch.setattr(Anonymizer, "frame", second_chunk_breaks)
    con = connect(db)
    summary = ingest_pilot(con, load_pilot(d))
    assert [(f, r) for _, f, r in summary.failed_sources] == [("r/a.parquet", "tokens went wrong")]
    # a.parquet's later chunks were read but never tokenized; b.parquet's one chunk was
    assert calls == [2, 3, 3]
    _assert_only_b_landed(con, db)


def test_a_file_failing_while_stored_is_taken_back_though_read_ahead(tmp_path, monkeypatch):
    d, db = _a_then_b(tmp_path, monkeypatch, a_rows=12)
    real, calls = load.insert_frame, []

    def second_chunk_fails(con_: duckdb.DuckDBPyConnection, table: str, df: pl.DataFrame
                           ) -> None:
        calls.append(table)
        if calls.count("requests") == 2:  # a.parquet's second chunk; its third is read ahead
            raise OSError("disk full")
        real(con_, table, df)

    monkeypatch.setattr(load, "insert_frame", second_chunk_fails)
    con = connect(db)
    summary = ingest_pilot(con, load_pilot(d))
    assert [(f, r) for _, f, r in summary.failed_sources] == [("r/a.parquet", "disk full")]
    # a.parquet's later chunks, read ahead, were never stored; b.parquet landed whole
    assert calls == ["requests", "quarantine", "requests", "requests"]
    _assert_only_b_landed(con, db)


def test_a_bug_while_reading_ahead_surfaces_unchanged_and_rolls_back(tmp_path, monkeypatch):
    d = _pilot(tmp_path / "p", [{"kind": "canonical", "table": "requests", "path": "r/*.parquet"}],
               {"r/a.parquet": _requests(3), "r/b.parquet": _requests(3)})
    db = tmp_path / "w" / "w.duckdb"
    con = connect(db)
    ingest_pilot(con, load_pilot(d))
    before = _snapshot(con)
    _requests(5).write_parquet(d / "r" / "b.parquet")  # a completed run would change it
    real = load.validate_frame

    def b_breaks(table: str, df: pl.DataFrame, *window: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
        if df.height == 5:
            raise KeyError("a bug in the reader")  # no input error: the whole run fails
        return real(table, df, *window)

    monkeypatch.setattr(load, "validate_frame", b_breaks)
    with pytest.raises(KeyError) as raised:
        ingest_pilot(con, load_pilot(d))
    assert raised.value.args == ("a bug in the reader",)
    assert _snapshot(con) == before
    assert _leftover_spill(db) == []


# --- CSV --------------------------------------------------------------------------------------


def _tricky_csv(n: int) -> bytes:
    """Quoted fields with newlines and escaped quotes, CRLF and LF, blank lines, a ragged row,
    refused values spread over the file."""
    rows = [CSV_HEADER.rstrip("\n")]
    for i in range(n):
        note = f'"line one\nline ""{i}"" two"' if i % 4 == 1 else f"plain {i}"
        priority = "P9" if i % 7 == 3 else "P1"
        ts = "soon" if i % 11 == 5 else f"2026-03-02T10:00:{i % 60:02d}Z"
        row = f"q{i},0,pool-a,\"n,{i % 3}\",llm,{priority},{ts},dropped,{note}"
        if i == 9:
            row += ",extra"  # ragged: 10 fields
        rows.append(row)
        if i % 6 == 2:
            rows.append("")  # a blank line is no record but counts as a line
    text = "\n".join(rows) + "\n"
    return text.replace("plain 2\n", "plain 2\r\n", 1).encode()  # one CRLF line end


@pytest.mark.parametrize("chunk_rows", [1, 2, 7])
def test_csv_blocks_give_the_rows_and_lines_of_the_whole_file(tmp_path, monkeypatch, chunk_rows):
    d = _pilot(tmp_path / "p", [{"kind": "canonical", "table": "requests", "path": "r.csv"}],
               {"r.csv": _tricky_csv(40)})
    whole, h1 = _ingest(d, tmp_path / "a" / "w.duckdb", monkeypatch, chunk_rows=None)
    blocks, h2 = _ingest(d, tmp_path / "b" / "w.duckdb", monkeypatch, chunk_rows=chunk_rows)
    assert len(h1) == 1 and len(h2) > 3  # really read in blocks
    assert _snapshot(blocks) == _snapshot(whole)
    lines = [ln for (ln,) in whole.execute("SELECT DISTINCT line FROM quarantine ORDER BY 1"
                                           ).fetchall()]
    # q3 (P9) on line 7 after q1's two lines and a blank one; q9, ragged, on line 15
    assert lines[:3] == [7, 9, 15] and lines[-1] > 41
    assert whole.execute("SELECT rows_in - rows_stored - rows_quarantined FROM ingest_log"
                         ).fetchone() == (0,)


@pytest.mark.parametrize("chunk_rows", [1, 3])
def test_fixture_pilot_is_the_same_read_in_tiny_chunks(tmp_path, monkeypatch, chunk_rows):
    d = _make_pilot(tmp_path)  # CSV with a quoted newline and a blank line, JSONL, Parquet
    whole, _ = _ingest(d, tmp_path / "a" / "w.duckdb", monkeypatch, chunk_rows=None)
    small, heights = _ingest(d, tmp_path / "b" / "w.duckdb", monkeypatch, chunk_rows=chunk_rows)
    assert len(heights) > 3
    assert _snapshot(small) == _snapshot(whole)


def test_tabular_csv_in_blocks_is_the_same(tmp_path, monkeypatch):
    body = "".join(f"{1772445600 + i},gpu_util,{i % 101},node-{i % 2}\n" for i in range(30))
    body = body.replace(",7,", ",hot,")  # one refused value
    d = _pilot(tmp_path / "p", [{
        "kind": "tabular", "table": "samples", "path": "s.csv",
        "options": {"columns": {"ts": "t", "series": "s", "value": "v", "node": "host"},
                    "units": {"ts": "epoch_s", "value": "percent"}},
    }], {"s.csv": ("t,s,v,host\n" + body).encode()})
    whole, _ = _ingest(d, tmp_path / "a" / "w.duckdb", monkeypatch, chunk_rows=None)
    small, heights = _ingest(d, tmp_path / "b" / "w.duckdb", monkeypatch, chunk_rows=4)
    assert len(heights) > 4
    assert _snapshot(small) == _snapshot(whole)
    assert whole.execute("SELECT line FROM quarantine").fetchall() == [(9,)]


def test_csv_blocks_end_outside_quotes(tmp_path):
    assert record_end(b'a,"x\ny"\nb\n') == 8  # the first newline is inside quotes
    assert record_end(b'a,"x\ny"\nb\n', end=9) == 8
    assert record_end(b'a,"x\ny', end=6) == -1
    p = tmp_path / "q.csv"
    p.write_bytes(_tricky_csv(50))
    blocks = list(csv_blocks(p, 3))
    assert len(blocks) > 10
    header = CSV_HEADER.encode()
    assert all(b.data.startswith(header) and b.data.count(b'"') % 2 == 0 for b in blocks)
    # the records of the blocks, in order, are the file after its header (blank runs aside)
    joined = b"".join(b.data[len(header):] for b in blocks)
    assert joined.replace(b"\n\n", b"\n") == p.read_bytes()[len(header):].replace(b"\n\n", b"\n")


def test_a_long_line_file_stays_one_bounded_block(tmp_path):
    p = tmp_path / "long.csv"
    p.write_bytes(b"a,b\n" + b"x" * 3_000_000 + b",1\n")
    blocks = list(csv_blocks(p, 500_000))
    assert len(blocks) == 1 and blocks[0].line_shift == 0


# --- hive folders -----------------------------------------------------------------------------


@pytest.mark.parametrize("glob", ["requests/**/*.parquet", "requests/day=*/*.parquet"])
def test_hive_day_folders_load_without_a_day_column(tmp_path, monkeypatch, glob):
    files = {
        "requests/day=2026-03-02/part-000.parquet": _requests(5),
        "requests/day=2026-03-03/part-000.parquet": _requests(4).with_columns(
            pl.col("request_id") + "b"),
    }
    d = _pilot(tmp_path / "p", [{"kind": "canonical", "table": "requests", "path": glob}], files)
    monkeypatch.setenv(CHUNK_ROWS_ENV, "2")
    con = connect(tmp_path / "w" / "w.duckdb")
    summary = ingest_pilot(con, load_pilot(d))
    assert summary.failed_sources == []
    assert [(f.file, f.rows_stored, f.ignored_columns) for f in summary.files] == [
        ("requests/day=2026-03-02/part-000.parquet", 5, ()),
        ("requests/day=2026-03-03/part-000.parquet", 4, ()),
    ]
    assert con.execute("SELECT count(*) FROM requests").fetchone() == (9,)
    assert con.execute("SELECT count(*) FROM dropped_fields").fetchone() == (0,)
    assert "day" not in {r[0] for r in con.execute("DESCRIBE requests").fetchall()}


# --- memory ----------------------------------------------------------------------------------


def test_frames_handed_to_duckdb_are_released_inside_the_transaction(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    ensure_schema(con)
    n = 100_000
    con.execute("BEGIN TRANSACTION")
    before = pa.total_allocated_bytes()
    # Arrow-allocated columns that polars shares without copying: the pool tells if they live
    t = pa.table({"ts": pa.array([T0] * n, pa.timestamp("us")),
                  "value": pa.array([float(i) for i in range(n)])})
    df = pl.from_arrow(t).with_columns(pl.lit("p").alias("pilot"), pl.lit("s").alias("series"))
    del t
    assert pa.total_allocated_bytes() - before >= 16 * n
    insert_frame(con, "samples", df)
    del df
    gc.collect()
    assert pa.total_allocated_bytes() - before < 16 * n  # freed before COMMIT
    con.execute("COMMIT")
    assert con.execute("SELECT count(*), sum(value) FROM samples").fetchone() == (
        n, sum(float(i) for i in range(n)))


def test_chunk_rows_setting_is_checked(tmp_path, monkeypatch):
    d = _pilot(tmp_path / "p", [{"kind": "canonical", "table": "requests", "path": "r.parquet"}],
               {"r.parquet": _requests(2)})
    monkeypatch.setenv(CHUNK_ROWS_ENV, "0")
    with pytest.raises(ValueError, match=CHUNK_ROWS_ENV):
        ingest_pilot(connect(tmp_path / "w.duckdb"), load_pilot(d))
