"""Analytics tables (issue #4) on the hand-computed pilot of test_metrics_sql, plus a few rows.

Base pilot: pool `a` (treatment) holds r1 (00:10, waits 0.2 s, met SLA) and r2 (00:20, waits
1 s, missed); pool `b` holds r3 (00:30, waits 5 s, timed out) and its retry r3b. P0 SLA = 1 s.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from pipelines.sql_models import build_all
from tests.test_metrics_sql import _seed


def _con(tmp_path: Path, extra: list[str] = ()) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path / "a.duckdb"))
    _seed(c)
    for sql in extra:
        c.execute(sql)
    build_all(c, "p1")
    return c


# Job J1 holds g1 of pool a 00:29-00:35 (360 s > long_job_s 60). Five P0 attempts arrive in
# pool a at 00:30:00..00:30:04 and each waits 2 s (>= sched_delay_target_s 1 s): 5 attempts,
# 10 s of wait inside the job's interval (conflict_min_attempts defaults to 5).
JOB = """INSERT INTO jobs VALUES ('p1', 'J1', 'batch', 'q', 1, NULL, NULL,
         TIMESTAMP '2026-01-01 00:29:00', TIMESTAMP '2026-01-01 00:35:00', 'n1', 'a', 1,
         ['g1'], 'COMPLETED')"""
WAITERS = """INSERT INTO requests
    SELECT 'p1', 'w' || i, NULL, 0, 'a', 'n1', 'g1', 'llm', 'P0', arr, NULL,
           arr + INTERVAL 2 SECOND, NULL, arr + INTERVAL 2100 MILLISECOND, 'ok', 1, 1
    FROM (SELECT i, TIMESTAMP '2026-01-01 00:30:00' + to_seconds(CAST(i AS BIGINT)) AS arr
          FROM range(5) t(i))"""


def _finding(c, pattern):
    return c.execute(
        "SELECT scope_pool, detected, evidence_json, latency_cost_s FROM findings "
        "WHERE pilot = 'p1' AND pattern = ?", [pattern]).fetchall()


def test_batch_conflict_and_priority_inversion(tmp_path):
    c = _con(tmp_path, [JOB, WAITERS])
    [(pool, detected, ev, cost)] = _finding(c, "batch_scheduling_conflict")
    ev = json.loads(ev)
    assert (pool, detected, ev["attempts_waiting"]) == ("a", True, 5)
    # the detector's overlap stays in the evidence; the waits are P0 and go to priority
    # inversion first (attribution precedence), so the conflict's attributed cost is 0
    assert ev["wait_overlap_s"] == pytest.approx(10.0) and cost == pytest.approx(0.0)
    [(pool, detected, ev, cost)] = _finding(c, "priority_inversion")
    ev = json.loads(ev)
    assert detected and ev["p0_p1_attempts_waiting"] == 5 and ev["held_s"] == 360
    assert cost == pytest.approx(10.0)


def test_conflict_below_threshold_is_a_candidate_not_a_finding(tmp_path):
    c = _con(tmp_path, [JOB, WAITERS, "DELETE FROM requests WHERE request_id = 'w4'"])
    [(_, detected, ev, _)] = _finding(c, "batch_scheduling_conflict")
    assert not detected and json.loads(ev)["attempts_waiting"] == 4
    tested = dict(c.execute(
        "SELECT pattern, found FROM patterns_tested WHERE pilot = 'p1'").fetchall())
    assert tested["batch_scheduling_conflict"] is False


def test_without_jobs_conflicts_are_not_measured(tmp_path):
    c = _con(tmp_path)
    tested, reason = c.execute(
        "SELECT tested, reason FROM patterns_tested WHERE pattern = 'priority_inversion'"
    ).fetchone()
    assert not tested and reason == ("not tested: needs scheduler jobs with pool and run "
                                     "times (sacct)")
    assert c.execute("SELECT count(*) FROM patterns_tested").fetchone()[0] == 9


def _index(c, index, phase="baseline", segment="all"):
    return c.execute(
        "SELECT value, note, thresholds_json FROM indices WHERE phase = ? AND segment = ? "
        "AND index = ?", [phase, segment, index]).fetchone()


def test_indices_di_hcl_ci_wpi(tmp_path):
    c = _con(tmp_path)
    di, _, th = _index(c, "DI")
    assert di == pytest.approx((0.2 + 1.0 + 0.0) / (0.5 + 2.0 + 0.5))
    assert json.loads(th) == {"di": 0.5}
    hcl, note, _ = _index(c, "HCL")
    assert hcl == pytest.approx(30.0) and note == "effective utilisation from sm_active"
    # pool-minutes with first attempts: a 00:10 coherent; a 00:20 missed SLA; b 00:30 missed
    ci, _, _ = _index(c, "CI")
    assert ci == pytest.approx(100 / 3)
    wpi, note, _ = _index(c, "WPI")
    assert wpi is None and note.startswith("not measured")


def test_sync_map_layers_and_overall(tmp_path):
    c = _con(tmp_path)
    rows = {n: (v, note) for n, v, note in c.execute(
        "SELECT name, value, note FROM sync_map WHERE phase = 'baseline' AND segment = 'all'"
    ).fetchall()}
    assert rows["data"][0] is None and rows["data"][1].startswith("not measured")
    assert rows["compute"][0] == pytest.approx(100 * 0.5 / 0.8)
    assert rows["serving"][0] == pytest.approx(100 / 3)
    # only r1 had a dispatch_ts (0.1 s <= 1 s target)
    assert rows["scheduler"][0] == pytest.approx(100.0)
    geo = (100 * (100 * 0.5 / 0.8) * (100 / 3)) ** (1 / 3)
    assert rows["overall"][0] == pytest.approx(geo)


def test_burstiness_gaps_stay_inside_their_phase_and_pool(tmp_path):
    # first attempts: a baseline 00:10, 00:20; b baseline 00:30 (+00:35 here); a validation
    # 01:10 (+01:10:30, 01:12 here); b validation 01:20. No gap crosses a pool or a phase
    # start (00:20 -> 01:10 in pool a is not a gap); the all-pools scope merges the pools.
    rows = [("x1", "b", "00:35:00"), ("x2", "a", "01:10:30"), ("x3", "a", "01:12:00")]
    c = _con(tmp_path, [
        "INSERT INTO requests VALUES " + ", ".join(
            f"('p1', '{i}', NULL, 0, '{pool}', 'n1', 'g1', 'llm', 'P0', "
            f"TIMESTAMP '2026-01-01 {t}', NULL, TIMESTAMP '2026-01-01 {t}', NULL, "
            f"TIMESTAMP '2026-01-01 {t}' + INTERVAL 1 SECOND, 'ok', 1, 1)"
            for i, pool, t in rows)])
    got = {(ph, pool): (n, gaps, cv) for ph, pool, n, gaps, cv in c.execute(
        "SELECT phase, pool, arrivals, inter_arrivals, interarrival_cv FROM arrival_burstiness")
        .fetchall()}

    def cv(gaps):
        m = sum(gaps) / len(gaps)
        return (sum((g - m) ** 2 for g in gaps) / (len(gaps) - 1)) ** 0.5 / m

    assert got[("baseline", "a")] == (2, 1, None)  # one gap: no sample deviation
    assert got[("baseline", "b")] == (2, 1, None)
    n, gaps, v = got[("baseline", "(all pools)")]
    assert (n, gaps) == (4, 3) and v == pytest.approx(cv([600, 600, 300]))
    n, gaps, v = got[("validation", "a")]
    assert (n, gaps) == (3, 2) and v == pytest.approx(cv([30, 90]))
    assert got[("validation", "b")] == (1, 0, None)
    n, gaps, v = got[("validation", "(all pools)")]
    assert (n, gaps) == (4, 3) and v == pytest.approx(cv([30, 90, 480]))


def test_burst_amplification_and_burstiness(tmp_path):
    # 9 arrivals 2 s apart from 00:40:00 in pool a, attempt i waits i s: one 20 s episode
    # (test_metrics_sql). The trailing window [00:25, 00:40) of pool a is empty: both the
    # wait ratio and the rate ratio are undefined (x/0), so nothing is claimed.
    c = _con(tmp_path, ["""INSERT INTO requests
           SELECT 'p1', 'b' || i, NULL, 0, 'a', 'n1', 'g1', 'llm', 'P0', arr, NULL,
                  arr + to_seconds(CAST(i AS BIGINT)), NULL,
                  arr + to_seconds(CAST(i AS BIGINT)) + INTERVAL 100 MILLISECOND, 'ok', 1, 1
           FROM (SELECT i, TIMESTAMP '2026-01-01 00:40:00' + to_seconds(CAST(i * 2 AS BIGINT))
                 AS arr FROM range(9) t(i))"""])
    wait_p95, trail, amplified, rate = c.execute(
        "SELECT wait_p95_s, trailing_wait_p95_s, amplified, rate_rps FROM burst_amplification"
    ).fetchone()
    assert wait_p95 == pytest.approx(7.6) and trail is None and not amplified
    assert rate == pytest.approx(9 / 20)
    # pool a baseline first attempts: 00:10:00, 00:20:00, 00:40:00 + 0, 2, ..., 16 s
    gaps = [600.0, 1200.0] + [2.0] * 8
    mean = sum(gaps) / len(gaps)
    sd = (sum((g - mean) ** 2 for g in gaps) / (len(gaps) - 1)) ** 0.5
    cv, k, disp = c.execute(
        "SELECT interarrival_cv, gamma_shape_k, index_of_dispersion FROM arrival_burstiness "
        "WHERE phase = 'baseline' AND pool = 'a'").fetchone()
    assert cv == pytest.approx(sd / mean) and k == pytest.approx(1 / (sd / mean) ** 2)
    # 360 ten-second windows: counts 1, 1, 5, 4 and 356 zeros
    n, w = 11, 360
    var = (1 + 1 + 25 + 16 - n * n / w) / (w - 1)
    assert disp == pytest.approx(var / (n / w))


# Two retries of r5 (pool b) arrive at 02:05, after the last phase: outside int_pool_minutes'
# grid, so pool_windows computes that pool-minute's P95s from its own rows. r5b waits 3 s and
# times out, r5c waits 1 s and ends ok after 2 s.
LATE_RETRIES = """INSERT INTO requests VALUES
    ('p1', 'r5b', 'r5', 1, 'b', 'n1', 'g2', 'llm', 'P0', TIMESTAMP '2026-01-01 02:05:00', NULL,
     TIMESTAMP '2026-01-01 02:05:03', NULL, TIMESTAMP '2026-01-01 02:05:20', 'timeout', 10, 10),
    ('p1', 'r5c', 'r5', 2, 'b', 'n1', 'g2', 'llm', 'P0', TIMESTAMP '2026-01-01 02:05:30', NULL,
     TIMESTAMP '2026-01-01 02:05:31', NULL, TIMESTAMP '2026-01-01 02:05:32', 'ok', 10, 10)"""


def test_pool_windows_outside_the_pool_minutes_grid_use_their_own_rows(tmp_path):
    c = _con(tmp_path, [LATE_RETRIES])
    late = "TIMESTAMP '2026-01-01 02:05:00'"
    assert c.execute(f"SELECT count(*) FROM int_pool_minutes WHERE window_start = {late}"
                     ).fetchone()[0] == 0
    row = c.execute(
        "SELECT arrivals, timeouts, queue_wait_p95_s, latency_p95_s FROM pool_windows "
        f"WHERE pool = 'b' AND window_start = {late}").fetchone()
    # waits 3 and 1 s: 1 + 0.95 * 2; the one ok attempt's latency 2 s
    assert row == (2, 1, pytest.approx(2.9), pytest.approx(2.0))
    # a pool-minute inside the grid still takes int_pool_minutes' P95s
    inside = c.execute(
        "SELECT w.queue_wait_p95_s, m.queue_wait_p95_s FROM pool_windows w JOIN int_pool_minutes m"
        " USING (pilot, pool, window_start) WHERE w.pool = 'b' AND w.arrivals > 0").fetchall()
    assert inside and all(a == b for a, b in inside)


def test_pool_minutes_p95s_each_from_its_own_series(tmp_path):
    # the five waiters of pool a at 00:30 wait 2 s and end ok 2.1 s after arrival; with a
    # P0 target of 4 s, wait / target is 0.5: three P95s with three different values
    c = _con(tmp_path, [WAITERS, "UPDATE sla_targets SET e2e_ms = 4000"])
    row = c.execute(
        "SELECT arrivals, queue_wait_p95_s, wait_sla_ratio_p95, latency_p95_s "
        "FROM int_pool_minutes WHERE pool = 'a' "
        "AND window_start = TIMESTAMP '2026-01-01 00:30:00'").fetchone()
    assert row == (5, pytest.approx(2.0), pytest.approx(0.5), pytest.approx(2.1))


# Three P0 attempts of pool a at 00:40: w0 dispatched after 0.5 s (meets the 1 s scheduling
# target), w1 after 3 s (misses it), w2 never dispatched (its delay is NULL) and times out.
DISPATCHED = """INSERT INTO requests VALUES
    ('p1', 'd0', NULL, 0, 'a', 'n1', 'g1', 'llm', 'P0', TIMESTAMP '2026-01-01 00:40:00',
     TIMESTAMP '2026-01-01 00:40:00.5', TIMESTAMP '2026-01-01 00:40:01', NULL,
     TIMESTAMP '2026-01-01 00:40:01.5', 'ok', 1, 1),
    ('p1', 'd1', NULL, 0, 'a', 'n1', 'g1', 'llm', 'P0', TIMESTAMP '2026-01-01 00:40:10',
     TIMESTAMP '2026-01-01 00:40:13', TIMESTAMP '2026-01-01 00:40:14', NULL,
     TIMESTAMP '2026-01-01 00:40:15', 'ok', 1, 1),
    ('p1', 'd2', NULL, 0, 'a', 'n1', 'g1', 'llm', 'P0', TIMESTAMP '2026-01-01 00:40:20', NULL,
     NULL, NULL, TIMESTAMP '2026-01-01 00:40:50', 'timeout', 1, NULL)"""


def test_pool_minutes_counts_and_shares_skip_what_is_missing(tmp_path):
    c = _con(tmp_path, [DISPATCHED])
    row = c.execute(
        "SELECT arrivals, first_arrivals, retries, timeouts, dispatched, sched_ok_share "
        "FROM int_pool_minutes WHERE pool = 'a' "
        "AND window_start = TIMESTAMP '2026-01-01 00:40:00'").fetchone()
    # the undispatched attempt counts as an arrival and a timeout, not in the share: 1 of 2
    assert row == (3, 3, 0, 1, 2, 0.5)
    # pool b at 00:30: r3 times out, its retry r3b ends ok; neither was dispatched
    row = c.execute(
        "SELECT arrivals, first_arrivals, retries, timeouts, dispatched, sched_ok_share "
        "FROM int_pool_minutes WHERE pool = 'b' "
        "AND window_start = TIMESTAMP '2026-01-01 00:30:00'").fetchone()
    assert row == (2, 1, 1, 1, 0, None)
