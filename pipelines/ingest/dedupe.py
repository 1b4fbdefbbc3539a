"""Duplicate request attempts: the first `(request_id, attempt)` of a pilot is stored, every
later one is quarantined ("duplicate (request_id, attempt)").

"First" is source order, then file order, then line order; keys compare on the tokenized
request_id (the same raw id gives the same token within a pilot).

Checked once per pilot, after its files are stored, not once per file: a per-file check
against the rows stored before it reads every earlier key again for every file, which grows
with the square of the pilot's size (10 M attempts in 10 files: 45 M keys read, 100 M in 100
files: 4.9 G).

A key is compared as integers, never as text: a request token is `req-` and 16 hex digits, so
the number those digits spell (`Anonymizer.column_values`, made while tokenizing) stands for
the token exactly. Per chunk of a request file, the tokenizer thread mixes each key
`(token number, attempt)` into one 64-bit number and sorts them (`chunk_keys`); the stored
file's chunks are parked on disk (`RequestKeys`: the sorted mixed numbers, 8 bytes a row, and
the rows `(token number, attempt, line)`, 20 bytes; deleted at the end of the run). Then the
pilot's mixed numbers are checked bucket by bucket (their top bits, so memory holds one
bucket whatever the pilot's size): merging sorted runs and comparing neighbours finds the
numbers seen twice. A shared mixed number only widens the candidates; usually there are none
and nothing else happens (10 M attempts: ~0.3 CPU s here, against ~1.7 s for one
aggregation over the stored rows' text keys, plus ~1 s writing those keys to Parquet).
When there are some, the candidates' parked rows give the exact duplicates: the n-th stored
copy of a key (in insertion order: DuckDB's rowid within the pilot's transaction) is its n-th
parked occurrence (in file, then line order), so every copy after the first is deleted by
rowid and quarantined with its file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from pipelines.anonymize import COLUMN_KINDS, token_of_value
from pipelines.ingest.base import LINE
from pipelines.ingest.spill import Spill, insert_frame

DUPLICATE_REASON = "duplicate (request_id, attempt)"
KEYS = "request-keys"  # parked key files are named after it
FILE_SEQ = "__file"  # which stored file a parked key came from (RequestKeys.files index)
ROW = np.dtype([("value", "<u8"), ("attempt", "<i4"), (LINE, "<i8")])  # a parked key's row
BUCKET_BITS = 4  # the check runs over 16 buckets of the mixed numbers' top bits
_MIX = np.uint64(0x9E3779B97F4A7C15)  # spreads the attempt over all 64 bits


@dataclass(frozen=True)
class ChunkKeys:
    """One chunk's request keys, ready to park."""

    mixed: np.ndarray  # uint64, sorted: each key mixed into one number (`_mixed`)
    rows: np.ndarray  # ROW per stored row, in line order

    def __len__(self) -> int:
        return len(self.rows)


def chunk_keys(values: np.ndarray, attempts: np.ndarray, lines: np.ndarray) -> ChunkKeys:
    """The keys of one chunk: its rows' token numbers, attempts and lines (in line order)."""
    rows = np.empty(len(values), dtype=ROW)
    rows["value"], rows["attempt"], rows[LINE] = values, attempts, lines
    return ChunkKeys(np.sort(_mixed(rows)), rows)


def _mixed(rows: np.ndarray) -> np.ndarray:
    # uint64 arithmetic wraps: equal keys, equal numbers (the converse only usually)
    return rows["value"] ^ (rows["attempt"].astype(np.uint64) * _MIX)


@dataclass(frozen=True)
class _Parked:
    mixed: Path  # the chunk's sorted mixed numbers, raw uint64
    rows: Path  # its ROWs, raw
    bounds: np.ndarray  # where each bucket starts in `mixed` (and the end)


