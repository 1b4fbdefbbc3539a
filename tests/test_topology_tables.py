"""SLA risk map and GPU slot-locking zones on the hand-computed pilot of test_metrics_sql.

Base pilot (test_metrics_sql._seed): baseline [00:00, 01:00), validation [01:00, 02:00); pool
`a` holds r1 (00:10, met SLA) and r2 (00:20, missed); pool `b` holds r3 (00:30, waits 5 s,
timed out, retried as r3b: the logical request missed). P0 SLA = 1 s, sla_target 0.95,
long_job_s 60, sched_delay_target_s 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from pipelines.sql_models import build_all
from tests.test_metrics_sql import _seed

BASE = "2026-01-01 "


def _con(tmp_path: Path, extra: list[str] = ()) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path / "t.duckdb"))
    _seed(c)
    for sql in extra:
        c.execute(sql)
    build_all(c, "p1")
    return c


def _minute(pool: str, hhmm: str, n: int, missed: int, prefix: str) -> str:
    """n first attempts arriving 1 s apart from hhmm; the first `missed` take 2 s (> SLA 1 s),
    the others 0.5 s; every one starts on arrival."""
    return f"""INSERT INTO requests
        SELECT 'p1', '{prefix}' || i, NULL, 0, '{pool}', 'n1', 'g1', 'llm', 'P0', arr, NULL,
               arr, NULL,
               arr + CASE WHEN i < {missed} THEN INTERVAL 2 SECOND
                          ELSE INTERVAL 500 MILLISECOND END, 'ok', 1, 1
        FROM (SELECT i, TIMESTAMP '{BASE}{hhmm}:00' + to_seconds(CAST(i AS BIGINT)) AS arr
              FROM range({n}) t(i))"""


def _risk(c, pool: str, hhmm: str):
    return c.execute(
        "SELECT requests, requests_met_sla, sla_adherence, risk_level, note FROM sla_risk_map "
        "WHERE pool = ? AND window_start = ?", [pool, f"{BASE}{hhmm}:00"]).fetchone()


def test_sla_risk_levels_against_the_target(tmp_path):
    # target 0.95: at_risk below (1 + 0.95) / 2 = 0.975, breach below 0.95, critical below 0.9
    c = _con(tmp_path, [_minute("a", "00:40", 40, 0, "x"),    # 40/40 = 1.0    -> ok
                        _minute("a", "00:41", 20, 1, "y"),    # 19/20 = 0.95   -> at_risk
                        _minute("a", "00:42", 40, 3, "z"),    # 37/40 = 0.925  -> breach
                        _minute("a", "00:43", 20, 2, "w")])   # 18/20 = 0.9    -> breach
    assert _risk(c, "a", "00:40")[1:4] == (40, 1.0, "ok")
    assert _risk(c, "a", "00:41")[:4] == (20, 19, pytest.approx(0.95), "at_risk")
    assert _risk(c, "a", "00:42")[2:4] == (pytest.approx(0.925), "breach")
    assert _risk(c, "a", "00:43")[2:4] == (pytest.approx(0.9), "breach")
    assert _risk(c, "a", "00:20")[:4] == (1, 0, 0.0, "critical")  # r2 missed
    assert _risk(c, "b", "00:30")[:4] == (1, 0, 0.0, "critical")  # r3 (retried) missed
    # a minute without requests has no level and says why
    req, _, adh, level, note = _risk(c, "a", "00:50")
    assert (req, adh, level) == (0, None, None) and note.startswith("no requests")
    th = json.loads(c.execute("SELECT any_value(thresholds_json) FROM sla_risk_map").fetchone()[0])
    assert th["sla_target"] == 0.95


def test_sla_risk_map_without_requests_is_not_measured(tmp_path):
    c = _con(tmp_path, ["DELETE FROM requests"])
    rows = c.execute("SELECT DISTINCT risk_level, note FROM sla_risk_map").fetchall()
    # pool `a` still has GPU samples, so the map has cells, each saying why it is empty
    assert rows == [(None, "not measured: needs per-request rows (requests)")]


# J1 holds g1 and g3 of pool a 00:29-00:35 (360 s > long_job_s). Queued attempts of pool a
# (waited >= 1 s): p0..p4 (P0) arrive 00:30:00..00:30:04 and wait 2 s each -> their waits
# [00:30:00, 00:30:02) ... [00:30:04, 00:30:06) merge into one zone of 6 s, 5 attempts,
# 10 s of wait; q (P2) arrives 00:28:58 and waits 4 s -> clipped to [00:29:00, 00:29:02), a
# zone of 2 s; s (P1) at 00:33:00 waits 3 s -> a zone of 3 s. Not counted: f (00:31, waits
# 0.5 s < 1 s), the pool-b attempt r3, and k waiting under the short job J2 (30 s).
JOBS = """INSERT INTO jobs VALUES
    ('p1', 'J1', 'batch', 'q', 1, NULL, NULL, TIMESTAMP '2026-01-01 00:29:00',
     TIMESTAMP '2026-01-01 00:35:00', 'n1', 'a', 2, ['g1', 'g3'], 'COMPLETED'),
    ('p1', 'J2', 'training', 'q', 1, NULL, NULL, TIMESTAMP '2026-01-01 00:40:00',
     TIMESTAMP '2026-01-01 00:40:30', 'n1', 'a', 1, ['g1'], 'COMPLETED')"""


def _waiter(rid: str, prio: str, arrival: str, wait_ms: int) -> str:
    return f"""INSERT INTO requests VALUES ('p1', '{rid}', NULL, 0, 'a', 'n1', 'g2', 'llm',
        '{prio}', TIMESTAMP '{BASE}{arrival}', NULL,
        TIMESTAMP '{BASE}{arrival}' + INTERVAL {wait_ms} MILLISECOND, NULL,
        TIMESTAMP '{BASE}{arrival}' + INTERVAL {wait_ms + 100} MILLISECOND, 'ok', 1, 1)"""


WAITERS = [_waiter(f"p{i}", "P0", f"00:30:0{i}", 2000) for i in range(5)] + [
    _waiter("q", "P2", "00:28:58", 4000), _waiter("s", "P1", "00:33:00", 3000),
    _waiter("f", "P0", "00:31:00", 500), _waiter("k", "P0", "00:40:05", 5000)]


def test_slot_locking_zones_by_gpu(tmp_path):
    c = _con(tmp_path, [JOBS, *WAITERS])
    rows = c.execute(
        """SELECT strftime(start_ts, '%H:%M:%S'), duration_s, attempts_waiting,
                  p0_p1_attempts_waiting, wait_added_s, jobs, job_kinds, longest_job_s, phase
           FROM slot_locking_zones WHERE gpu = 'g1' ORDER BY start_ts""").fetchall()
    assert rows == [
        ("00:29:00", pytest.approx(2.0), 1, 0, pytest.approx(2.0), 1, ["batch"], 360.0,
         "baseline"),
        ("00:30:00", pytest.approx(6.0), 5, 5, pytest.approx(10.0), 1, ["batch"], 360.0,
         "baseline"),
        ("00:33:00", pytest.approx(3.0), 1, 1, pytest.approx(3.0), 1, ["batch"], 360.0,
         "baseline"),
    ]
    # the job's second GPU is locked over the same intervals
    assert c.execute("SELECT count(*), sum(wait_added_s) FROM slot_locking_zones "
                     "WHERE gpu = 'g3'").fetchone() == (3, pytest.approx(15.0))
    hours = c.execute("SELECT sum(gpu_hours_locked) FROM slot_locking_zones").fetchone()[0]
    assert hours == pytest.approx(2 * 11 / 3600)


def test_slot_locking_zones_empty_without_jobs(tmp_path):
    c = _con(tmp_path, WAITERS)
    assert c.execute("SELECT count(*) FROM slot_locking_zones").fetchone()[0] == 0
