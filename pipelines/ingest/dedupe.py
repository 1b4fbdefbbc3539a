"""Duplicate request attempts: the first `(request_id, attempt)` of a pilot is stored, every
later one is quarantined ("duplicate (request_id, attempt)").

"First" is source order, then file order, then line order; keys compare on the tokenized
request_id (the same raw id gives the same token within a pilot).

Checked once per pilot, after its files are stored, not once per file: a per-file check
against the rows stored before it reads every earlier key again for every file, which grows
with the square of the pilot's size (10 M attempts in 10 files: 45 M keys read, 100 M in 100
files: 4.9 G).
Every request file is inserted as read, in line order, and its keys `(request_id, attempt,
line)` are parked on disk (`RequestKeys`, ~30 bytes a row, deleted at the end of the run).
Then one aggregation over the pilot's keys finds the duplicates (usually none: nothing else
happens). When there are some, the n-th stored copy of a key (in insertion order: DuckDB's
rowid within the pilot's transaction) is the n-th parked occurrence (in file, then line
order): every copy after the first is deleted by rowid and quarantined with its file and
line.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from pipelines.ingest.base import LINE
from pipelines.ingest.spill import Spill, insert_frame

DUPLICATE_REASON = "duplicate (request_id, attempt)"
KEYS = "request-keys"  # parked key files are named after it
FILE_SEQ = "__file"  # which stored file a parked key came from (RequestKeys.files index)


class RequestKeys:
    """The keys of every request file stored in this run, parked as Parquet files."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.spill = Spill(con)
        # per file: (source_index, source_kind, target_table, file); the index is FILE_SEQ
        self.files: list[tuple[int, str, str | None, str]] = []

    def start(self, where: tuple[int, str, str | None, str]) -> int:
        """A new file; returns its FILE_SEQ."""
        self.files.append(where)
        return len(self.files) - 1

    def add(self, seq: int, rows: pl.DataFrame) -> None:
        """Park the keys of one chunk of file `seq` (rows in line order)."""
        self.spill.add(f"{KEYS}-{seq}", rows.select(
            "request_id", "attempt", LINE, pl.lit(seq, dtype=pl.Int32).alias(FILE_SEQ)))

    def drop(self, seq: int) -> None:
        """Forget the keys of file `seq` (its rows were taken back)."""
        for path in self.spill.files.pop(f"{KEYS}-{seq}", []):
            Path(path).unlink(missing_ok=True)

    def source(self) -> str | None:
        """A FROM clause reading every parked key (None when there is none)."""
        paths = [p for files in self.spill.files.values() for p in files]
        if not paths:
            return None
        return "read_parquet([" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "])"

    def discard(self) -> None:
        self.spill.discard()


def quarantine_duplicates(con: duckdb.DuckDBPyConnection, pilot: str, keys: RequestKeys
                          ) -> dict[int, int]:
    """Delete every stored copy of a pilot's request key but the first and quarantine it.

    Returns the number of duplicates per stored file (RequestKeys.files index)."""
    # hash first: a one-column aggregate; a hash shared by two keys only widens the candidates
    candidates = con.execute(
        "SELECT list(h) FROM (SELECT hash(request_id, attempt) AS h FROM requests "
        "WHERE pilot = $pilot GROUP BY h HAVING count(*) > 1)", {"pilot": pilot},
    ).fetchone()
    hashes = candidates[0] if candidates else None
    parked = keys.source()
    if not hashes or parked is None:
        return {}
    later = con.execute(
        f"SELECT {FILE_SEQ}, {LINE} FROM (SELECT *, row_number() OVER (PARTITION BY request_id, "
        f"attempt ORDER BY {FILE_SEQ}, {LINE}) AS n FROM {parked} "
        "WHERE hash(request_id, attempt) IN (SELECT unnest($h))) WHERE n > 1",
        {"h": hashes},
    ).pl()
    con.execute(
        "DELETE FROM requests WHERE rowid IN (SELECT rid FROM (SELECT rowid AS rid, "
        "row_number() OVER (PARTITION BY request_id, attempt ORDER BY rowid) AS n "
        "FROM requests WHERE pilot = $pilot AND hash(request_id, attempt) IN (SELECT unnest($h))) "
        "WHERE n > 1)",
        {"pilot": pilot, "h": hashes},
    )
    files = pl.DataFrame(
        [(i, *w) for i, w in enumerate(keys.files)], orient="row",
        schema={FILE_SEQ: pl.Int32, "source_index": pl.Int32, "source_kind": pl.String,
                "target_table": pl.String, "file": pl.String},
    )
    rows = later.join(files, on=FILE_SEQ, how="left").select(
        pl.lit(pilot).alias("pilot"), "source_index", "source_kind", "target_table", "file",
        pl.col(LINE).alias("line"), pl.lit("request_id").alias("field"),
        pl.lit(DUPLICATE_REASON).alias("reason"), pl.lit(None, dtype=pl.String).alias("value"),
    )
    insert_frame(con, "quarantine", rows)
    counts = later.group_by(FILE_SEQ).len()
    return dict(zip(counts.get_column(FILE_SEQ).to_list(), counts.get_column("len").to_list(),
                    strict=True))
