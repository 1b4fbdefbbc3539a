"""Bad records are caught at load, not stored (issue 13, item 5): each lands in `quarantine`
with file, line, field and reason, and rows in = stored + quarantined holds per file.

The pilot (tests/pilot_yaml.py) runs 2026-03-02 to 2026-03-04: with the one-day tolerance a
row may carry times from 2026-03-01 to 2026-03-05.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.config import load_pilot
from pipelines.ingest.load import CHUNK_ROWS_ENV, IngestSummary, ingest_pilot
from pipelines.warehouse import connect
from tests.pilot_yaml import write_pilot_yaml

REQ_HEADER = ("request_id,attempt,parent_request_id,pool,model_class,priority,arrival_ts,end_ts,"
              "status\n")
TRACE = "5b8efff798038103d269b633813fc60c"


def _req(rid: str, attempt: int = 0, pool: str = "pool-a", at: str = "2026-03-02T10:00:00Z",
         end: str = "2026-03-02T10:00:01Z") -> str:
    parent = "" if attempt == 0 else "r0"  # a retry names its first attempt
    return f"{rid},{attempt},{parent},{pool},llm,P0,{at},{end},ok\n"


def _pilot(tmp: Path, files: dict[str, str | bytes], sources: list[dict[str, Any]]) -> Path:
    d = tmp / "bad-records"
    d.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        (d / name).write_bytes(data)
    write_pilot_yaml(d, "bad-records", sources)
    return d


def _ingest(tmp: Path, d: Path) -> tuple[duckdb.DuckDBPyConnection, IngestSummary]:
    con = connect(tmp / "w.duckdb")
    return con, ingest_pilot(con, load_pilot(d))


def _quarantine(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute("SELECT file, line, field, reason, value FROM quarantine "
                       "ORDER BY file, line, field").fetchall()


def _reconciled(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    rows = con.execute("SELECT file, rows_in, rows_stored, rows_quarantined FROM ingest_log "
                       "ORDER BY source_index, file").fetchall()
    assert all(rows_in == s + q for _, rows_in, s, q in rows), rows
    return rows


# --- duplicate (request_id, attempt) ------------------------------------------------------


@pytest.mark.parametrize("chunk_rows", ["2", "500000"])
def test_duplicate_attempts_keep_the_first_across_chunks_files_and_sources(
        tmp_path, monkeypatch, chunk_rows):
    monkeypatch.setenv(CHUNK_ROWS_ENV, chunk_rows)
    a = REQ_HEADER + _req("r1") + _req("r2") + _req("r1", 1) + _req("r1") + _req("r3")
    b = REQ_HEADER + _req("r2") + _req("r4") + _req("r1", 1) + _req("r4")
    c = REQ_HEADER + _req("r3") + _req("r5")
    d = _pilot(tmp_path, {"r/a.csv": a, "r/b.csv": b, "c.csv": c}, [
        {"kind": "canonical", "table": "requests", "path": "r/*.csv"},
        {"kind": "canonical", "table": "requests", "path": "c.csv"}])
    con, summary = _ingest(tmp_path, d)
    reason = "duplicate (request_id, attempt)"
    # a.csv line 5 repeats line 2; b.csv repeats a.csv (lines 2, 4) and itself (line 5);
    # c.csv (a later source) repeats a.csv line 6
    assert _quarantine(con) == [
        ("c.csv", 2, "request_id", reason, None),
        ("r/a.csv", 5, "request_id", reason, None),
        ("r/b.csv", 2, "request_id", reason, None),
        ("r/b.csv", 4, "request_id", reason, None),
        ("r/b.csv", 5, "request_id", reason, None),
    ]
    assert con.execute("SELECT count(*), count(DISTINCT (request_id, attempt)) FROM requests"
                       ).fetchone() == (6, 6)
    assert _reconciled(con) == [("r/a.csv", 5, 4, 1), ("r/b.csv", 4, 1, 3), ("c.csv", 2, 1, 1)]
    assert [(f.file, f.rows_stored, f.rows_quarantined) for f in summary.files] == [
        ("r/a.csv", 4, 1), ("r/b.csv", 1, 3), ("c.csv", 1, 1)]


@pytest.mark.parametrize("chunk_rows", ["1", "500000"])
def test_the_first_copy_of_a_duplicate_is_the_one_stored(tmp_path, monkeypatch, chunk_rows):
    # the copies differ: the stored row must be the first one read (file, then line order)
    monkeypatch.setenv(CHUNK_ROWS_ENV, chunk_rows)
    a = REQ_HEADER + _req("r1", pool="p1") + _req("r2", pool="p1") + _req("r1", pool="p2")
    b = REQ_HEADER + _req("r2", pool="p3") + _req("r1", pool="p4") + _req("r3", pool="p1")
    d = _pilot(tmp_path, {"r/a.csv": a, "r/b.csv": b}, [
        {"kind": "canonical", "table": "requests", "path": "r/*.csv"}])
    con, _ = _ingest(tmp_path, d)
    assert con.execute("SELECT pool, count(*) FROM requests GROUP BY pool").fetchall() == [
        ("p1", 3)]
    assert [q[:2] for q in _quarantine(con)] == [("r/a.csv", 4), ("r/b.csv", 2), ("r/b.csv", 3)]
    assert _reconciled(con) == [("r/a.csv", 3, 2, 1), ("r/b.csv", 3, 1, 2)]


def test_duplicate_otlp_spans_are_quarantined(tmp_path):
    span = {"traceId": TRACE, "spanId": "eee19b7ec3c1b174",
            "startTimeUnixNano": "1772445600000000000", "endTimeUnixNano": "1772445601000000000",
            "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "vllm"}}]}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span, span]}]}]}  # a collector retry
    d = _pilot(tmp_path, {"t.json": json.dumps(doc)}, [
        {"kind": "otlp-json", "path": "t.json", "options": {"pool": "p", "priority": "P1"}}])
    con, _ = _ingest(tmp_path, d)
    assert _quarantine(con) == [("t.json", 2, "request_id", "duplicate (request_id, attempt)",
                                 None)]
    assert _reconciled(con) == [("t.json", 2, 1, 1)]


# --- text longer than 256 characters ------------------------------------------------------


def test_long_labels_are_quarantined_with_their_length_not_cut(tmp_path):
    long_pool, long_series = "p" * 300, "s" * 257
    samples = ("ts,series,pool,node,value\n"
               f"2026-03-02T10:00:00Z,gpu_util,{long_pool},n1,0.5\n"
               f"2026-03-02T10:00:00Z,{long_series},pool-a,n1,0.5\n"
               f"2026-03-02T10:00:00Z,gpu_util,pool-a,{'n' * 1000},0.5\n"
               f"2026-03-02T10:00:00Z,gpu_util,{'q' * 256},n1,0.5\n")
    d = _pilot(tmp_path, {"s.csv": samples, "r.csv": REQ_HEADER + _req("r1", pool="x" * 400)}, [
        {"kind": "canonical", "table": "samples", "path": "s.csv"},
        {"kind": "canonical", "table": "requests", "path": "r.csv"}])
    con, _ = _ingest(tmp_path, d)
    assert _quarantine(con) == [
        ("r.csv", 2, "pool", "text longer than 256 characters (400 characters)", None),
        ("s.csv", 2, "pool", "text longer than 256 characters (300 characters)", None),
        ("s.csv", 3, "series", "text longer than 256 characters (257 characters)", None),
        ("s.csv", 4, "node", "text longer than 256 characters (1000 characters)", None),
    ]
    assert con.execute("SELECT pool FROM samples").fetchall() == [("q" * 256,)]  # at the limit
    _reconciled(con)


# --- times outside the pilot's phases ± tolerance -----------------------------------------


def test_timestamps_outside_the_phases_are_quarantined_in_every_table(tmp_path):
    samples = ("ts,series,value\n"
               "2026-03-02T10:00:00Z,gpu_util,0.5\n"  # in a phase
               "2026-03-01T01:00:00Z,gpu_util,0.5\n"  # within the day before
               "1970-01-01T00:00:00Z,gpu_util,0.5\n"  # an epoch of 0
               "2100-01-01T00:00:00Z,gpu_util,0.5\n"  # far future
               "2026-03-05T00:00:01Z,gpu_util,0.5\n")  # one second past the tolerance
    jobs = "".join(json.dumps(j) + "\n" for j in [
        {"job_id": "1", "kind": "batch", "state": "COMPLETED", "submit_ts": "2026-03-02T01:00:00Z",
         "start_ts": "2026-03-02T01:00:00Z", "end_ts": "2026-03-02T02:00:00Z"},
        {"job_id": "2", "kind": "batch", "state": "COMPLETED", "submit_ts": "2020-01-01T00:00:00Z",
         "start_ts": "2026-03-02T01:00:00Z", "end_ts": "2026-03-02T02:00:00Z"},
        {"job_id": "3", "kind": "batch", "state": "RUNNING", "submit_ts": "2026-03-02T01:00:00Z",
         "start_ts": "2026-03-02T01:00:00Z", "end_ts": "2099-03-02T02:00:00Z"},
        # a serving replica started a month before the pilot and still running: kept
        {"job_id": "4", "kind": "serving", "state": "RUNNING", "submit_ts": "2026-02-01T00:00:00Z",
         "start_ts": "2026-02-01T00:00:00Z", "end_ts": "2026-04-01T00:00:00Z"}])
    requests = REQ_HEADER + _req("r1") + _req("r2", at="2026-02-27T10:00:00Z",
                                              end="2026-02-27T10:00:01Z")
    d = _pilot(tmp_path, {"s.csv": samples, "j.jsonl": jobs, "r.csv": requests}, [
        {"kind": "canonical", "table": "samples", "path": "s.csv"},
        {"kind": "canonical", "table": "jobs", "path": "j.jsonl"},
        {"kind": "canonical", "table": "requests", "path": "r.csv"}])
    con, _ = _ingest(tmp_path, d)
    why = ("timestamp outside the pilot's phases ± tolerance (expected 2026-03-01T00:00:00Z "
           "to 2026-03-05T00:00:00Z)")
    job_start = ("timestamp outside the pilot's phases ± tolerance (expected "
                 "2025-02-28T00:00:00Z to 2026-03-05T00:00:00Z)")
    job_end = ("timestamp outside the pilot's phases ± tolerance (expected "
               "2026-03-01T00:00:00Z to 2027-03-06T00:00:00Z)")
    assert _quarantine(con) == [
        ("j.jsonl", 2, "submit_ts", job_start, "2020-01-01T00:00:00Z"),
        ("j.jsonl", 3, "end_ts", job_end, "2099-03-02T02:00:00Z"),
        ("r.csv", 3, "arrival_ts", why, "2026-02-27T10:00:00Z"),
        ("s.csv", 4, "ts", why, "1970-01-01T00:00:00Z"),
        ("s.csv", 5, "ts", why, "2100-01-01T00:00:00Z"),
        ("s.csv", 6, "ts", why, "2026-03-05T00:00:01Z"),
    ]
    assert _reconciled(con) == [("s.csv", 5, 2, 3), ("j.jsonl", 4, 2, 2), ("r.csv", 2, 1, 1)]


def test_arrival_trace_outside_the_phases_is_quarantined(tmp_path):
    trace = ("TIMESTAMP,ContextTokens,GeneratedTokens\n2026-03-02 10:00:00.000,1,2\n"
             "2023-11-16 18:15:46.680,1,2\n")
    d = _pilot(tmp_path, {"a.csv": trace}, [{"kind": "arrival-trace", "path": "a.csv"}])
    con, _ = _ingest(tmp_path, d)
    assert [(f, ln, fld) for f, ln, fld, *_ in _quarantine(con)] == [("a.csv", 3, "ts")]
    assert _reconciled(con) == [("a.csv", 2, 1, 1)]


# --- Prometheus: open histograms, duplicate # TYPE, API errors ------------------------------


PROM = ("# TYPE vllm:e2e_request_latency_seconds histogram\n"
        'vllm:e2e_request_latency_seconds_bucket{le="0.5"} 3 1772445600000\n'
        'vllm:e2e_request_latency_seconds_bucket{le="+Inf"} 4 1772445600000\n'
        "vllm:e2e_request_latency_seconds_count 4 1772445600000\n"
        "# TYPE vllm:e2e_request_latency_seconds histogram\n"
        'vllm:e2e_request_latency_seconds_bucket{le="0.5"} 5 1772445660000\n'
        'vllm:e2e_request_latency_seconds_bucket{le="1"} 6 1772445660000\n'
        "vllm:e2e_request_latency_seconds_count 6 1772445660000\n")


def test_prometheus_open_histogram_quarantined_and_duplicate_type_is_a_warning(tmp_path):
    d = _pilot(tmp_path, {"a.prom": PROM, "b.prom": PROM}, [
        {"kind": "prometheus-text", "path": "*.prom"}])
    con, summary = _ingest(tmp_path, d)
    why = "histogram without +Inf bucket"
    assert _quarantine(con) == [("a.prom", 6, "le", why, "0.5"), ("a.prom", 7, "le", why, "1.0"),
                                ("b.prom", 6, "le", why, "0.5"), ("b.prom", 7, "le", why, "1.0")]
    assert _reconciled(con) == [("a.prom", 6, 4, 2), ("b.prom", 6, 4, 2)]
    warning = ("1 duplicate # TYPE line(s) for a family already declared in this file: "
               "'vllm:e2e_request_latency_seconds' at line 5 (first at line 1)")
    # a warning, once for the source: the second file's identical one is not repeated
    assert con.execute("SELECT file, warnings FROM ingest_log ORDER BY file").fetchall() == [
        ("a.prom", [warning]), ("b.prom", [])]
    assert summary.warnings == [(0, "a.prom", warning)]
    assert summary.failed_sources == []


def test_prometheus_json_error_response_fails_the_source_with_one_line(tmp_path):
    body = {"status": "error", "errorType": "bad_data",
            "error": "invalid parameter \"query\": 1:5: parse error:\nunexpected"}
    d = _pilot(tmp_path, {"e.json": json.dumps(body), "ok.json": json.dumps(
        {"status": "success", "warnings": ["results truncated"], "data": {
            "resultType": "vector", "result": [{"metric": {"__name__": "up"},
                                                "value": [1772445600, "1"]}]}})}, [
        {"kind": "prometheus-json", "path": "e.json"},
        {"kind": "prometheus-json", "path": "ok.json"}])
    con, summary = _ingest(tmp_path, d)
    assert summary.failed_sources == [(0, "e.json", (
        "Prometheus API response status 'error' (errorType 'bad_data'): invalid parameter "
        "\"query\": 1:5: parse error: unexpected"))]
    assert con.execute("SELECT file, warnings FROM ingest_log").fetchall() == [
        ("ok.json", ["Prometheus API warning: results truncated"])]


def test_otlp_missing_pool_and_priority_are_said_once_per_source(tmp_path):
    span = {"traceId": TRACE, "spanId": "eee19b7ec3c1b174",
            "startTimeUnixNano": "1772445600000000000", "endTimeUnixNano": "1772445601000000000",
            "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "vllm"}}]}
    doc = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
    d = _pilot(tmp_path, {"t/a.json": doc, "t/b.json": doc.replace("eee1", "fff1")},
               [{"kind": "otlp-json", "path": "t/*.json"}])
    con, summary = _ingest(tmp_path, d)
    notes = con.execute("SELECT file, warnings FROM ingest_log ORDER BY file").fetchall()
    assert [len(w) for _, w in notes] == [2, 0]
    assert all("set options." in w for w in notes[0][1])
    # the rows as before: quarantined for the missing values, with their fields
    assert {(f, fld) for f, _, fld, *_ in _quarantine(con)} == {
        ("t/a.json", "pool"), ("t/a.json", "priority"), ("t/b.json", "pool"),
        ("t/b.json", "priority")}
    assert len(summary.warnings) == 2


def test_long_text_counts_characters_not_bytes():
    # multi-byte characters: a value at the limit in characters (twice as many bytes) passes,
    # one character more fails, in a text column and in a list-of-text column
    import polars as pl

    from schemas.validate import MAX_TEXT_CHARS, _long_texts

    at, over = "é" * MAX_TEXT_CHARS, "é" * (MAX_TEXT_CHARS + 1)
    jobs = pl.DataFrame({"job_id": ["a", at, over, None],
                         "gpu_ids": [[at], ["x", over], None, []]})
    got = _long_texts("jobs", jobs).sort("row", "field")
    assert got.select("row", "field").rows() == [(1, "gpu_ids"), (2, "job_id")]
    assert got.get_column("reason").to_list() == [
        f"text longer than {MAX_TEXT_CHARS} characters ({MAX_TEXT_CHARS + 1} characters)"] * 2
