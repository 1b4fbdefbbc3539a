"""Moving frames into DuckDB inside the pilot's one long transaction, in bounded memory.

Two DuckDB behaviours shape this module (measured with DuckDB 1.5, issue #8):

- DuckDB keeps every Python object a query scanned (a registered DataFrame or Arrow table)
  alive until the transaction ends. Inside the pilot's transaction that held every chunk of
  the pilot: ~330 MB per 2 M request rows, ~2.6 GB at 10 M. `insert_frame` hands DuckDB a
  one-shot Arrow stream instead: the object kept alive is an exhausted reader, and the
  batches are released as DuckDB consumes them.
- A DuckDB temp table holds its rows in memory until commit (a dropped table stays until
  then too). `Spill` parks what the run needs again later (the request keys of dedupe.py)
  as files beside the warehouse instead, deleted at the end of the run.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

__all__ = ["Spill", "frame_source", "insert_frame"]


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, df: pl.DataFrame) -> None:
    """Bulk insert by column name through DuckDB's Arrow scan (no per-row Python)."""
    if df.height == 0:
        return
    with frame_source(con, df) as stage:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {stage}")


@contextlib.contextmanager
def frame_source(con: duckdb.DuckDBPyConnection, df: pl.DataFrame) -> Iterator[str]:
    """A name to read `df` from in one query, as a one-shot Arrow stream (see above); use
    one per query."""
    # Arrow's view types, as polars holds them: DuckDB scans them as they are (10 M
    # attempts: ~1.5 CPU s less than converting every string column to large_string)
    arrow = df.to_arrow(compat_level=pl.CompatLevel.newest())
    # the iterator owns the only reference to the batches: exhausted, it lets them go
    stream = pa.RecordBatchReader.from_batches(arrow.schema, iter(arrow.to_batches()))
    del arrow
    name = f"__stage_{uuid.uuid4().hex}"
    con.register(name, stream)
    try:
        yield name
    finally:
        con.unregister(name)


class Spill:
    """Frames per name, parked as Parquet files (`files`) until `discard`."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.dir: Path | None = None
        self.files: dict[str, list[str]] = {}
        self.made_root: Path | None = None  # the spill folder, when this spill created it

    def add(self, table: str, df: pl.DataFrame) -> None:
        if df.height == 0:
            return
        path = self.new_file(table, "parquet")
        df.write_parquet(path, compression="uncompressed", statistics=False)  # least CPU

    def new_file(self, table: str, ext: str) -> Path:
        """A fresh path in the spill folder, listed under `table` (deleted by `discard`)."""
        if self.dir is None:
            root = _spill_root(self.con)
            if root is not None and not root.exists():
                root.mkdir(parents=True)
                self.made_root = root
            self.dir = Path(tempfile.mkdtemp(prefix="ingest-", dir=root))
        files = self.files.setdefault(table, [])
        path = self.dir / f"{table}-{len(files):05d}.{ext}"
        files.append(str(path))
        return path

    def discard(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self.made_root is not None:
            with contextlib.suppress(OSError):  # only if empty: DuckDB may spill there too
                self.made_root.rmdir()
        self.dir, self.files, self.made_root = None, {}, None


def _spill_root(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The warehouse's spill folder (`<warehouse>.tmp/`, where DuckDB spills too); None (the
    system's temp folder) for an in-memory database, whose temp_directory is relative."""
    row = con.execute("SELECT current_setting('temp_directory')").fetchone()
    root = Path(row[0]) if row and row[0] else None
    return root if root is not None and root.is_absolute() else None
