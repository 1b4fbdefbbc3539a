"""What every adapter returns, and how a source fails."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

LINE = "__line"  # bookkeeping column: the row's line/record number in its file (1-based)
REJECT_SCHEMA = {"line": pl.Int64, "field": pl.String, "reason": pl.String, "value": pl.String}
MAX_VALUE_CHARS = 200  # quarantine keeps a short excerpt of an offending value, never a payload


class SourceError(Exception):
    """A source (or one of its files) cannot be read as a whole; it fails alone."""


@dataclass
class Parsed:
    """One file read by an adapter.

    `frame` holds the table's columns with their exact dtypes plus LINE; `rejects` holds the
    rows refused while parsing (one entry per field problem). `rows_in` counts input records.
    """

    table: str
    frame: pl.DataFrame
    rejects: pl.DataFrame
    rows_in: int
    ignored_columns: list[str] = field(default_factory=list)


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_SCHEMA)
