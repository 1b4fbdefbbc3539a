"""Canonical Parquet read in chunks: polars' reader over whole row groups and Arrow batches
(a row group larger than a chunk) give the same frames, dtypes and line numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.ingest.base import LINE, SourceError
from pipelines.ingest.canonical import _spans, raw_chunks


def _table(n: int) -> pa.Table:
    i = list(range(n))
    return pa.table({
        "request_id": [None if k % 7 == 3 else f"r-{k}-é✓" for k in i],
        "attempt": pa.array([k % 3 for k in i], pa.int32()),
        "big": pa.array([k * 10**12 for k in i], pa.int64()),
        "small": pa.array([k % 100 for k in i], pa.uint8()),
        "value": [None if k % 5 == 0 else k / 3 for k in i],
        "ts_us": pa.array([datetime(2026, 1, 1, 0, 0, k % 60) for k in i], pa.timestamp("us")),
        "ts_ms_tz": pa.array([datetime(2026, 1, 1, 0, k % 60, tzinfo=UTC) for k in i],
                             pa.timestamp("ms", tz="UTC")),
        "day": pa.array([date(2026, 1, 1 + k % 28) for k in i], pa.date32()),
        "gpu_ids": [[f"g{k}", "g0"] if k % 4 else None for k in i],
        "pool": pa.array([f"pool-{k % 3}" for k in i]).dictionary_encode(),
        "ok": [k % 2 == 0 for k in i],
    })


def _read(path: Path, chunk_rows: int) -> list[pl.DataFrame]:
    return list(raw_chunks(path, chunk_rows))


@pytest.mark.parametrize("row_group", [2, 7, 50, 1000])
def test_both_readers_give_the_same_rows_types_and_lines(tmp_path, row_group):
    path = tmp_path / "part.parquet"
    pq.write_table(_table(1000), path, row_group_size=row_group)
    by_polars = _read(path, 3 * row_group)  # whole row groups fit a chunk: polars' reader
    by_arrow = _read(path, row_group - 1)  # a row group exceeds a chunk: Arrow batches
    assert all(c.height <= 3 * row_group for c in by_polars)
    assert all(c.height <= row_group - 1 for c in by_arrow)
    a, b = pl.concat(by_polars), pl.concat(by_arrow)
    assert a.schema == b.schema
    assert a.equals(b)
    assert a.get_column(LINE).to_list() == list(range(1, 1001))


def test_chunks_are_whole_row_groups_up_to_the_chunk_size(tmp_path):
    path = tmp_path / "part.parquet"
    pq.write_table(_table(1000), path, row_group_size=100)
    assert [c.height for c in _read(path, 250)] == [200, 200, 200, 200, 200]
    assert [c.height for c in _read(path, 1000)] == [1000]
    assert list(_spans([100, 0, 100, 250, 30], 250)) == [(200, 3), (250, 1), (30, 1)]
    assert list(_spans([], 10)) == []


def test_what_polars_cannot_read_arrow_reads_from_that_row_group_on(tmp_path, monkeypatch):
    path = tmp_path / "part.parquet"
    pq.write_table(_table(1000), path, row_group_size=100)
    whole = pl.concat(_read(path, 250))
    real, calls = pl.scan_parquet, []

    def second_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise pl.exceptions.ComputeError("unsupported")
        return real(*args, **kwargs)

    monkeypatch.setattr(pl, "scan_parquet", second_fails)
    chunks = _read(path, 250)
    assert len(calls) == 2
    assert chunks[0].height == 200 and all(c.height <= 250 for c in chunks[1:])  # Arrow's
    assert pl.concat(chunks).equals(whole)


def test_a_damaged_file_is_reported_with_its_row(tmp_path):
    path = tmp_path / "part.parquet"
    pq.write_table(_table(1000), path, row_group_size=100, compression="snappy")
    data = bytearray(path.read_bytes())
    meta = pq.ParquetFile(path).metadata
    col = meta.row_group(5).column(0)
    start = col.data_page_offset + 20
    data[start : start + 200] = b"\xff" * 200  # row group 6 (rows 501-600), first column
    path.write_bytes(bytes(data))
    got: list[pl.DataFrame] = []
    with pytest.raises(SourceError, match="unreadable Parquet file at row [45]01: "):
        got.extend(raw_chunks(path, 250))  # the row where the chunk holding the damage begins
    assert sum(c.height for c in got) in (400, 500)


def test_empty_file_gives_one_empty_chunk_with_its_columns(tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(_table(0), path)
    (chunk,) = _read(path, 100)
    assert chunk.height == 0 and "request_id" in chunk.columns and LINE in chunk.columns


def test_hive_folder_adds_no_column_and_no_glob(tmp_path):
    d = tmp_path / "hour=03"
    d.mkdir()
    path = d / "p[1]*.parquet"  # glob characters in the name: this file only
    pq.write_table(_table(20), path, row_group_size=5)
    (d / "p1x.parquet").write_bytes(b"not parquet")
    chunks = _read(path, 10)
    assert [c.height for c in chunks] == [10, 10]
    assert "hour" not in chunks[0].columns
