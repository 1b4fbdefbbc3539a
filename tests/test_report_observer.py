"""Appendix D's identifier check (reports/sections/observer.py): every stored identifier value
is checked for the keyed-token form, on a real DuckDB file."""

from __future__ import annotations

import duckdb

from reports.model import _Warehouse
from reports.sections import identifier_check


def _warehouse(tmp_path, request_ids: list[str | None]) -> _Warehouse:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE requests (pilot VARCHAR, request_id VARCHAR, node VARCHAR)")
    con.executemany("INSERT INTO requests VALUES ('p', ?, 'node-00000000000000aa')",
                    [[r] for r in request_ids])
    con.execute("INSERT INTO requests VALUES ('other', 'alice@example.com', 'n1')")
    return _Warehouse(con, "p")


def test_every_value_is_checked_and_a_raw_one_is_counted(tmp_path):
    ids = [f"req-{i:016x}" for i in range(500)] + ["req-00000000000000ff", "alice-laptop", None]
    table, total, tokens = identifier_check(_warehouse(tmp_path, ids))
    assert (total, tokens) == (502 + 503, 501 + 503)  # request_id + node values; the other
    rows = {r[0]: r for r in table.rows}                # pilot's raw ones are not read
    assert rows["requests.request_id"][1:4] == ["502", "501", "99.8 %"]
    assert rows["requests.node"][4] == "≈ 1"


def test_all_tokens(tmp_path):
    table, total, tokens = identifier_check(_warehouse(tmp_path, ["req-0123456789abcdef"] * 3))
    assert total == tokens == 6
