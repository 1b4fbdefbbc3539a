"""Duplicate request attempts: the first `(request_id, attempt)` of a pilot is stored, every
later one is quarantined ("duplicate (request_id, attempt)").

Set-based in DuckDB, per file as it is stored: a row is a duplicate when an earlier line of
the same file has its key (window), or when a file stored before it in this run (earlier in
the same source, or an earlier source) already put the key in `requests` (the pilot's rows
were deleted at the start of the run, so what is there came from this run). "First" is
therefore: source order, then file order, then line order. Keys compare on the tokenized
request_id (the same raw id gives the same token within a pilot).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import duckdb

from pipelines.ingest.base import LINE

DUPLICATE_REASON = "duplicate (request_id, attempt)"
# A source of the file's rows (with LINE): each call gives a fresh FROM clause for one query.
StageSource = Callable[[], AbstractContextManager[str]]

_RANKED = (
    f"SELECT *, row_number() OVER (PARTITION BY request_id, attempt ORDER BY {LINE}) AS __k "
    "FROM {src}"
)
# Keys already stored in this run, as a LEFT JOIN: a correlated EXISTS is planned as a delim
# join that hashes all of the pilot's stored requests again for every file (measured 1 M:
# ingest CPU 8.3-9.8 s -> 7.0-7.8 s). Stored keys are unique, so the join adds no rows.
_STORED_KEYS = ("LEFT JOIN (SELECT request_id, attempt, true AS __stored FROM requests "
                "WHERE pilot = $pilot) r USING (request_id, attempt)")


def store_unique_requests(
    con: duckdb.DuckDBPyConnection, stage: StageSource, where: dict[str, object]
) -> int:
    """Quarantine the file's duplicate attempts, then insert the others into `requests`.

    `where` holds the quarantine row's constants: pilot, source_index, source_kind,
    target_table, file. Returns the number of rows quarantined as duplicates."""
    with stage() as src:
        ranked = _RANKED.format(src=src)
        row = con.execute(
            "INSERT INTO quarantine SELECT $pilot, $source_index, $source_kind, $target_table, "
            f"$file, s.{LINE}, 'request_id', $reason, NULL FROM ({ranked}) s {_STORED_KEYS} "
            "WHERE s.__k > 1 OR r.__stored IS NOT NULL",
            {**where, "reason": DUPLICATE_REASON},
        ).fetchone()
    duplicates = int(row[0]) if row else 0
    with stage() as src:
        ranked = _RANKED.format(src=src)
        con.execute(
            f"INSERT INTO requests BY NAME SELECT s.* EXCLUDE ({LINE}, __k) FROM ({ranked}) s "
            f"{_STORED_KEYS} WHERE s.__k = 1 AND r.__stored IS NULL",
            {"pilot": where["pilot"]},
        )
    return duplicates
