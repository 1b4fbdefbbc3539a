"""Data-quality gates: the Pandera schema gate, the Great Expectations suites with their
`quality_results`, and the raw-identifier scan, on a real DuckDB file."""

from __future__ import annotations

import pytest

from pipelines.anonymize import Anonymizer, secret_from_env
from pipelines.config import load_pilot
from pipelines.ingest.load import ingest_pilot
from pipelines.quality.expectations import run_suite, store_results
from pipelines.quality.leaks import scan_for_raw_ids
from pipelines.quality.schema_gate import schema_gate
from pipelines.warehouse import connect
from tests.adapter_helpers import FORMATS
from tests.test_hostile_inputs import make_pilot


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gates")
    d = make_pilot(tmp, [
        ("otlp-json", None, "spans.json", (FORMATS / "genai_spans.json").read_bytes(), {}),
        ("sacct", None, "sacct.txt", (FORMATS / "sacct_header.txt").read_bytes(), {}),
        ("prometheus-text", None, "m.prom", (FORMATS / "dcgm_vllm.prom").read_bytes(),
         {"scraped_at": "2026-03-02T10:00:00Z"}),
    ])
    con = connect(tmp / "w.duckdb")
    cfg = load_pilot(d)
    ingest_pilot(con, cfg)
    yield con, cfg.pilot
    con.close()


@pytest.mark.parametrize("table", ["requests", "jobs", "samples"])
def test_schema_gate_passes_on_ingested_rows(warehouse, table):
    con, pilot = warehouse
    passed, meta = schema_gate(con, table, pilot)
    assert passed and meta["rows"] > 0 and meta["failures"] == 0


def test_schema_gate_catches_rows_that_bypassed_ingestion(warehouse):
    con, pilot = warehouse
    con.execute("BEGIN")
    con.execute("UPDATE samples SET value = 'NaN'::DOUBLE WHERE pilot = ? AND series = "
                "'gpu_util'", [pilot])
    passed, meta = schema_gate(con, "samples", pilot)
    con.execute("ROLLBACK")
    assert not passed and meta["top_failures"][0].startswith("value: expected a finite number")


def test_quality_suites_store_results(warehouse):
    con, pilot = warehouse
    for table in ("requests", "jobs", "samples"):
        results = run_suite(con, table, pilot)
        store_results(con, pilot, table, results)
        assert results and all(r.check and r.expected for r in results)
    rows = con.execute('SELECT table_name, "check", passed, observed FROM quality_results '
                       "WHERE pilot = ?", [pilot]).fetchall()
    by = {(t, c): (p, o) for t, c, p, o in rows}
    assert by[("requests", "expect_column_values_to_be_between(duplicate_request_ids)")][0]
    assert by[("samples", "expect_column_values_to_be_between(fractions_outside_0_1)")][0]
    assert by[("jobs", "expect_column_values_to_be_between(duplicate_job_ids)")][0]
    # re-running replaces, never appends
    store_results(con, pilot, "jobs", run_suite(con, "jobs", pilot))
    n = con.execute("SELECT count(*) FROM quality_results WHERE table_name = 'jobs'").fetchone()
    assert n == (sum(1 for t, _ in by if t == "jobs"),)


def test_quality_suite_flags_out_of_range_utilisation(warehouse):
    con, pilot = warehouse
    con.execute("BEGIN")
    con.execute("UPDATE samples SET value = 87 WHERE pilot = ? AND series = 'gpu_util'", [pilot])
    results = {r.check: r for r in run_suite(con, "samples", pilot)}
    con.execute("ROLLBACK")
    bad = results["expect_column_values_to_be_between(fractions_outside_0_1)"]
    assert not bad.passed


def test_no_raw_identifier_anywhere(warehouse):
    con, pilot = warehouse
    anon = Anonymizer(secret_from_env("STABILIS_SECRET"))
    report = scan_for_raw_ids(con, pilot, anon)
    assert report.passed and report.tokens_seen > 0 and report.tables_scanned >= 10
    for raw in ("gpu-node-001", "GPU-aaaa-0001", "1001", "gpu-node-007"):
        hits = con.execute("SELECT count(*) FROM requests WHERE node = ? OR gpu = ?",
                           [raw, raw]).fetchone()
        assert hits == (0,)
