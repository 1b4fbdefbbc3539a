"""int_logical_requests is a view: the lone first attempts' rows of int_attempts and
int_retried_requests, which joins each retried request's first attempt to an aggregate of
its retries. Pinned here against the definition it replaces, one group by over every attempt
(METRICS.md 1.3), on the cases where the paths meet: retries whose end is unknown, an orphan
retry, a retry in another pool, a request whose first attempt lies outside the phases.

int_attempts looks up only the logical requests that have a retry and applies the phase,
segment and SLA rules to a lone first attempt's own row: pinned against the join of every
attempt to int_logical_requests it replaces, under every kind of scope."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.sql_models import BY_NAME, SqlModel, build_model
from pipelines.warehouse import SQL_DIR

# METRICS.md 1.3 as one group by over every attempt (the former SQL of the model)
DEFINITION = """
    SELECT coalesce(parent_request_id, request_id) AS logical_id,
           arg_min(pool, attempt) AS pool, arg_min(priority, attempt) AS priority,
           min(arrival_ts) AS first_arrival_ts,
           (epoch_us(arg_max(end_ts, attempt)) - epoch_us(min(arrival_ts))) / 1e6 AS latency_s,
           arg_max(status, attempt) AS outcome, count(*) AS attempts
    FROM requests WHERE pilot = 'p' GROUP BY 1
"""
COLUMNS = "logical_id, pool, priority, first_arrival_ts, latency_s, outcome, attempts"
# the logical requests that have an attempt other than a first one: the only ids the table keeps
RETRIED = """
    SELECT coalesce(parent_request_id, request_id) FROM requests
    WHERE pilot = 'p' AND (parent_request_id IS NOT NULL OR attempt <> 0)
"""
# a logical request's key in the fixtures: its id when kept, else its (unique) first arrival
LOGICAL_KEY = "coalesce(l.logical_id, 'lone:' || l.first_arrival_ts)"
# int_attempts as it was: every attempt joined to its logical request
ATTEMPTS_DEFINITION = f"""
    SELECT r.attempt, r.pool, r.priority, r.arrival_ts, r.status, l.phase, l.segment,
           l.met_sla AS logical_met_sla
    FROM requests r
    JOIN int_logical_requests l
      ON l.pilot = r.pilot
     AND {LOGICAL_KEY} = CASE WHEN coalesce(r.parent_request_id, r.request_id) IN ({RETRIED})
                              THEN coalesce(r.parent_request_id, r.request_id)
                              ELSE 'lone:' || r.arrival_ts END
    WHERE r.pilot = 'p'