class RequestKeys:
    """The keys of every request file stored in this run, parked as raw numpy files."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.spill = Spill(con)
        # per file: (source_index, source_kind, target_table, file); the index is FILE_SEQ
        self.files: list[tuple[int, str, str | None, str]] = []
        self.parked: dict[int, list[_Parked]] = {}

    def start(self, where: tuple[int, str, str | None, str]) -> int:
        """A new file; returns its FILE_SEQ."""
        self.files.append(where)
        return len(self.files) - 1

    def add(self, seq: int, keys: ChunkKeys) -> None:
        """Park the keys of one chunk of file `seq`."""
        if not len(keys):
            return
        mixed = self.spill.new_file(f"{KEYS}-{seq}", "u64")
        keys.mixed.tofile(mixed)
        rows = self.spill.new_file(f"{KEYS}-{seq}", "rows")
        keys.rows.tofile(rows)
        edges = np.arange(1 << BUCKET_BITS, dtype=np.uint64) << np.uint64(64 - BUCKET_BITS)
        bounds = np.append(np.searchsorted(keys.mixed, edges), len(keys.mixed))
        self.parked.setdefault(seq, []).append(_Parked(mixed, rows, bounds))

    def drop(self, seq: int) -> None:
        """Forget the keys of file `seq` (its rows were taken back)."""
        self.parked.pop(seq, None)
        for path in self.spill.files.pop(f"{KEYS}-{seq}", []):
            Path(path).unlink(missing_ok=True)

    def candidates(self) -> np.ndarray:
        """The mixed numbers parked more than once (sorted, distinct)."""
        chunks = [p for parked in self.parked.values() for p in parked]
        found = [np.empty(0, dtype=np.uint64)]
        for b in range(1 << BUCKET_BITS):
            runs = [
                np.fromfile(p.mixed, dtype=np.uint64, count=int(p.bounds[b + 1] - p.bounds[b]),
                            offset=int(p.bounds[b]) * 8)
                for p in chunks if p.bounds[b + 1] > p.bounds[b]
            ]
            if not runs:
                continue
            # sorted runs: the stable sort (timsort) merges them
            merged = np.sort(np.concatenate(runs), kind="stable")
            found.append(np.unique(merged[1:][merged[1:] == merged[:-1]]))
        return np.concatenate(found)

    def rows_of(self, mixed: np.ndarray) -> pl.DataFrame:
        """The parked rows whose mixed number is in `mixed`, with their FILE_SEQ."""
        parts = [pl.DataFrame(schema={"value": pl.UInt64, "attempt": pl.Int32, LINE: pl.Int64,
                                      FILE_SEQ: pl.Int32})]
        for seq, parked in self.parked.items():
            for p in parked:
                rows = np.fromfile(p.rows, dtype=ROW)
                hit = rows[np.isin(_mixed(rows), mixed)]
                parts.append(pl.DataFrame({
                    "value": hit["value"], "attempt": hit["attempt"], LINE: hit[LINE],
                }).with_columns(pl.lit(seq, dtype=pl.Int32).alias(FILE_SEQ)))
        return pl.concat(parts)

    def discard(self) -> None:
        self.parked = {}
        self.spill.discard()


def quarantine_duplicates(con: duckdb.DuckDBPyConnection, pilot: str, keys: RequestKeys
                          ) -> dict[int, int]:
    """Delete every stored copy of a pilot's request key but the first and quarantine it.

    Returns the number of duplicates per stored file (RequestKeys.files index)."""
    candidates = keys.candidates()
    if not len(candidates):
        return {}
    copies = keys.rows_of(candidates).sort(FILE_SEQ, LINE).with_columns(
        pl.int_range(pl.len()).over("value", "attempt").alias("n"))  # 0 for the first copy
    later = copies.filter(pl.col("n") > 0)
    if not later.height:  # only mixed numbers shared by different keys
        return {}
    kind = COLUMN_KINDS["request_id"]
    tokens = [token_of_value(kind, v) for v in later.get_column("value").unique().to_list()]
    con.execute(
        "DELETE FROM requests WHERE rowid IN (SELECT rid FROM (SELECT rowid AS rid, "
        "row_number() OVER (PARTITION BY request_id, attempt ORDER BY rowid) AS n "
        "FROM requests WHERE pilot = $pilot AND request_id IN (SELECT unnest($t))) "
        "WHERE n > 1)",
        {"pilot": pilot, "t": tokens},
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
