"""The pilot's duplicate check compares request keys as integers (dedupe.py): a token's number
stands for the token exactly, keys that only share a mixed number are not duplicates, and
duplicates are found in every bucket of the mixed numbers and across chunks and files."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl

from pipelines.anonymize import Anonymizer, token_of_value
from pipelines.ingest.base import LINE
from pipelines.ingest.dedupe import (
    _MIX,
    BUCKET_BITS,
    DUPLICATE_REASON,
    RequestKeys,
    chunk_keys,
    quarantine_duplicates,
)
from pipelines.ingest.spill import insert_frame
from pipelines.warehouse import ensure_schema


def test_token_numbers_spell_the_tokens():
    a = Anonymizer(b"k")
    s = pl.Series(["r1", None, "r2", "r1", ""])
    tokens, values = a.column_values("req", s)
    assert tokens.to_list() == a.tokens("req", s.to_list())
    assert [token_of_value("req", int(v)) for v in values] == tokens.drop_nulls().to_list()
    assert values[0] == values[2] != values[1]
    frame, values = a.frame_values(pl.DataFrame({"request_id": ["r1", "r2"],
                                                  "parent_request_id": ["r2", None]}),
                                   "request_id")
    assert frame.equals(a.frame(pl.DataFrame({"request_id": ["r1", "r2"],
                                              "parent_request_id": ["r2", None]})))
    assert [token_of_value("req", int(v)) for v in values] == frame["request_id"].to_list()


def _store(con: duckdb.DuckDBPyConnection, keys: RequestKeys, name: str,
           chunks: list[list[tuple[int, int]]]) -> int:
    """Store one file's chunks of (token number, attempt) rows, lines from 2, as ingest does:
    rows appended to requests and their keys parked."""
    seq = keys.start((0, "canonical", "requests", name))
    line = 2
    for chunk in chunks:
        values = np.array([v for v, _ in chunk], dtype=np.uint64)
        attempts = np.array([a for _, a in chunk], dtype=np.int32)
        lines = np.arange(line, line + len(chunk), dtype=np.int64)
        line += len(chunk)
        keys.add(seq, chunk_keys(values, attempts, lines))
        insert_frame(con, "requests", pl.DataFrame({
            "pilot": "p", "request_id": [token_of_value("req", v) for v, _ in chunk],
            "attempt": attempts, "pool": "a", "model_class": "llm", "priority": "P1",
            "arrival_ts": pl.Series([0] * len(chunk)).cast(pl.Datetime("us")),
            "status": "ok", "parent_request_id": [f"line {n}" for n in lines.tolist()],
        }, strict=False))
    return seq


def test_shared_mixed_numbers_are_not_duplicates_and_every_bucket_is_checked():
    con = duckdb.connect()
    ensure_schema(con)
    keys = RequestKeys(con)
    top = 64 - BUCKET_BITS
    low, high = 5, (15 << top) | 7  # the first and the last bucket
    # a key whose mixed number equals (low, 0)'s: same number, other key
    twin = low ^ int(_MIX)  # attempt 1 mixes in _MIX once
    try:
        a = _store(con, keys, "a.csv", [[(low, 0), (high, 0), (twin, 1)], [(high, 0), (9, 0)]])
        b = _store(con, keys, "b.csv", [[(twin, 1), (low, 0)], [(high, 0), (low, 1)]])
        assert len(keys.candidates()) == 2  # low's number (shared with twin's) and high's
        found = quarantine_duplicates(con, "p", keys)
    finally:
        keys.discard()
    assert found == {a: 1, b: 3}
    # the first copy stays (the one with the earliest line of the first file)
    assert con.execute("SELECT request_id, attempt, parent_request_id FROM requests "
                       "ORDER BY parent_request_id, request_id").fetchall() == sorted([
        (token_of_value("req", low), 0, "line 2"), (token_of_value("req", high), 0, "line 3"),
        (token_of_value("req", twin), 1, "line 4"), (token_of_value("req", 9), 0, "line 6"),
        (token_of_value("req", low), 1, "line 5")], key=lambda r: (r[2], r[0]))
    assert con.execute("SELECT file, line, field, reason FROM quarantine ORDER BY file, line"
                       ).fetchall() == [
        ("a.csv", 5, "request_id", DUPLICATE_REASON),
        ("b.csv", 2, "request_id", DUPLICATE_REASON),
        ("b.csv", 3, "request_id", DUPLICATE_REASON),
        ("b.csv", 4, "request_id", DUPLICATE_REASON),
    ]


def test_a_dropped_file_takes_its_keys_out_of_the_check():
    con = duckdb.connect()
    ensure_schema(con)
    keys = RequestKeys(con)
    try:
        _store(con, keys, "a.csv", [[(1, 0), (2, 0)]])
        b = _store(con, keys, "b.csv", [[(1, 0)]])
        keys.drop(b)
        assert len(keys.candidates()) == 0
        assert quarantine_duplicates(con, "p", keys) == {}
        assert keys.rows_of(np.array([1], dtype=np.uint64)).get_column(LINE).to_list() == [2]
    finally:
        keys.discard()
