"""Batch scheduling conflict and priority inversion (METRICS.md 5, patterns 1 and 3): a job is
detected only for the waits its held GPUs plausibly caused, on hand-built pools added to the
pilot of test_metrics_sql (sched_delay_target_s 1 s, conflict_min_attempts 5, long_job_s 60).

Pool c has 4 GPUs (c1..c4 report gpu_util), pool d 8 (d1..d8); every attempt runs 1 s, so
the pools' mean service time is 1 s.

- J1 holds 2 GPUs of c 00:10-00:20. Six P0 attempts arrive 00:12:00..05 and wait 4 s: the
  queue formed while J1 held half the pool. Attempt i leaves the queue 4 + i s after the
  period began, so the held GPUs would have served 2 x (4 + i) GPU-s more, plus 2 attempts at
  once (2 x 1 s): added wait min(4, (2 (4 + i) + 2) / 4) >= 2.5 s -> all six delayed.
- J2 holds 2 GPUs of c from 00:30:09, at the tail of a queue that formed before it: six P0
  attempts arrive 00:30:00.0..0.5 and wait 10 s. All six wait while J2 holds its GPUs (the
  old count said conflict), but J2 held them only for the last 1.0-1.5 s of each wait:
  2 x (1.0..1.5) / 4 < 1 s -> none delayed, no finding.
- J4 holds 1 GPU of d 00:05-00:15. x (P3) arrives 00:08:00 and waits 3 s while 16 P0
  attempts arriving 00:08:00.1..1.6 wait 1 s each and start before it. Served in arrival
  order x's added wait would be (1 x 3 + 1 x 1) / 8 = 0.5 s; the 16 that overtook it kept
  16 x 1 s / 3 s = 5.3 GPUs busy, so the held GPU drained x's queue at 8 - 5.3: 4 / 2.7 =
  1.5 s -> x is delayed (the P0 attempts are not: at most (2.6 + 1) / 8).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from pipelines.sql_models import build_all
from tests.test_metrics_sql import _seed


def _job(jid: str, pool: str, gpus: list[str], start: str, end: str) -> str:
    ids = ", ".join(f"'{g}'" for g in gpus)
    return f"""INSERT INTO jobs VALUES ('p1', '{jid}', 'batch', 'q', 1, NULL, NULL,
        TIMESTAMP '2026-01-01 {start}', TIMESTAMP '2026-01-01 {end}', 'n9', '{pool}',
        {len(gpus)}, [{ids}], 'COMPLETED')"""


def _attempts(prefix: str, pool: str, prio: str, first: str, step_ms: int, n: int,
              wait_ms: int) -> str:
    """n attempts arriving every step_ms from `first` (hh:mm:ss.fff), each waiting wait_ms
    then running 1 s."""
    return f"""INSERT INTO requests
        SELECT 'p1', '{prefix}' || i, NULL, 0, '{pool}', 'n9', '{pool}1', 'llm', '{prio}', arr,
               NULL, arr + INTERVAL {wait_ms} MILLISECOND, NULL,
               arr + INTERVAL {wait_ms + 1000} MILLISECOND, 'ok', 1, 1
        FROM (SELECT i, TIMESTAMP '2026-01-01 {first}' + to_milliseconds(CAST(i * {step_ms}
                                                                           AS BIGINT)) AS arr
              FROM range({n}) t(i))"""


def _gpus(pool: str, n: int) -> str:
    return f"""INSERT INTO samples
        SELECT 'p1', TIMESTAMP '2026-01-01 00:00:00' + to_minutes(i), 'gpu_util', '{pool}',
               'n9', '{pool}' || g, 0.8, NULL
        FROM range(60) t(i), range(1, {n + 1}) u(g)"""


BASE = [
    _gpus("c", 4), _gpus("d", 8),
    _job("J1", "c", ["c1", "c2"], "00:10:00", "00:20:00"),
    _attempts("blocked", "c", "P0", "00:12:00", 1000, 6, 4000),
    _job("J2", "c", ["c1", "c2"], "00:30:09", "00:40:00"),
    _attempts("tail", "c", "P0", "00:30:00", 100, 6, 10000),
    _job("J4", "d", ["d1"], "00:05:00", "00:15:00"),
    _attempts("x", "d", "P3", "00:08:00", 1, 1, 3000),
]
OVERTAKERS = _attempts("o", "d", "P0", "00:08:00.100", 100, 16, 1000)
# the same 16 attempts, arrived before x: served in arrival order, nobody overtakes x
AHEAD = _attempts("o", "d", "P0", "00:07:58.400", 100, 16, 1000)
# J3 (pool c, 00:50-00:52) and waits on its boundaries, for the overlap arithmetic
EDGES = [
    _job("J3", "c", ["c3"], "00:50:00", "00:52:00"),
    _attempts("ends_at_start", "c", "P1", "00:49:58", 1, 1, 2000),
    _attempts("crosses_start", "c", "P2", "00:49:59", 1, 1, 2000),
    _attempts("inside", "c", "P1", "00:50:30.250", 333, 7, 1500),
    _attempts("crosses_end", "c", "P0", "00:51:59.500", 1, 1, 2000),
    _attempts("starts_at_end", "c", "P0", "00:52:00", 1, 1, 2000),
]


def _con(path: Path, extra: list[str]) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(path))
    _seed(c)
    for sql in extra:
        c.execute(sql)
    build_all(c, "p1")
    return c


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    return _con(tmp_path_factory.mktemp("jobs") / "w.duckdb", [*BASE, OVERTAKERS, *EDGES])


def _jobs(c, pattern: str) -> dict[str, tuple[bool, dict]]:
    """job_id -> (detected, evidence) of the pattern's candidates."""
    rows = c.execute("SELECT detected, evidence_json FROM findings WHERE pattern = ?",
                     [pattern]).fetchall()
    return {(ev := json.loads(e))["job_id"]: (d, ev) for d, e in rows}


