"""Appendix D's identifier check: identifier_audit (sql/metrics/identifier_audit.sql) checks
every stored identifier value for the keyed-token form, and the report reads that table; on
real DuckDB files."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.anonymize import TOKEN_RE
from pipelines.sql_models import BY_NAME, build_model
from pipelines.warehouse import connect, ensure_schema
from reports.model import _Warehouse
from reports.sections import identifier_check
from reports.sections.observer import observer_only


def _warehouse(tmp_path: Path, request_ids: list[str | None], audit: bool = True) -> _Warehouse:
    con = connect(tmp_path / "w.duckdb")
    ensure_schema(con)
    row = ("INSERT INTO requests (pilot, request_id, attempt, pool, model_class, priority, "
           "arrival_ts, status, node) VALUES (?, ?, 0, 'a', 'llm', 'P0', TIMESTAMP "
           "'2026-01-01', 'ok', ?)")
    con.executemany(row, [["p", r, "node-00000000000000aa"] for r in request_ids])
    con.execute(row, ["other", "alice@example.com", "n1"])
    con.execute("INSERT INTO jobs (pilot, job_id, kind, state, node) VALUES "
                "('p', 'job-00000000000000a1', 'batch', 'COMPLETED', 'slurm-node-7'), "
                "('p', 'job-00000000000000a2', 'batch', 'COMPLETED', 'slurm-node-7')")
    if audit:
        build_model(con, "identifier_audit", "p")
    return _Warehouse(con, "p")


def test_every_value_is_checked_and_a_raw_one_is_counted(tmp_path: Path) -> None:
    ids = [f"req-{i:016x}" for i in range(500)] + ["req-00000000000000ff", "alice-laptop",
                                                   "req-00000000000000FF"]
    audit = identifier_check(_warehouse(tmp_path, ids))
    assert audit is not None
    table, total, tokens = audit
    # request_id 503 + node 503 + job ids 2 + job nodes 2; the other pilot's raw ones unread
    assert (total, tokens) == (503 + 503 + 2 + 2, 501 + 503 + 2 + 0)
    rows = {r[0]: r for r in table.rows}
    assert rows["requests.request_id"][1:4] == ["503", "501", "99.6 %"]
    assert rows["requests.request_id"][4] == "—"  # not counted distinct
    assert rows["requests.node"][4] == "1"  # few values: an exact count
    assert rows["jobs.node"][1:5] == ["2", "0", "0.0 %", "1"]
    assert "requests.gpu" not in rows  # no values stored (all NULL): no row


def test_the_audit_uses_the_anonymizers_token_form() -> None:
    sql = BY_NAME["identifier_audit"].sql()
    patterns = set(re.findall(r"'(\^\(\?:[^']+)'", sql))
    assert patterns == {TOKEN_RE.pattern}


def test_without_the_audit_the_report_claims_nothing(tmp_path: Path) -> None:
    w = _warehouse(tmp_path, ["req-0123456789abcdef"], audit=False)
    assert identifier_check(w) is None
    parts, [statement] = observer_only(w, {})
    assert "are not checked" in statement.paragraphs[0]
    assert any("Not checked" in p for part in parts for p in part.paragraphs)


def test_all_tokens_is_stated_as_tokenized(tmp_path: Path) -> None:
    w = _warehouse(tmp_path, ["req-0123456789abcdef"] * 3)
    con = w.con
    con.execute("UPDATE jobs SET node = 'node-00000000000000b7'")
    build_model(con, "identifier_audit", "p")
    audit = identifier_check(_Warehouse(con, "p"))
    assert audit is not None and audit[1] == audit[2] == 3 + 3 + 2 + 2
    _, [statement] = observer_only(_Warehouse(con, "p"), {})
    assert "are tokenized" in statement.paragraphs[0]
