"""Each attempt's queue wait goes to at most one finding (METRICS.md 5, attribution), on the
hand-computed pilot of test_metrics_sql plus two jobs and their waiters in pool a.

J1 holds pool a 00:29-00:35, J2 00:30-00:32 (both long: > long_job_s 60 s). Five P0 attempts
arrive 00:30:00..04 and wait 2 s (10 s): covered by both jobs' priority inversion and batch
conflict and by pool a's amplifying saturation zone at 00:30. Three P2 attempts arrive
00:31:00..02 and wait 3 s (9 s): both jobs' conflicts. dz (P2) arrives 00:31:30 and is
dropped without end_ts: right-censored at the cap, r5's 10 s. Baseline total wait: r1 0.2 +
r2 1 + r3 5 + 10 + 9 + 10 = 35.2 s; validation: r5 10 s.
"""

from __future__ import annotations

import json

import duckdb
import pytest

from pipelines.sql_models import build_all
from tests.test_metrics_sql import _seed


def _job(jid: str, start: str, end: str) -> str:
    return f"""INSERT INTO jobs VALUES ('p1', '{jid}', 'batch', 'q', 1, NULL, NULL,
        TIMESTAMP '2026-01-01 {start}', TIMESTAMP '2026-01-01 {end}', 'n1', 'a', 1, ['g1'],
        'COMPLETED')"""


def _waiters(prefix: str, prio: str, hms: str, n: int, wait_ms: int) -> str:
    return f"""INSERT INTO requests
        SELECT 'p1', '{prefix}' || i, NULL, 0, 'a', 'n1', 'g1', 'llm', '{prio}', arr, NULL,
               arr + INTERVAL {wait_ms} MILLISECOND, NULL,
               arr + INTERVAL {wait_ms + 100} MILLISECOND, 'ok', 1, 1
        FROM (SELECT i, TIMESTAMP '2026-01-01 {hms}' + to_seconds(CAST(i AS BIGINT)) AS arr
              FROM range({n}) t(i))"""


EXTRA = [
    _job("J1", "00:29:00", "00:35:00"), _job("J2", "00:30:00", "00:32:00"),
    _waiters("w", "P0", "00:30:00", 5, 2000), _waiters("v", "P2", "00:31:00", 3, 3000),
    """INSERT INTO requests VALUES ('p1', 'dz', NULL, 0, 'a', 'n1', NULL, 'llm', 'P2',
       TIMESTAMP '2026-01-01 00:31:30', NULL, NULL, NULL, NULL, 'dropped', 1, NULL)""",
]


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path_factory.mktemp("attr") / "w.duckdb"))
    _seed(c)
    for sql in EXTRA:
        c.execute(sql)
    build_all(c, "p1")
    return c


def _by_key(con) -> dict[tuple[str, str, str], tuple]:
    """(pattern, pool, start hh:mm:ss) -> (detected, latency cost, attributed, share, ev)."""
    return {(p, pool, s): (det, cost, att, share, json.loads(ev)) for
            p, pool, s, det, cost, att, share, ev in con.execute(
                """SELECT pattern, scope_pool, strftime(start_ts, '%H:%M:%S'), detected,
                          latency_cost_s, attributed_queue_wait_s, queue_wait_share,
                          evidence_json
                   FROM findings WHERE pilot = 'p1' AND phase = 'baseline'""").fetchall()}


def test_an_attempt_covered_by_several_findings_counts_once(con):
    f = _by_key(con)
    # the P0 waiters go to the first inversion (J1 started first); J2's gets nothing
    assert f[("priority_inversion", "a", "00:29:00")][2] == pytest.approx(10.0)
    assert f[("priority_inversion", "a", "00:30:00")][2] == 0.0
    # the conflicts keep what the inversion did not take: the P2 waits and dz at the cap
    assert f[("batch_scheduling_conflict", "a", "00:29:00")][2] == pytest.approx(9.0 + 10.0)
    assert f[("batch_scheduling_conflict", "a", "00:30:00")][2] == 0.0
    # pool a's amplifying zone covers the P0 waiters too: detected, but they are taken
    zone = f[("legitimate_vs_amplifying_queueing", "a", "00:30:00")]
    assert zone[0] and zone[2] == 0.0
    # the detectors' own measures double count: J1 and J2 both count every waiter
    ev_sum = sum(v[4]["wait_overlap_s"] for k, v in f.items()
                 if k[0] == "batch_scheduling_conflict")
    assert ev_sum > 35.2
    # latency_cost_s of a queue-wait pattern is the attributed wait
    assert all(v[1] == v[2] for k, v in f.items() if v[2] is not None)


def test_shares_of_total_queue_wait_sum_to_at_most_one(con):
    f = _by_key(con)
    inv = f[("priority_inversion", "a", "00:29:00")]
    assert inv[3] == pytest.approx(10.0 / 35.2)
    for phase, total, attributed, shares in con.execute(
            """SELECT f.phase, any_value(t.total), sum(f.attributed_queue_wait_s),
                      sum(f.queue_wait_share)
               FROM findings f JOIN (SELECT phase, sum(queue_wait_s) AS total FROM int_attempts
                                     GROUP BY phase) t USING (phase)
               WHERE f.pilot = 'p1' GROUP BY f.phase""").fetchall():
        assert shares <= 1.0 + 1e-12 and attributed <= total + 1e-9, phase
        assert shares == pytest.approx(attributed / total)
    # every attempt's wait in pool b's zone (r3, 5 s) and the jobs' waiters, once each
    base = con.execute("SELECT sum(attributed_queue_wait_s) FROM findings "
                       "WHERE phase = 'baseline'").fetchone()[0]
    assert base == pytest.approx(10.0 + 19.0 + 5.0)
    # per pattern over the pilot's phases (35.2 + 10 s): the same attribution, summed
    pt = dict(con.execute("SELECT pattern, queue_wait_share FROM patterns_tested").fetchall())
    assert pt["priority_inversion"] == pytest.approx(10.0 / 45.2)
    assert pt["batch_scheduling_conflict"] == pytest.approx(19.0 / 45.2)
    assert pt["idle_overload_oscillation"] is None
    assert sum(v for v in pt.values() if v is not None) <= 1.0


def test_candidates_and_other_patterns_take_no_wait(con):
    rows = con.execute("""SELECT pattern, detected, attributed_queue_wait_s, queue_wait_share
                          FROM findings WHERE pilot = 'p1'""").fetchall()
    for pattern, detected, att, share in rows:
        if pattern in ("idle_overload_oscillation", "energy_latency_mismatch",
                       "non_productive_queue_waiting", "hidden_gpu_occupancy_loss"):
            assert att is None and share is None, pattern
        elif not detected:
            assert att == 0.0 and share == 0.0, pattern
