"""What every adapter returns, and how a source fails."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from pipelines.config import Source

LINE = "__line"  # bookkeeping column: the row's line/record number in its file (1-based)
REJECT_SCHEMA = {"line": pl.Int64, "field": pl.String, "reason": pl.String, "value": pl.String}
MAX_VALUE_CHARS = 200  # quarantine keeps a short excerpt of an offending value, never a payload
DEFAULT_CHUNK_ROWS = 500_000  # rows per Parsed chunk: bounds an adapter's memory on big files
# A timestamp further than this before the first phase start or after the last phase end is
# clock skew or junk (1970, 2100), not telemetry of the pilot: quarantined at load.
TIME_TOLERANCE = timedelta(days=1)
MAX_NOTE_CHARS = 300  # one ingest_log warning, cut to this length


class SourceError(Exception):
    """A source (or one of its files) cannot be read as a whole; it fails alone."""


@dataclass
class Parsed:
    """One file (or one chunk of a big file) read by an adapter.

    `frame` holds the table's columns with their exact dtypes plus LINE; `rejects` holds the
    rows refused while parsing (one entry per field problem). `rows_in` counts input records
    of this chunk (a record may give several rows, e.g. one nvidia-smi line = many series).
    `dropped` counts payload-like/unmapped fields removed at the adapter, by field name.
    `notes` are warnings about the file as a whole (not about a row), kept in ingest_log.
    """

    table: str
    frame: pl.DataFrame
    rejects: pl.DataFrame
    rows_in: int
    ignored_columns: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AdapterContext:
    """What an adapter may need from the pilot beyond its own source entry."""

    pilot: str = "adhoc"
    timezone: str = "UTC"  # naive source times (sacct, nvidia-smi) are read in this zone
    anchor: datetime | None = None  # start of the first phase: anchor of relative traces
    chunk_rows: int = DEFAULT_CHUNK_ROWS


# An adapter reads one file: one Parsed, or an iterator of chunks for files of any size.
Adapter = Callable[[Path, "Source", AdapterContext], "Parsed | Iterable[Parsed]"]


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_SCHEMA)


def rejects_frame(rows: list[tuple[int, str | None, str, str | None]]) -> pl.DataFrame:
    """Rejects from (line, field, reason, value) tuples; values are cut to a short excerpt."""
    return pl.DataFrame(
        [(ln, f, r, None if v is None else str(v)[:MAX_VALUE_CHARS]) for ln, f, r, v in rows],
        schema=REJECT_SCHEMA,
        orient="row",
    )


def add_counts(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v
