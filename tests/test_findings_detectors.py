"""Retry/timeout amplification and legitimate vs amplifying queueing, on small hand-built
pool-minute series added to the pilot of test_metrics_sql (P0 SLA 1 s, timeout_rate_max 0.02,
retry_spike_ratio 2, legit_clear_s 120, burst_trailing_s 900, sched_delay_target_s 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from pipelines.sql_models import build_all, build_model
from tests.test_metrics_sql import _seed


def _con(tmp_path: Path, extra: list[str] = ()) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path / "f.duckdb"))
    _seed(c)
    for sql in extra:
        c.execute(sql)
    build_all(c, "p1")
    return c


def _reqs(prefix: str, pool: str, hhmm: str, n: int, wait_ms: int, status: str = "ok",
          run_ms: int = 100, attempt: int = 0, parent_prefix: str | None = None) -> str:
    """n attempts arriving 1 s apart from hhmm, each waiting wait_ms then running run_ms."""
    parent = f"'{parent_prefix}' || i" if parent_prefix else "NULL"
    return f"""INSERT INTO requests
        SELECT 'p1', '{prefix}' || i, {parent}, {attempt}, '{pool}', 'n1', 'g1', 'llm', 'P0',
               arr, NULL, arr + INTERVAL {wait_ms} MILLISECOND, NULL,
               arr + INTERVAL {wait_ms + run_ms} MILLISECOND, '{status}', 1, 1
        FROM (SELECT i, TIMESTAMP '2026-01-01 {hhmm}:00' + to_seconds(CAST(i AS BIGINT)) AS arr
              FROM range({n}) t(i))"""


def _findings(c, pattern: str):
    return [(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], r[6]) for r in c.execute(
        """SELECT scope_pool, strftime(start_ts, '%H:%M'), evidence_json, severity,
                  latency_cost_s, gpu_hours_lost, detected
           FROM findings WHERE pattern = ? ORDER BY scope_pool, start_ts""",
        [pattern]).fetchall()]


# Pool a, baseline. 00:40: 10 attempts, 4 time out after 3 s on the GPU (t0..t3) -> a
# timeout spike (0.4 > 0.02). 00:41: t0..t2 retried (3 retries) among 10 attempts. 00:50: 19
# first attempts and 1 retry (of e0, which failed with an error, not a timeout).
RETRY = [
    _reqs("t", "a", "00:40", 4, 0, "timeout", run_ms=3000),
    _reqs("o", "a", "00:40", 6, 0),
    _reqs("tr", "a", "00:41", 3, 0, attempt=1, parent_prefix="t"),
    _reqs("u", "a", "00:41", 7, 0),
    _reqs("e", "a", "00:50", 1, 0, "error"),
    _reqs("v", "a", "00:50", 18, 0),
    _reqs("er", "a", "00:50", 1, 0, attempt=1, parent_prefix="e"),
]


def test_retries_explained_by_timeouts_of_the_previous_window(tmp_path):
    c = _con(tmp_path, RETRY)
    found = {(p, s): (ev, sev, lat, gh, det) for p, s, ev, sev, lat, gh, det in
             _findings(c, "retry_timeout_amplification")}
    ev, sev, lat, gh, det = found[("a", "00:40")]
    # retries in 00:41 explained by 00:40's timeouts: min(3, 4)
    assert (ev["timeouts"], ev["retries_next_window"], ev["retries_explained_by_timeouts"]) \
        == (4, 3, 3)
    # during = the spike minute and the one after: 3 retries / 20 attempts; outside = the
    # pool's other baseline minutes: r1, r2 and 00:50 -> 1 retry / 22 attempts
    assert ev["retry_share_during_spike"] == pytest.approx(3 / 20)
    assert ev["retry_share_outside"] == pytest.approx(1 / 22)
    # amplified: 0.15 >= 2 x 1/22; not high: 0.15 < 4 x 1/22
    assert det and sev == "medium"
    # the timed-out attempts' latency: 4 of 3 s each, on the GPU for 3 s each; the latency
    # cost is the attributed queue wait of the spike's attempts: none of them waited
    assert ev["timeout_latency_s"] == pytest.approx(12.0) and gh == pytest.approx(12 / 3600)
    assert lat == pytest.approx(0.0)
    # pool b's timeouts (r3 at 00:30, r5 at 01:20) were retried in the same minute or not at
    # all: spikes with nothing in the next window to explain, so not amplification
    assert [(k, v[4]) for k, v in found.items() if k[0] == "b"] == [
        (("b", "00:30"), False), (("b", "01:20"), False)]


def test_no_retry_finding_below_the_ratio(tmp_path):
    # 3 errors retried at 00:52, outside the spike: outside share 4 / 28 and 0.15 < 2 x 4 / 28
    c = _con(tmp_path, [*RETRY, _reqs("g", "a", "00:52", 3, 0, "error"),
                        _reqs("gr", "a", "00:52", 3, 0, attempt=1, parent_prefix="g")])
    found = {(p, s): (ev, det) for p, s, ev, _, _, _, det in
             _findings(c, "retry_timeout_amplification")}
    ev, det = found[("a", "00:40")]
    assert ev["retry_share_outside"] == pytest.approx(4 / 28) and not det


# Pool a: 00:25-00:39 two attempts a minute waiting 0.3 s (P95 0.3 s: not saturated, floored
# to sched_delay_target_s 1 s as the trailing wait); 00:40 four attempts waiting 1.5 s; 00:42
# two attempts waiting 3 s; pool b 00:42 one attempt waiting 2 s.
QUEUE = [_reqs(f"w{m}_", "a", f"00:{m}", 2, 300) for m in range(25, 40)] + [
    _reqs("z", "a", "00:40", 4, 1500), _reqs("y", "a", "00:42", 2, 3000),
    _reqs("x", "b", "00:42", 1, 2000)]


def test_legitimate_vs_amplifying_queueing(tmp_path):
    c = _con(tmp_path, QUEUE)
    found = {(p, s): (ev, sev, lat, det) for p, s, ev, sev, lat, _, det in
             _findings(c, "legitimate_vs_amplifying_queueing")}
    # 00:40: (1.5 / 1.0) / (4 / 2) = 0.75 <= 1, one minute, alone -> legitimate
    ev, sev, lat, det = found[("a", "00:40")]
    assert ev["verdict"] == "legitimate" and not det and sev == "low"
    assert ev["amplification"] == pytest.approx(0.75)
    assert ev["trailing_queue_wait_p95_s"] == pytest.approx(1.0)
    # queue wait of the zone's completed attempts in the evidence; not a finding, so no
    # wait is attributed to it
    assert ev["completed_wait_s"] == pytest.approx(4 * 1.5) and lat == pytest.approx(0.0)
    # 00:42: trailing 00:27-00:41 has median 2 arrivals a minute and median wait P95 0.3 s
    # (floored to 1 s): (3 / 1) / (2 / 2) = 3, and pool b saturated at the same time
    ev, sev, lat, det = found[("a", "00:42")]
    assert ev["amplification"] == pytest.approx(3.0) and ev["other_pools_saturated"] == 1
    assert ev["verdict"] == "amplifying" and det and sev == "high"
    # pool b 00:30 (r3 waited 5 s): no trailing load in pool b to compare with, alone and
    # short -> undetermined, not a finding
    ev, _, _, det = found[("b", "00:30")]
    assert ev["verdict"] == "undetermined" and not det
    # pool a 00:20 (r2 waited 1 s): trailing median load 0 -> undetermined as well
    assert found[("a", "00:20")][0]["verdict"] == "undetermined"


def test_long_queue_is_amplifying_whatever_its_growth(tmp_path):
    # pool a 00:40-00:42 saturated for 3 minutes (> legit_clear_s 120 s)
    c = _con(tmp_path, [q for q in QUEUE if "'y'" not in q and "'x'" not in q]
             + [_reqs("z1", "a", "00:41", 4, 1500), _reqs("z2", "a", "00:42", 4, 1500)])
    ev, sev, _, det = {(p, s): (ev, sev, lat, det) for p, s, ev, sev, lat, _, det in
                       _findings(c, "legitimate_vs_amplifying_queueing")}[("a", "00:40")]
    assert ev["duration_s"] == 180 and ev["amplification"] == pytest.approx(0.75)
    assert ev["verdict"] == "amplifying" and det and sev == "medium"


def test_patterns_tested_says_when_no_retry_is_recorded(tmp_path):
    # the base pilot's only retry is r3b: without it, nothing can be explained by timeouts
    c = _con(tmp_path, ["DELETE FROM requests WHERE request_id = 'r3b'"])
    tested, found, reason = c.execute(
        "SELECT tested, found, reason FROM patterns_tested "
        "WHERE pattern = 'retry_timeout_amplification'").fetchone()
    assert tested and not found and "no retry attempts" in reason


def test_energy_rank_ignores_summation_noise(tmp_path):
    # power_w is a parallel float sum: minutes of equal power may differ in their last bits.
    # Spearman rho must rank them as ties, so it is the same as with exact values.
    c = _con(tmp_path)
    c.execute("CREATE TABLE ipm AS SELECT * FROM int_pool_minutes")

    def rho(noise: float) -> list:
        c.execute("CREATE OR REPLACE TABLE int_pool_minutes AS SELECT * REPLACE ("
                  "100.0 + 100 * (row_number() OVER (ORDER BY window_start) % 2) "
                  f"+ {noise} * (row_number() OVER (ORDER BY window_start) % 3) AS power_w) "
                  "FROM ipm")
        build_model(c, "findings", "p1")
        return [(f[0], f[2]["spearman_rho"]) for f in _findings(c, "energy_latency_mismatch")]

    exact = rho(0.0)
    assert exact and any(r is not None for _, r in exact)
    assert rho(2e-13) == exact