"""
ATTEMPTS_COLUMNS = ("attempt, pool, priority, arrival_ts, status, phase, segment, "
                    "logical_met_sla")

ROWS = [
    # id, parent, attempt, pool, class, arrival s, end s (None: unknown), status
    ("single", None, 0, "a", "llm", 10, 11, "ok"),
    ("unended", None, 0, "b", "llm", 20, None, "dropped"),
    # retried: the last retry's end is unknown, so the last known end is retry 1's
    ("r", None, 0, "a", "llm", 30, 35, "timeout"),
    ("r1", "r", 1, "b", "vision", 36, 40, "timeout"),
    ("r2", "r", 2, "b", "vision", 41, None, "dropped"),
    # retried: no retry has an end, the first attempt's end is the last known
    ("s", None, 0, "b", "vision", 50, 52, "timeout"),
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


# more cases for int_attempts: a second phase, a class without an SLA target (P1), attempts
# after every phase, a request retried across the phase boundary, a retry without a parent
MORE_ROWS = [
    ("v", None, 0, "b", "llm", 3700, 3701, "ok"),
    ("late", None, 0, "a", "llm", 7300, 7301, "ok"),
    ("lateorphan1", "lateorphan", 1, "a", "llm", 7400, 7401, "ok"),
    ("x", None, 0, "a", "llm", 3590, 3595, "timeout"),
    ("x1", "x", 1, "b", "llm", 3610, 3612, "ok"),
    ("nosla", None, 0, "a", "llm", 80, 81, "ok"),
    ("okunended", None, 0, "a", "llm", 90, None, "ok"),  # ok, end unknown: SLA not met
    # a retry that kept its request id (no parent): one logical request with its first attempt
    ("w", None, 0, "b", "llm", 100, 130, "timeout"),
    ("w", None, 1, "b", "llm", 131, 132, "ok"),
]
NO_TARGET = ("nosla", "x", "o1", "single")  # their priority is P1, which has no SLA target


def _warehouse(path: Path, scope: str, rows: list[tuple]) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(path))
    for ddl in sorted((SQL_DIR / "staging").glob("*.sql")):
        c.execute(ddl.read_text())
    c.execute("INSERT INTO phases VALUES ('p', 'baseline', TIMESTAMP '2026-01-01 00:00:00', "
              "TIMESTAMP '2026-01-01 01:00:00'), ('p', 'validation', "
              "TIMESTAMP '2026-01-01 01:00:00', TIMESTAMP '2026-01-01 02:00:00')")
    c.execute(f"INSERT INTO pilot_scope VALUES ('p', {scope})")
    c.execute("INSERT INTO sla_targets VALUES ('p', 'P0', 10000, NULL)")
    c.executemany(
        "INSERT INTO requests VALUES ('p', ?, ?, ?, ?, 'n', 'g', ?, ?, "
        "TIMESTAMP '2026-01-01 00:00:00' + to_seconds(?), NULL, NULL, NULL, "
        "TIMESTAMP '2026-01-01 00:00:00' + to_seconds(?), ?, 1, 1)",
        [(i, par, att, pool, cls, "P1" if i in NO_TARGET else "P0", arr, end, st)
         for i, par, att, pool, cls, arr, end, st in rows])
    for name in ("int_retried_requests", "int_attempts", "int_logical_requests"):
        build_model(c, name, "p")
    return c


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    return _warehouse(Path(tmp_path_factory.mktemp("lr")) / "w.duckdb",
                      "'pools', ['a'], NULL, NULL", ROWS)


def test_equals_the_group_by_over_every_attempt(con):
    got = con.execute(f"SELECT {COLUMNS} FROM int_logical_requests WHERE pilot = 'p' "
                      "ORDER BY first_arrival_ts").fetchall()
    # the id is kept only for a request with a retry (what int_attempts looks up)
    want = con.execute(
        f"SELECT * REPLACE (CASE WHEN logical_id IN ({RETRIED}) THEN logical_id END "
        f"AS logical_id) FROM (SELECT {COLUMNS} FROM ({DEFINITION})) WHERE first_arrival_ts >= "
        "TIMESTAMP '2026-01-01 00:00:00' ORDER BY first_arrival_ts").fetchall()
    assert got == want
    assert [r[0] for r in got] == [None, None, "r", "s", "t", "orphan"]


def _by_key(con: duckdb.DuckDBPyConnection) -> dict[str, tuple]:
    """int_logical_requests' rows by logical id, a lone request's by 'lone:<first arrival>'."""
    return {r[0]: r[1:] for r in con.execute(
        f"SELECT {LOGICAL_KEY}, pool, latency_s, outcome, attempts "
        "FROM int_logical_requests l").fetchall()}


def test_last_known_end_and_first_attempts_attributes(con):
    rows = _by_key(con)
    # latency: first arrival to the last known end
    assert rows["r"] == ("a", 10.0, "dropped", 3)
    assert rows["s"] == ("b", 2.0, "dropped", 2)
    assert rows["t"] == ("a", 2.0, "ok", 2)
    assert rows["lone:2026-01-01 00:00:20"] == ("b", None, "dropped", 1)  # "unended"
    assert rows["orphan"] == ("b", 5.0, "ok", 1)


def test_attempts_follow_their_logical_request(con):
    # the early request's two attempts are outside the phases with it
    assert con.execute("SELECT count(*) FROM int_attempts").fetchone()[0] == len(ROWS) - 2
    assert con.execute(f"""
        SELECT count(*) FROM int_attempts a JOIN requests r
          ON r.pilot = a.pilot AND r.attempt = a.attempt AND r.arrival_ts = a.arrival_ts
        JOIN int_logical_requests l
          ON {LOGICAL_KEY} = CASE WHEN coalesce(r.parent_request_id, r.request_id) IN ({RETRIED})
                                  THEN coalesce(r.parent_request_id, r.request_id)
                                  ELSE 'lone:' || r.arrival_ts END
        WHERE a.segment = l.segment AND a.phase = l.phase
          AND a.logical_met_sla IS NOT DISTINCT FROM l.met_sla""").fetchone()[0] == len(ROWS) - 2


@pytest.mark.parametrize("scope", ["'pools', ['a'], NULL, NULL", "'all', NULL, NULL, NULL",
                                   "'priorities', NULL, ['P1'], NULL",
                                   "'share', NULL, NULL, 0.5"])
def test_attempts_equal_the_join_of_every_attempt(tmp_path, scope):
    c = _warehouse(tmp_path / "w.duckdb", scope, ROWS + MORE_ROWS)
    want = f"SELECT {ATTEMPTS_COLUMNS} FROM ({ATTEMPTS_DEFINITION})"
    got = f"SELECT {ATTEMPTS_COLUMNS} FROM int_attempts WHERE pilot = 'p'"
    for a, b in ((want, got), (got, want)):
        assert c.execute(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchone()[0] == 0
    rows = c.execute(f"SELECT phase, segment, logical_met_sla FROM ({want})").fetchall()
    # early, early1, late, lateorphan1 begin outside the phases
    assert len(rows) == len(ROWS) + len(MORE_ROWS) - 4
    assert {r[0] for r in rows} == {"baseline", "validation"}
    assert {r[2] for r in rows} == {True, False, None}  # P1 has no target: NULL
    assert len({r[1] for r in rows}) == (1 if "'all'" in scope else 2)


def test_view_under_every_scope_equals_the_group_by(tmp_path):
    for i, scope in enumerate(("'all', NULL, NULL, NULL", "'priorities', NULL, ['P1'], NULL",
                               "'share', NULL, NULL, 0.5")):
        c = _warehouse(tmp_path / f"w{i}.duckdb", scope, ROWS + MORE_ROWS)
        got = f"SELECT {COLUMNS} FROM int_logical_requests WHERE pilot = 'p'"
        want = (f"SELECT * REPLACE (CASE WHEN logical_id IN ({RETRIED}) THEN logical_id END "
                f"AS logical_id) FROM (SELECT {COLUMNS} FROM ({DEFINITION})) "
                "WHERE first_arrival_ts >= TIMESTAMP '2026-01-01 00:00:00' "
                "AND first_arrival_ts < TIMESTAMP '2026-01-01 02:00:00'")
        for a, b in ((want, got), (got, want)):
            assert c.execute(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchone()[0] == 0
        # a lone first attempt is written once, in int_attempts; the table holds the retried
        assert c.execute("SELECT count(*) FROM int_retried_requests "
                         "WHERE logical_id IS NULL").fetchone() == (0,)


def test_view_replaces_the_table_of_an_older_version_and_serves_every_pilot(tmp_path):
    c = _warehouse(tmp_path / "w.duckdb", "'all', NULL, NULL, NULL", ROWS)
    want = c.execute(f"SELECT {COLUMNS} FROM int_logical_requests ORDER BY ALL").fetchall()
    # a warehouse built before the view: int_logical_requests was a table
    c.execute("DROP VIEW int_logical_requests")
    c.execute(f"CREATE TABLE int_logical_requests AS SELECT 'p' AS pilot, {COLUMNS} "
              "FROM (SELECT NULL AS logical_id, 'x' AS pool, 'P0' AS priority, "
              "TIMESTAMP '2026-01-01' AS first_arrival_ts, 1.0 AS latency_s, "
              "'ok' AS outcome, 1 AS attempts)")
    assert build_model(c, "int_logical_requests", "p") == len(want)
    assert build_model(c, "int_logical_requests", "p") == len(want)  # idempotent
    assert c.execute(f"SELECT {COLUMNS} FROM int_logical_requests ORDER BY ALL"
                     ).fetchall() == want
    assert c.execute("SELECT table_type FROM information_schema.tables "
                     "WHERE table_name = 'int_logical_requests'").fetchall() == [("VIEW",)]
    assert build_model(c, "int_logical_requests", "another pilot") == 0


def test_a_view_cannot_take_the_pilot_parameter(tmp_path):
    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    # the SQL of a table model (it filters on $pilot) cannot define a view
    bad = SqlModel("int_attempts", "intermediate", (), view=True)
    with pytest.raises(ValueError, match="cannot use .pilot"):
        build_model(c, bad, "p")
    assert BY_NAME["int_logical_requests"].view
    assert c.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchone() == (0,)
