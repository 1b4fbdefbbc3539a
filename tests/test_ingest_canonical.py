"""Canonical ingestion into a real DuckDB file: parsing, quarantine, reconciliation,
idempotence, failure isolation and atomicity."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from pipelines.anonymize import Anonymizer, secret_from_env
from pipelines.config import PilotConfig, load_pilot
from pipelines.ingest import load
from pipelines.ingest.base import LINE, SourceError
from pipelines.ingest.canonical import read_canonical
from pipelines.ingest.load import PILOT_TABLES, ingest_pilot
from pipelines.warehouse import connect, ensure_schema
from schemas import validate_frame

FIXTURE = Path(__file__).parent / "fixtures" / "pilot_ok"
AUDIT_COLUMNS = {"loaded_at", "ingested_at"}  # wall-clock of the run, not data
RAW_IDS = ["req-1", "req-4", "req-8", "req-9", "node-1", "node-2", "gpu-0", "gpu-1", "1001", "1003"]


def tok(kind: str, value: str) -> str:
    """The stored (anonymized) form of a raw identifier under the test secret."""
    return Anonymizer(secret_from_env("STABILIS_SECRET")).token(kind, value)


def _samples_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [datetime(2026, 3, 2, 11, tzinfo=timezone(timedelta(hours=1)))] * 3,
            "series": ["gpu_util", "power_w", "e2e_latency_s_bucket"],
            "node": ["node-1"] * 3,
            "value": [0.5, 300.0, float("nan")],
            "le": [None, None, float("inf")],
        }
    )


def _make_pilot(tmp_path: Path, name: str = "fixture-a") -> Path:
    d = tmp_path / name
    shutil.copytree(FIXTURE, d)
    (d / "samples").mkdir(exist_ok=True)  # git keeps no empty folder
    _samples_frame().write_parquet(d / "samples" / "s1.parquet")
    if name != "fixture-a":
        doc = yaml.safe_load((d / "pilot.yaml").read_text())
        doc["pilot"] = name
        (d / "pilot.yaml").write_text(yaml.safe_dump(doc))
    return d


def _snapshot(con: duckdb.DuckDBPyConnection, audit: bool = False) -> dict[str, list[tuple]]:
    """Every staging table's rows, sorted, optionally without the run's wall-clock columns."""
    out = {}
    for t in PILOT_TABLES:
        cols = [r[0] for r in con.execute(f"DESCRIBE {t}").fetchall()]
        keep = [c for c in cols if audit or c not in AUDIT_COLUMNS]
        rows = con.execute(f"SELECT {', '.join(keep)} FROM {t}").fetchall()
        out[t] = sorted(rows, key=repr)
    return out


@pytest.fixture
def pilot(tmp_path: Path) -> PilotConfig:
    return load_pilot(_make_pilot(tmp_path))


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    c = connect(tmp_path / "wh" / "warehouse.duckdb")
    ensure_schema(c)
    yield c
    c.close()


def _quarantine(con: duckdb.DuckDBPyConnection, file: str) -> list[tuple]:
    return con.execute(
        "SELECT line, field, reason, value FROM quarantine WHERE file = ? ORDER BY line, field",
        [file],
    ).fetchall()


def test_csv_jsonl_parquet_land_with_quarantine(con, pilot) -> None:
    summary = ingest_pilot(con, pilot)
    assert summary.failed_sources == []

    ids = con.execute("SELECT request_id FROM requests ORDER BY 1").fetchall()
    assert ids == sorted((tok("req", r),) for r in ("req-1", "req-2", "req-7"))
    r1 = con.execute(
        "SELECT pilot, attempt, arrival_ts, first_token_ts, input_tokens FROM requests "
        "WHERE request_id = ?",
        [tok("req", "req-1")],
    ).fetchone()
    assert r1 == (
        "fixture-a",
        0,
        datetime(2026, 3, 2, 10),
        datetime(2026, 3, 2, 10, 0, 0, 50000),
        120,
    )
    # naive text is UTC; a space separator is accepted
    assert con.execute(
        "SELECT arrival_ts FROM requests WHERE request_id = ?", [tok("req", "req-7")]
    ).fetchone() == (datetime(2026, 3, 2, 10, 0, 6),)
    # CSV: header is line 1; req-6 spans lines 7-8 (quoted newline), line 9 is blank
    assert _quarantine(con, "requests/part-1.csv") == [
        (4, "arrival_ts", "expected an ISO-8601 timestamp", "yesterday"),
        (5, "priority", "expected one of P0, P1, P2, P3", "P9"),
        (6, "end_ts", "end_ts is before start_ts", "2026-03-02 10:00:04.100000"),
        (7, "input_tokens", "expected a 32-bit integer", "many"),
        (11, "parent_request_id", "attempt > 0 requires parent_request_id", None),
        (12, "parent_request_id", "parent_request_id equals request_id", None),  # an id: no value
    ]

    jobs = con.execute("SELECT job_id, priority, gpus, gpu_ids FROM jobs ORDER BY 1").fetchall()
    assert sorted(jobs, key=repr) == sorted(
        [
            (tok("job", "1001"), 10.0, 4, [tok("gpu", "gpu-0"), tok("gpu", "gpu-1")]),
            (tok("job", "1004"), None, 2, None),
        ],
        key=repr,
    )
    assert _quarantine(con, "jobs.jsonl") == [
        (2, "start_ts", "expected an ISO-8601 timestamp", "not a time"),
        (3, "gpus", "expected a value >= 0", "-2"),
        (3, "start_ts", "start_ts is before submit_ts", "2026-03-02 08:00:00.000000"),
    ]

    # Parquet: tz-aware input stored as naive UTC; row numbers start at 1
    assert con.execute("SELECT DISTINCT ts FROM samples").fetchall() == [
        (datetime(2026, 3, 2, 10),)
    ]
    assert _quarantine(con, "samples/s1.parquet") == [
        (3, "value", "expected a finite number", "NaN")
    ]

    assert con.execute("SELECT count(*) FROM phases").fetchone() == (3,)
    assert con.execute("SELECT value FROM thresholds WHERE name = 'burst_factor'").fetchone() == (
        3.0,
    )
    assert summary.files[0].ignored_columns == ("prompt",)


def test_quarantine_never_holds_a_raw_identifier(con, pilot) -> None:
    ingest_pilot(con, pilot)
    values = {v for (v,) in con.execute("SELECT value FROM quarantine").fetchall()}
    assert not values & set(RAW_IDS)
    reasons = " ".join(r for (r,) in con.execute("SELECT reason FROM quarantine").fetchall())
    assert not any(i in reasons for i in RAW_IDS)


def test_rows_reconcile_per_file(con, pilot) -> None:
    summary = ingest_pilot(con, pilot)
    log = con.execute(
        "SELECT file, target_table, rows_in, rows_stored, rows_quarantined, bytes, sha256 "
        "FROM ingest_log ORDER BY file"
    ).fetchall()
    assert [(f, i, s, q) for f, _, i, s, q, _, _ in log] == [
        ("jobs.jsonl", 4, 2, 2),
        ("requests/part-1.csv", 9, 3, 6),
        ("samples/s1.parquet", 3, 2, 1),
    ]
    for file, table, rows_in, stored, quarantined, size, sha in log:
        assert rows_in == stored + quarantined
        # one file per table here, so the table's row count is that file's stored rows
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone() == (stored,)
        assert con.execute(
            "SELECT count(DISTINCT line) FROM quarantine WHERE file = ?", [file]
        ).fetchone() == (quarantined,)
        assert size == (pilot.root / file).stat().st_size and len(sha) == 64
    assert summary.rows_stored == 7 and summary.rows_quarantined == 9


def test_reingest_is_idempotent(con, pilot) -> None:
    ingest_pilot(con, pilot)
    first = _snapshot(con)
    ingest_pilot(con, pilot)
    assert _snapshot(con) == first
    assert con.execute("SELECT count(*) FROM pilots").fetchone() == (1,)


def test_unreadable_source_fails_alone(con, tmp_path: Path) -> None:
    d = _make_pilot(tmp_path)
    (d / "samples" / "s2.parquet").write_bytes(b"PAR1\x00\x01garbage-not-parquet")
    (d / "requests" / "part-2.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (d / "requests" / "part-3.csv").write_text("request_id,pool\nr,p\n")
    doc = yaml.safe_load((d / "pilot.yaml").read_text())
    doc["sources"].append({"kind": "sacct", "path": "jobs.jsonl"})
    (d / "pilot.yaml").write_text(yaml.safe_dump(doc))

    summary = ingest_pilot(con, load_pilot(d))

    failed = {(i, f): r for i, f, r in summary.failed_sources}
    assert set(failed) == {
        (0, "requests/part-2.csv"),
        (0, "requests/part-3.csv"),
        (2, "samples/s2.parquet"),
        (3, "jobs.jsonl"),
    }
    assert failed[(2, "samples/s2.parquet")].startswith("unreadable Parquet file")
    assert failed[(0, "requests/part-3.csv")].startswith(
        "missing required column(s) attempt, model_class, priority, arrival_ts, status"
    )
    assert failed[(3, "jobs.jsonl")].startswith("no header line")
    # each failure is recorded once, with no line
    rows = con.execute(
        "SELECT source_index, file, reason FROM quarantine WHERE line IS NULL ORDER BY 1, 2"
    ).fetchall()
    assert [(i, f) for i, f, _ in rows] == sorted(failed)
    # the readable files still landed
    assert con.execute("SELECT count(*) FROM requests").fetchone() == (3,)
    assert con.execute("SELECT count(*) FROM jobs").fetchone() == (2,)
    assert con.execute("SELECT count(*) FROM samples").fetchone() == (2,)
    assert con.execute("SELECT count(*) FROM ingest_log").fetchone() == (3,)


def test_failure_midway_leaves_the_warehouse_as_it_was(con, tmp_path: Path, monkeypatch) -> None:
    d = _make_pilot(tmp_path)
    ingest_pilot(con, load_pilot(d))
    before = _snapshot(con, audit=True)
    # change the input so that a completed run would change the warehouse
    (d / "jobs.jsonl").write_text('{"job_id": "9", "kind": "batch", "state": "DONE"}\n')

    calls = []
    real = load.insert_frame

    def flaky(con_, table, df):
        calls.append(table)
        if table == "requests":
            raise RuntimeError("disk full")
        real(con_, table, df)

    monkeypatch.setattr(load, "insert_frame", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest_pilot(con, load_pilot(d))
    # the other sources and their quarantine rows have landed when the requests file (stored
    # last) fails
    assert calls == ["jobs", "samples", "quarantine", "requests"]
    assert _snapshot(con, audit=True) == before
    # the connection is usable afterwards, and a good run then lands
    monkeypatch.setattr(load, "insert_frame", real)
    ingest_pilot(con, load_pilot(d))
    assert con.execute("SELECT job_id FROM jobs").fetchall() == [(tok("job", "9"),)]


def test_two_pilots_do_not_touch_each_other(con, tmp_path: Path) -> None:
    a, b = _make_pilot(tmp_path, "fixture-a"), _make_pilot(tmp_path, "fixture-b")
    ingest_pilot(con, load_pilot(b))

    def b_rows() -> dict[str, list[tuple]]:
        return {
            t: sorted(
                con.execute(f"SELECT * FROM {t} WHERE pilot = 'fixture-b'").fetchall(), key=repr
            )
            for t in PILOT_TABLES
        }

    before = b_rows()
    assert before["requests"] and before["quarantine"]
    ingest_pilot(con, load_pilot(a))
    (a / "jobs.jsonl").write_text("")  # re-ingest a with different input
    ingest_pilot(con, load_pilot(a))
    assert b_rows() == before
    assert con.execute("SELECT count(*) FROM jobs WHERE pilot = 'fixture-a'").fetchone() == (0,)
    assert con.execute("SELECT count(DISTINCT pilot) FROM requests").fetchone() == (2,)


# --- the reader on its own --------------------------------------------------------------------


def test_jsonl_bad_lines_are_quarantined_with_their_line(tmp_path: Path) -> None:
    p = tmp_path / "s.jsonl"
    p.write_text(
        '{"ts": "2026-03-02T10:00:00Z", "series": "gpu_util", "value": 0.5}\n'
        "\n"
        '{"ts": "2026-03-02T10:00:01Z", "series": "gpu_util", "value": 0.6\n'
        "[1, 2]\n"
        '{"ts": "2026-03-02T10:00:02+02:00", "series": "power_w", "value": "hot"}\n'
        '{"ts": 1712345678, "series": "power_w", "value": {"w": 1}}\n'
    )
    parsed = read_canonical(p, "samples")
    assert parsed.rows_in == 5
    assert parsed.frame.get_column(LINE).to_list() == [1]
    assert parsed.rejects.rows() == [
        (3, None, "invalid JSON: Expecting ',' delimiter (column 66)", None),
        (4, None, "expected a JSON object, found list", None),
        (5, "value", "expected a number", "hot"),
        (6, "ts", "expected an ISO-8601 timestamp", "1712345678"),
        (6, "value", "expected a number", '{"w": 1}'),
    ]


def test_csv_ragged_rows_are_quarantined(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text(
        "ts,series,value\n"
        "2026-03-02T10:00:00Z,gpu_util,0.5\n"
        "2026-03-02T10:00:01Z,gpu_util,0.5,extra\n"
        "2026-03-02T10:00:02Z,gpu_util,1e-1\n"
    )
    parsed = read_canonical(p, "samples")
    assert parsed.rows_in == 3
    assert parsed.frame.get_column(LINE).to_list() == [2, 4]
    assert parsed.frame.get_column("value").to_list() == [0.5, 0.1]
    assert parsed.rejects.rows() == [(3, None, "expected 3 fields, found 4", None)]


def test_parquet_with_wrong_column_type_fails_the_file(tmp_path: Path) -> None:
    p = tmp_path / "s.parquet"
    pl.DataFrame({"ts": [True], "series": ["x"], "value": [1.0]}).write_parquet(p)
    with pytest.raises(SourceError, match="column 'ts' has type Boolean; expected"):
        read_canonical(p, "samples")
    p.write_bytes(p.read_bytes()[:20])  # truncated
    with pytest.raises(SourceError, match="unreadable Parquet file"):
        read_canonical(p, "samples")


def test_parquet_numeric_coercions(tmp_path: Path) -> None:
    p = tmp_path / "r.parquet"
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    pl.DataFrame(
        {
            "request_id": ["a", "b", "c"],
            "attempt": [0, 0, 3_000_000_000],  # Int64 in the file; the last overflows Int32
            "pool": ["p"] * 3,
            "model_class": ["llm"] * 3,
            "priority": ["P0"] * 3,
            "arrival_ts": [t0] * 3,
            "status": ["dropped"] * 3,
            "input_tokens": [1.0, 2.5, None],  # float: 2.5 is not an integer
        }
    ).write_parquet(p)
    parsed = read_canonical(p, "requests")
    assert parsed.frame.get_column("request_id").to_list() == ["a"]
    assert parsed.frame.schema["attempt"] == pl.Int32
    assert parsed.rejects.rows() == [
        (2, "input_tokens", "expected a 32-bit integer", "2.5"),
        (3, "attempt", "expected a 32-bit integer", "3000000000"),
    ]


def test_validate_frame_splits_good_and_bad_rows() -> None:
    t = datetime(2026, 3, 2)
    df = (
        pl.DataFrame(
            {
                "ts": [t, t, None],
                "series": ["a", "b", "c"],
                "value": [1.0, float("-inf"), 2.0],
            }
        )
        .with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in ("pool", "node", "gpu"))
        .with_columns(pl.lit(None, dtype=pl.Float64).alias("le"))
    )
    good, failures = validate_frame("samples", df)
    assert good.get_column("series").to_list() == ["a"]
    assert failures.rows() == [
        (1, "value", "expected a finite number", "-inf"),
        (2, "ts", "missing required value", None),
    ]


def test_request_sources_are_stored_last_the_summary_keeps_source_order(
    con, tmp_path: Path, monkeypatch
) -> None:
    d = _make_pilot(tmp_path)
    cfg = load_pilot(d)
    assert [s.table for s in cfg.sources] == ["requests", "jobs", "samples"]
    calls: list[str] = []
    real = load.insert_frame

    def spy(con_, table, df):
        calls.append(table)
        real(con_, table, df)

    monkeypatch.setattr(load, "insert_frame", spy)
    summary = ingest_pilot(con, cfg)
    # one pipeline for all sources: the others' inserts first, the requests (costly to
    # hash) last, so the others are stored while the first request chunks are hashed
    assert [t for t in calls if t != "quarantine"] == ["jobs", "samples", "requests"]
    # the summary lists the sources in their pilot.yaml order all the same
    assert [(f.source_index, f.table) for f in summary.files] == [
        (0, "requests"), (1, "jobs"), (2, "samples")
    ]


def test_enum_columns_hold_the_vocabularies_the_schemas_accept(tmp_path: Path) -> None:
    """`requests` (and `sla_targets.priority`) store fixed vocabularies as ENUMs (no string
    statistics or dictionary to build per row). The DDL repeats the lists of schemas/ and
    config.py: a value one accepts and the other cannot store would fail the insert."""
    from pipelines.config import PRIORITIES
    from schemas.common import MODEL_CLASSES, STATUSES

    con = connect(tmp_path / "w.duckdb")
    ensure_schema(con)
    members = {(tb, c): con.execute(f"SELECT enum_range(NULL::{t})").fetchone()[0]
               for tb, c, t in con.execute(
                   "SELECT table_name, column_name, data_type FROM duckdb_columns() "
                   "WHERE data_type LIKE 'ENUM%'").fetchall()}
    assert members == {("requests", "model_class"): list(MODEL_CLASSES),
                       ("requests", "priority"): list(PRIORITIES),
                       ("requests", "status"): list(STATUSES),
                       ("sla_targets", "priority"): list(PRIORITIES)}
