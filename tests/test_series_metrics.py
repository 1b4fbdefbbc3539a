"""Series metrics (sql/metrics/series_metrics.sql) on a hand-computed warehouse, and on the
`vllm-scrape` and `aggregated` pilots of tests/pilot_kinds.py.

Phases as in test_metrics_sql: baseline [00:00, 01:00), validation [01:00, 02:00); pool `a`
is treatment, `b` control.

Pilot `vllm` (vLLM / Prometheus series):
  request_success_total  a: 00:00 100, 00:10 160, 00:20 40 (reset), 00:30 100
                            rises 60 + 40 + 60 = 160 in 1800 s -> 0.0888.. req/s
                         b: two label sets at each time (summed): 00:00 0+0, 00:30 50+40
                            -> 90 in 1800 s = 0.05 req/s
  e2e_latency_s_count    a, validation only: 01:00 10, 01:20 70 -> 60 / 1200 s = 0.05 req/s
                            (the counter has no validation samples: the histogram count is used)
  preemptions_total      a: 00:00 5, 00:15 8, 00:30 2 (reset) -> 3 + 2 = 5 in 30 min
  queue_waiting          a: 00:00 2, 00:01 4, 00:04 10: each stands for the gap to the next
                            sample, the last for the previous gap: 60, 180, 180 s
                            -> (120 + 720 + 1800) / 420; P95 of (2, 4, 10) = 4 + 0.9 x 6
  queue_running          b: 00:00 3, 00:10 5: gaps capped at 300 s -> 4
  ttft_s_bucket          a: le 0.1 0.5 +Inf: 00:00 0 0 0, 00:10 10 30 40
                            P50 rank 20 in (0.1, 0.5] holding 10..30 -> 0.1 + 0.4 x 10/20
                            P95 rank 38 in +Inf -> the highest finite bound 0.5
  tpot_s_bucket          a: le 0.01 0.05 +Inf: 00:00 0 0 0, 00:10 20 40 40
                            P50 rank 20 in (0, 0.01] -> 0.01; P95 rank 38 -> 0.01 + 0.04 x 18/20
Pilot `agg` (a per-minute export):
  queue_time_mean_s      a: 00:00 0.2, 00:01 0.4, 00:03 0.6 -> weights 60, 120, 120 -> 0.44
  e2e_latency_p95_s      a: 00:00 1.0, 00:01 3.0 -> 2.0
  arrival_rate           a: 00:00 10, 00:01 20 -> 15; b: 00:00 4 (one sample) -> 4; all 19
  queue_waiting          a: 00:00 6, 00:01 8 -> 7, labelled aggregate (a per-interval export)
Pilot `trace` (scope: everything): 30 arrivals in the baseline -> 30 / 3600 req/s.
"""

from __future__ import annotations

import duckdb
import pytest

from pipelines.sql_models import build_model
from pipelines.whatif import headline_models
from tests.built_warehouse import warehouse_fixture
from tests.test_metrics_sql import _seed

SAMPLES = [
    # pilot, hh:mm, series, pool, value, le
    *[("vllm", t, "request_success_total", "a", v, None)
      for t, v in (("00:00", 100), ("00:10", 160), ("00:20", 40), ("00:30", 100))],
    *[("vllm", t, "vllm:request_success_total", "b", v, None)
      for t, v in (("00:00", 0), ("00:00", 0), ("00:30", 50), ("00:30", 40))],
    ("vllm", "01:00", "e2e_latency_s_count", "a", 10, None),
    ("vllm", "01:20", "e2e_latency_s_count", "a", 70, None),
    *[("vllm", t, "preemptions_total", "a", v, None)
      for t, v in (("00:00", 5), ("00:15", 8), ("00:30", 2))],
    *[("vllm", t, "queue_waiting", "a", v, None)
      for t, v in (("00:00", 2), ("00:01", 4), ("00:04", 10))],
    ("vllm", "00:00", "queue_running", "b", 3, None),
    ("vllm", "00:10", "queue_running", "b", 5, None),
    *[("vllm", t, "ttft_s_bucket", "a", v, le)
      for t, vals in (("00:00", (0, 0, 0)), ("00:10", (10, 30, 40)))
      for le, v in zip((0.1, 0.5, float("inf")), vals, strict=True)],
    *[("vllm", t, "tpot_s_bucket", "a", v, le)
      for t, vals in (("00:00", (0, 0, 0)), ("00:10", (20, 40, 40)))
      for le, v in zip((0.01, 0.05, float("inf")), vals, strict=True)],
    *[("agg", t, "queue_time_mean_s", "a", v, None)
      for t, v in (("00:00", 0.2), ("00:01", 0.4), ("00:03", 0.6))],
    ("agg", "00:00", "e2e_latency_p95_s", "a", 1.0, None),
    ("agg", "00:01", "e2e_latency_p95_s", "a", 3.0, None),
    ("agg", "00:00", "arrival_rate", "a", 10, None),
    ("agg", "00:01", "arrival_rate", "a", 20, None),
    ("agg", "00:00", "arrival_rate", "b", 4, None),
    ("agg", "00:00", "queue_waiting", "a", 6, None),
    ("agg", "00:01", "queue_waiting", "a", 8, None),
]
PILOTS = ("vllm", "agg", "trace")


