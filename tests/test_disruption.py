"""Disruption episodes and timeline on the hand-computed pilot of test_metrics_sql.

Pilot-wide 1-minute SLA adherence of the base pilot (first attempts by arrival minute):
00:10 r1 met (1.0); 00:20 r2 missed (0.0, pool a); 00:30 r3 missed (0.0, pool b: r3 timed
out, its retry r3b arrived 00:30:31); 01:10 r4 met; 01:20 r5 timed out (0.0, pool b). The
data ends at 02:00. Target 0.95, disruption_recover_s 600 unless a test overrides it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.sql_models import build_all
from tests.test_metrics_sql import _seed

# 9 first attempts in pool a from 00:16:00, 2 s apart, served at once (met SLA): one burst
# episode [00:16:00, 00:16:20) (burst_min_count 3, empty trailing window)
BURST = """INSERT INTO requests
    SELECT 'p1', 'b' || i, NULL, 0, 'a', 'n1', 'g1', 'llm', 'P0', arr, NULL, arr, NULL,
           arr + INTERVAL 100 MILLISECOND, 'ok', 1, 1
    FROM (SELECT i, TIMESTAMP '2026-01-01 00:16:00' + to_seconds(CAST(i * 2 AS BIGINT)) AS arr
          FROM range(9) t(i))"""


def _con(tmp_path: Path, extra: list[str] = ()) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path / "d.duckdb"))
    _seed(c)
    for sql in extra:
        c.execute(sql)
    build_all(c, "p1")
    return c


def _episodes(c, segment: str):
    return c.execute(
        """SELECT strftime(start_ts, '%H:%M'), strftime(recovery_ts, '%H:%M'), duration_s,
                  time_to_recover_s, minutes_below, recovered, phase
           FROM disruption_episodes WHERE segment = ? ORDER BY start_ts""",
        [segment]).fetchall()


def test_episodes_merge_below_target_minutes_until_ten_minutes_above(tmp_path):
    c = _con(tmp_path)
    # 00:20 and 00:30 are 9 minutes apart (< 10 min above target): one episode 00:20-00:31
    assert _episodes(c, "all") == [
        ("00:20", "00:31", 660.0, 660.0, 2, True, "baseline"),
        ("01:20", "01:21", 60.0, 60.0, 1, True, "validation"),
    ]
    # per segment: pool a is treatment, pool b control
    assert _episodes(c, "treatment") == [("00:20", "00:21", 60.0, 60.0, 1, True, "baseline")]
    assert [e[0] for e in _episodes(c, "control")] == ["00:30", "01:20"]
    lowest, peak, depth, wait, to_rate, req, missed, pools = c.execute(
        """SELECT lowest_sla_adherence, peak_p95_s, max_queue_depth, max_queue_wait_p95_s,
                  max_timeout_rate, requests, requests_missed_sla, pools_below
           FROM disruption_episodes WHERE episode_id LIKE 'all:%' ORDER BY start_ts LIMIT 1"""
    ).fetchone()
    # P95 of ok latencies: 00:20 pool a r2 = 2.0 s; 00:30 pool b r3b = 0.5 s
    # queue-wait P95 at 00:30 in pool b: waits 5 s (r3) and 0 s (r3b) -> 0.95 * 5
    # timeouts at 00:30: 1 of 2 attempts; no queue_waiting samples -> depth not measured
    assert (lowest, peak, depth) == (0.0, pytest.approx(2.0), None)
    assert wait == pytest.approx(4.75) and to_rate == pytest.approx(0.5)
    assert (req, missed, pools) == (2, 2, 2)


def test_shorter_recovery_splits_the_episode(tmp_path):
    c = _con(tmp_path, ["UPDATE thresholds SET value = 300 "
                        "WHERE name = 'disruption_recover_s'"])
    assert [e[:2] for e in _episodes(c, "all")] == [
        ("00:20", "00:21"), ("00:30", "00:31"), ("01:20", "01:21")]


def test_unrecovered_when_the_data_ends_first(tmp_path):
    # r5's minute 01:20 recovers at 01:21; 01:21 + 40 min > 02:00, the end of the data
    c = _con(tmp_path, ["UPDATE thresholds SET value = 2400 "
                        "WHERE name = 'disruption_recover_s'"])
    assert [e[5] for e in _episodes(c, "all")] == [True, False]
    assert c.execute("SELECT count(*) FROM disruption_timeline WHERE event = 'recovery' "
                     "AND episode_id = 'all:' || CAST(epoch_us(TIMESTAMP '2026-01-01 01:20') "
                     "// 60000000 AS VARCHAR)").fetchone()[0] == 0


def test_timeline_marks_the_events_of_an_episode(tmp_path):
    c = _con(tmp_path, [BURST])
    rows = c.execute(
        """SELECT event, strftime(ts, '%H:%M:%S'), offset_s, value, unit, pool
           FROM disruption_timeline WHERE segment = 'all' AND phase = 'baseline'
           ORDER BY ts, ord""").fetchall()
    assert rows == [
        # the burst in pool a began 4 min before the drop (within wave_lag_s = 300 s)
        ("burst_onset", "00:16:00", -240.0, pytest.approx(0.5), "req/s", "a"),
        ("adherence_drop", "00:20:00", 0.0, 0.0, "share", None),
        ("latency_spike", "00:20:00", 0.0, pytest.approx(2.0), "s", "a"),
        ("trough", "00:20:00", 0.0, 0.0, "share", None),
        ("queue_peak", "00:30:00", 600.0, pytest.approx(4.75), "s", None),
        ("timeout_escalation", "00:30:00", 600.0, pytest.approx(0.5), "share", None),
        ("recovery", "00:31:00", 660.0, 660.0, "s", None),
    ]
    # the control segment (pool b) does not see pool a's burst
    assert c.execute("SELECT count(*) FROM disruption_timeline WHERE segment = 'control' "
                     "AND event = 'burst_onset'").fetchone()[0] == 0


def test_no_episodes_without_requests(tmp_path):
    c = _con(tmp_path, ["DELETE FROM requests"])
    assert c.execute("SELECT count(*) FROM disruption_episodes").fetchone()[0] == 0
    assert c.execute("SELECT count(*) FROM disruption_timeline").fetchone()[0] == 0


def _visual(c: duckdb.DuckDBPyConnection):
    from reports.model import _Warehouse
    from reports.visuals import disruption

    return disruption(_Warehouse(c, "p1"))


def test_visual_draws_the_worst_episode(tmp_path):
    c = _con(tmp_path, [BURST])
    chart = _visual(c)
    assert chart.number == 4 and chart.svg.startswith("<svg")
    # worst = most requests missing the SLA: 00:20-00:31 (2 missed) over 01:20 (1 missed)
    assert chart.reading.startswith(
        "The worst of 2 disruption episodes (1 in baseline, 1 in validation) began "
        "2026-01-01 00:20 UTC in the baseline phase and lasted 11.0 min: adherence fell to "
        "0.0 % (target 95.0 %)")
    assert "2 of 2 requests missed the SLA; a burst in pool a began 4.0 min before it" \
        in chart.reading
    for tip in ("burst onset at 00:16", "recovery at 00:31: after 11.0 min",
                "queue peak at 00:30: 4.75 s"):
        assert f"<title>{tip}" in chart.svg


def test_visual_says_not_measured_without_requests(tmp_path):
    chart = _visual(_con(tmp_path, ["DELETE FROM requests"]))
    assert not chart.svg and chart.reading.startswith("Not drawn: needs per-request rows")
