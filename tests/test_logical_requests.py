"""int_logical_requests joins each first attempt to an aggregate of its retries only (the bulk
of requests has no retry). Pinned here against the definition it replaces, one group by over
every attempt (METRICS.md 1.3), on the cases where the two paths meet: retries whose end is
unknown, an orphan retry, a retry in another pool, a request whose first attempt lies outside
the phases."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.sql_models import build_model
from pipelines.warehouse import SQL_DIR

# METRICS.md 1.3 as one group by over every attempt (the former SQL of the model)
DEFINITION = """
    SELECT coalesce(parent_request_id, request_id) AS logical_id,
           arg_min(pool, attempt) AS pool, arg_min(priority, attempt) AS priority,
           arg_min(model_class, attempt) AS model_class, min(arrival_ts) AS first_arrival_ts,
           arg_max(end_ts, attempt) AS last_end_ts, arg_max(status, attempt) AS outcome,
           count(*) AS attempts
    FROM requests WHERE pilot = 'p' GROUP BY 1
"""
COLUMNS = ("logical_id, pool, priority, model_class, first_arrival_ts, last_end_ts, outcome, "
           "attempts")

ROWS = [
    # id, parent, attempt, pool, class, arrival s, end s (None: unknown), status
    ("single", None, 0, "a", "llm", 10, 11, "ok"),
    ("unended", None, 0, "b", "llm", 20, None, "dropped"),
    # retried: the last retry's end is unknown, so the last known end is retry 1's
    ("r", None, 0, "a", "llm", 30, 35, "timeout"),
    ("r1", "r", 1, "b", "emb", 36, 40, "timeout"),
    ("r2", "r", 2, "b", "emb", 41, None, "dropped"),
    # retried: no retry has an end, the first attempt's end is the last known
    ("s", None, 0, "b", "emb", 50, 52, "timeout"),
    ("s1", "s", 1, "a", "llm", 53, None, "dropped"),
    # retried: the first attempt's end is unknown, the retry's counts
    ("t", None, 0, "a", "llm", 60, None, "dropped"),
    ("t1", "t", 1, "a", "llm", 61, 62, "ok"),
    # a retry whose first attempt was never recorded: a request of its own
    ("o1", "orphan", 1, "b", "llm", 70, 75, "ok"),
    # first attempt before the phases, its retry inside: the request is outside
    ("early", None, 0, "a", "llm", -5, -1, "timeout"),
    ("early1", "early", 1, "a", "llm", 1, 2, "ok"),
]


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(Path(tmp_path_factory.mktemp("lr")) / "w.duckdb"))
    for ddl in sorted((SQL_DIR / "staging").glob("*.sql")):
        c.execute(ddl.read_text())
    c.execute("INSERT INTO phases VALUES ('p', 'baseline', TIMESTAMP '2026-01-01 00:00:00', "
              "TIMESTAMP '2026-01-01 01:00:00')")
    c.execute("INSERT INTO pilot_scope VALUES ('p', 'pools', ['a'], NULL, NULL)")
    c.execute("INSERT INTO sla_targets VALUES ('p', 'P0', 10000, NULL)")
    c.executemany(
        "INSERT INTO requests VALUES ('p', ?, ?, ?, ?, 'n', 'g', ?, 'P0', "
        "TIMESTAMP '2026-01-01 00:00:00' + to_seconds(?), NULL, NULL, NULL, "
        "TIMESTAMP '2026-01-01 00:00:00' + to_seconds(?), ?, 1, 1)",
        [(i, par, att, pool, cls, arr, end, st) for i, par, att, pool, cls, arr, end, st in ROWS])
    build_model(c, "int_logical_requests", "p")
    build_model(c, "int_attempts", "p")
    return c


def test_equals_the_group_by_over_every_attempt(con):
    got = con.execute(f"SELECT {COLUMNS} FROM int_logical_requests WHERE pilot = 'p' "
                      "ORDER BY logical_id").fetchall()
    want = con.execute(f"SELECT {COLUMNS} FROM ({DEFINITION}) WHERE first_arrival_ts >= "
                       "TIMESTAMP '2026-01-01 00:00:00' ORDER BY logical_id").fetchall()
    assert got == want
    assert [r[0] for r in got] == ["orphan", "r", "s", "single", "t", "unended"]


def test_last_known_end_and_first_attempts_attributes(con):
    rows = {r[0]: r[1:] for r in con.execute(
        "SELECT logical_id, pool, model_class, epoch(last_end_ts)::INT, outcome, attempts "
        "FROM int_logical_requests").fetchall()}
    start = 1767225600  # 2026-01-01 00:00:00
    assert rows["r"] == ("a", "llm", start + 40, "dropped", 3)
    assert rows["s"] == ("b", "emb", start + 52, "dropped", 2)
    assert rows["t"] == ("a", "llm", start + 62, "ok", 2)
    assert rows["unended"] == ("b", "llm", None, "dropped", 1)
    assert rows["orphan"] == ("b", "llm", start + 75, "ok", 1)


def test_attempts_follow_their_logical_request(con):
    # the early request's two attempts are outside the phases with it
    assert con.execute("SELECT count(*) FROM int_attempts").fetchone()[0] == len(ROWS) - 2
    assert con.execute("""
        SELECT count(*) FROM int_attempts a JOIN requests r
          ON r.pilot = a.pilot AND r.attempt = a.attempt AND r.arrival_ts = a.arrival_ts
        JOIN int_logical_requests l
          ON l.logical_id = coalesce(r.parent_request_id, r.request_id)
        WHERE a.segment = l.segment AND a.phase = l.phase
          AND a.logical_met_sla IS NOT DISTINCT FROM l.met_sla""").fetchone()[0] == len(ROWS) - 2