def _build(con: duckdb.DuckDBPyConnection, pilot: str, target: str = "series_metrics") -> None:
    for m in headline_models(target):
        build_model(con, m, pilot)


def _fill(c: duckdb.DuckDBPyConnection) -> None:
    for p in PILOTS:
        _seed(c, p)  # phases, scope (pool a treated), SLA, thresholds, requests, GPU samples
    c.execute("DELETE FROM samples")
    c.execute("UPDATE pilot_scope SET kind = 'all', pools = NULL WHERE pilot = 'trace'")
    c.executemany(
        "INSERT INTO samples VALUES (?, CAST('2026-01-01 ' || ? || ':00' AS TIMESTAMP), ?, ?,"
        " 'n1', NULL, ?, ?)", SAMPLES)
    c.execute("INSERT INTO arrivals SELECT 'trace', TIMESTAMP '2026-01-01 00:00:00' "
              "+ to_seconds(100 * i), 10, 20, 'test' FROM range(30) t(i)")
    for p in PILOTS:
        _build(c, p)


con = warehouse_fixture("series", _fill)


def _row(con, pilot, metric, phase="baseline", segment="all", breakdown="overall", value=None):
    return con.execute(
        "SELECT value, basis, note FROM series_metrics WHERE pilot = ? AND phase = ? AND "
        "segment = ? AND breakdown = ? AND breakdown_value IS NOT DISTINCT FROM ? AND metric = ?",
        [pilot, phase, segment, breakdown, value, metric]).fetchone()


def _metrics(con, pilot, phase="baseline"):
    return {m for (m,) in con.execute(
        "SELECT DISTINCT metric FROM series_metrics WHERE pilot = ? AND phase = ?",
        [pilot, phase]).fetchall()}


def test_counter_rate_handles_the_reset_and_split_label_sets(con):
    a, b = 160 / 1800, 90 / 1800
    value, basis, note = _row(con, "vllm", "request_rate_rps")
    assert value == pytest.approx(a + b) and basis == "measured"
    assert "request_success_total" in note
    assert _row(con, "vllm", "request_rate_rps", breakdown="pool", value="a")[0] == (
        pytest.approx(a))
    assert _row(con, "vllm", "request_rate_rps", segment="treatment")[0] == pytest.approx(a)
    assert _row(con, "vllm", "request_rate_rps", segment="control")[0] == pytest.approx(b)
    assert _row(con, "vllm", "preemptions_per_min")[0] == pytest.approx(5 / 30)


def test_histogram_count_gives_the_rate_without_the_counter(con):
    value, basis, note = _row(con, "vllm", "request_rate_rps", phase="validation")
    assert value == pytest.approx(60 / 1200) and basis == "measured"
    assert "e2e_latency_s histogram" in note


def test_gauge_time_weighted_mean_with_uneven_spacing(con):
    value, basis, _ = _row(con, "vllm", "queue_depth_mean")
    assert value == pytest.approx((2 * 60 + 4 * 180 + 10 * 180) / 420) and basis == "measured"
    assert _row(con, "vllm", "queue_depth_p95")[0] == pytest.approx(4 + 0.9 * 6)
    assert _row(con, "vllm", "queue_depth_max")[0] == 10
    assert _row(con, "vllm", "running_requests_mean")[0] == pytest.approx(4.0)
    # pool b has no queue_waiting: no row rather than a 0
    assert _row(con, "vllm", "queue_depth_mean", segment="control") is None


def test_histogram_ttft_and_tpot_quantiles_are_approximate(con):
    assert _row(con, "vllm", "ttft_p50_s")[:2] == (pytest.approx(0.3), "approximate")
    assert _row(con, "vllm", "ttft_p95_s")[0] == pytest.approx(0.5)
    assert _row(con, "vllm", "tpot_p50_s")[0] == pytest.approx(0.01)
    assert _row(con, "vllm", "tpot_p95_s")[0] == pytest.approx(0.01 + 0.04 * 18 / 20)