def test_a_job_that_held_the_gpus_a_queue_lacked_is_detected(con):
    det, ev = _jobs(con, "batch_scheduling_conflict")["J1"]
    assert det and ev["attempts_waiting"] == 6 and ev["attempts_delayed"] == 6
    det, ev = _jobs(con, "priority_inversion")["J1"]
    assert det and ev["p0_p1_attempts_waiting"] == 6 and ev["p0_p1_attempts_delayed"] == 6


def test_a_job_at_the_tail_of_a_queue_it_did_not_cause_is_no_finding(con):
    # six P0 attempts waited while J2 held its GPUs (>= conflict_min_attempts) ...
    det, ev = _jobs(con, "batch_scheduling_conflict")["J2"]
    assert ev["attempts_waiting"] == 6 and ev["attempts_delayed"] == 0 and not det
    det, ev = _jobs(con, "priority_inversion")["J2"]
    assert ev["p0_p1_attempts_waiting"] == 6 and ev["p0_p1_attempts_delayed"] == 0
    assert not det
    # ... so they are not attributed to it: the pool's saturation zone keeps their wait
    att = con.execute("""SELECT sum(attributed_queue_wait_s) FROM findings
                         WHERE evidence_json->>'job_id' = 'J2'""").fetchone()[0]
    assert att == 0.0


def test_attempts_that_others_overtook_wait_longer_for_the_held_gpus(con, tmp_path):
    _, ev = _jobs(con, "batch_scheduling_conflict")["J4"]
    assert ev["attempts_waiting"] == 17 and ev["attempts_delayed"] == 1
    _, ev = _jobs(con, "priority_inversion")["J4"]
    assert ev["p0_p1_attempts_waiting"] == 16 and ev["p0_p1_attempts_delayed"] == 0
    # the same waits in arrival order (FIFO): x's added wait is 0.5 s, below the target
    fifo = _con(tmp_path / "fifo.duckdb", [*BASE, AHEAD])
    _, ev = _jobs(fifo, "batch_scheduling_conflict")["J4"]
    assert ev["attempts_waiting"] == 17 and ev["attempts_delayed"] == 0


def test_wait_overlap_counts_match_a_direct_join(con):
    """The running counts and integrals give what a job x waits join gives, boundaries
    included: a wait ending at a job's start or starting at its end does not overlap it."""
    direct = {r[0]: r[1:] for r in con.execute("""
        SELECT j.job_id, count(a.arrival_us),
               count(a.arrival_us) FILTER (WHERE a.priority IN ('P0', 'P1')),
               coalesce(sum(least(a.arrival_us + CAST(round(a.queue_wait_s * 1e6) AS BIGINT),
                                  epoch_us(j.end_ts))
                            - greatest(a.arrival_us, epoch_us(j.start_ts))), 0) / 1e6,
               coalesce(sum(least(a.arrival_us + CAST(round(a.queue_wait_s * 1e6) AS BIGINT),
                                  epoch_us(j.end_ts))
                            - greatest(a.arrival_us, epoch_us(j.start_ts)))
                        FILTER (WHERE a.priority IN ('P0', 'P1')), 0) / 1e6
        FROM jobs j
        JOIN int_attempts a
          ON a.pool = j.pool AND a.queue_wait_s >= 1
         AND a.arrival_us < epoch_us(j.end_ts)
         AND a.arrival_us + CAST(round(a.queue_wait_s * 1e6) AS BIGINT) > epoch_us(j.start_ts)
        GROUP BY j.job_id""").fetchall()}
    conflict, inversion = (_jobs(con, "batch_scheduling_conflict"),
                           _jobs(con, "priority_inversion"))
    assert set(conflict) == set(direct) == {"J1", "J2", "J3", "J4"}
    # J3: crosses_start (1 s), inside (7 x 1.5 s), crosses_end (0.5 s)
    assert direct["J3"] == (9, 8, 12.0, 11.0)
    for job, (n, n01, overlap, overlap01) in direct.items():
        ev = conflict[job][1]
        assert (ev["attempts_waiting"], ev["wait_overlap_s"]) == (n, pytest.approx(overlap))
        if n01:
            ev = inversion[job][1]
            assert ev["p0_p1_attempts_waiting"] == n01
            assert ev["inversion_time_s"] == pytest.approx(overlap01)


def test_a_detected_job_is_attributed_only_the_waits_it_delayed(tmp_path):
    # with conflict_min_attempts 1, J4 (1 of its 17 overlapping waits delayed: x, 3 s) is a
    # conflict; the 16 P0 waits it did not cause stay with the pool, not with J4 (16 + 3 s)
    c = _con(tmp_path / "min1.duckdb", [*BASE, OVERTAKERS, "UPDATE thresholds SET value = 1 "
                                        "WHERE name = 'conflict_min_attempts'"])
    det, ev = _jobs(c, "batch_scheduling_conflict")["J4"]
    assert det and ev["attempts_waiting"] == 17 and ev["attempts_delayed"] == 1
    att = c.execute("""SELECT attributed_queue_wait_s FROM findings
                       WHERE pattern = 'batch_scheduling_conflict'
                         AND json_extract_string(evidence_json, '$.job_id') = 'J4'"""
                    ).fetchone()[0]
    assert att == pytest.approx(3.0)