def test_aggregated_series_are_named_and_labelled_as_aggregates(con):
    value, basis, note = _row(con, "agg", "queue_time_agg_mean_s")
    assert value == pytest.approx((0.2 * 60 + 0.4 * 120 + 0.6 * 120) / 300)
    assert basis == "aggregate" and "queue_time_mean_s" in note
    assert _row(con, "agg", "e2e_latency_agg_p95_s")[:2] == (pytest.approx(2.0), "aggregate")
    assert _row(con, "agg", "request_rate_rps")[:2] == (pytest.approx(19.0), "aggregate")
    assert _row(con, "agg", "request_rate_rps", breakdown="pool", value="b")[0] == 4
    assert _row(con, "agg", "queue_depth_mean")[:2] == (pytest.approx(7.0), "aggregate")
    # never under a per-request name
    names = _metrics(con, "agg")
    assert not names & {"queue_wait_p95_s", "p95_latency_s", "ttft_p95_s"}


def test_arrival_trace_rate_and_absent_series_give_no_rows(con):
    for segment in ("all", "treatment"):  # scope: everything is treated
        assert _row(con, "trace", "request_rate_rps", segment=segment)[:2] == (
            pytest.approx(30 / 3600), "measured")
    assert _metrics(con, "trace") == {"request_rate_rps"}
    assert _metrics(con, "trace", "validation") == set()
    assert _metrics(con, "vllm", "validation") == {"request_rate_rps"}
    assert not any("_agg_" in m for m in _metrics(con, "vllm"))
    (nulls,) = con.execute("SELECT count(*) FROM series_metrics WHERE value IS NULL").fetchone()
    assert nulls == 0


def test_headline_carries_the_series_rows(con):
    _build(con, "vllm", "metrics_headline")
    row = con.execute(
        "SELECT value, unit, basis FROM metrics_headline WHERE pilot = 'vllm' AND phase = "
        "'baseline' AND segment = 'all' AND breakdown = 'overall' AND metric = 'queue_depth_mean'"
    ).fetchone()
    assert row == (pytest.approx(2640 / 420), "requests", "measured")
    (dupes,) = con.execute(
        "SELECT count(*) FROM (SELECT phase, segment, breakdown, breakdown_value, metric "
        "FROM metrics_headline WHERE pilot = 'vllm' GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()
    assert dupes == 0


@pytest.mark.parametrize(("kind", "expected"), [
    ("vllm-scrape", {"request_rate_rps": "measured", "preemptions_per_min": "measured",
                     "queue_depth_mean": "measured", "queue_depth_p95": "measured",
                     "queue_depth_max": "measured", "running_requests_mean": "measured",
                     "ttft_p50_s": "approximate", "ttft_p95_s": "approximate",
                     "tpot_p50_s": "approximate", "tpot_p95_s": "approximate"}),
    ("aggregated", {"request_rate_rps": "aggregate", "queue_time_agg_mean_s": "aggregate",
                    "e2e_latency_agg_p95_s": "aggregate", "e2e_latency_agg_mean_s": "aggregate",
                    "model_latency_agg_p95_s": "aggregate", "queue_depth_mean": "aggregate"}),
])
def test_pilot_kinds_get_series_rows(kind, expected, tmp_path, monkeypatch):
    from pipelines.config import load_pilot
    from pipelines.ingest.load import ingest_pilot
    from pipelines.warehouse import connect
    from tests.pilot_kinds import SECRET_ENV, make_pilot

    monkeypatch.setenv(SECRET_ENV, "s3cret")
    folder = make_pilot(tmp_path / "landing", kind)
    c = connect(tmp_path / "w.duckdb")
    ingest_pilot(c, load_pilot(folder))
    _build(c, kind, "metrics_headline")
    for table in ("series_metrics", "metrics_headline"):
        got = dict(c.execute(
            f"SELECT metric, basis FROM {table} WHERE pilot = ? AND phase = 'validation' "  # noqa: S608
            "AND segment = 'all' AND breakdown = 'overall' AND value IS NOT NULL", [kind]
        ).fetchall())
        assert {m: got.get(m) for m in expected} == expected, table
    pools = {p for (p,) in c.execute(
        "SELECT DISTINCT breakdown_value FROM series_metrics WHERE pilot = ? AND breakdown = "
        "'pool' AND metric = 'request_rate_rps'", [kind]).fetchall()}
    assert len(pools) == 2  # one row per pool (tokens or names)
