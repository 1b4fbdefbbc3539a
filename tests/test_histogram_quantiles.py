"""Latency quantiles from Prometheus histogram buckets when no per-request rows exist
(latency_histogram_quantiles.sql, declared approximate), and their use in the headline.

The hand-computed pilot of test_metrics_sql without its requests. Pool a (treatment) and b
(control) export e2e latency buckets le = 0.5, 1, 2, +Inf as cumulative counters, sampled at
00:05, 00:15, 00:25 (baseline) and once in validation:

    pool a   00:05  10  10  10  10     increase over baseline: 30 70 120 124
             00:15  30  60  90 100
             00:25  40  80 130 134
    pool b   00:05 100 100 100 100     a reset at 00:15, so the rises are the values:
             00:15   0   4   4   4     increase: 0 10 10 12
             00:25   0  10  10  12
"""

from __future__ import annotations

import duckdb
import pytest

from pipelines.sql_models import build_model
from pipelines.whatif import headline_models
from tests.built_warehouse import warehouse_fixture
from tests.test_metrics_sql import _seed

LE = (0.5, 1.0, 2.0, float("inf"))
COUNTS = {
    "a": {"00:05": (10, 10, 10, 10), "00:15": (30, 60, 90, 100), "00:25": (40, 80, 130, 134),
          "01:05": (50, 90, 140, 150)},
    "b": {"00:05": (100, 100, 100, 100), "00:15": (0, 4, 4, 4), "00:25": (0, 10, 10, 12)},
}


def _build_headline(con: duckdb.DuckDBPyConnection, pilot: str = "p1") -> None:
    """metrics_headline and the models it reads (not the whole registry)."""
    for m in headline_models("metrics_headline"):
        build_model(con, m, pilot)


def _fill(c: duckdb.DuckDBPyConnection) -> None:
    _seed(c)
    c.execute("DELETE FROM requests")
    c.executemany(
        "INSERT INTO samples VALUES ('p1', CAST('2026-01-01 ' || ? || ':00' AS TIMESTAMP), "
        "'e2e_latency_s_bucket', ?, 'n1', NULL, ?, ?)",
        [(t, pool, v, le) for pool, by_t in COUNTS.items() for t, vals in by_t.items()
         for le, v in zip(LE, vals, strict=True)])
    _build_headline(c)


con = warehouse_fixture("histograms", _fill)


def _q(con, q, segment="all", breakdown="overall", value=None, phase="baseline"):
    return con.execute(
        "SELECT value_s, observations FROM latency_histogram_quantiles WHERE phase = ? AND "
        "segment = ? AND breakdown = ? AND breakdown_value IS NOT DISTINCT FROM ? "
        "AND family = 'e2e_latency_s' AND round(q * 100) = ?",
        [phase, segment, breakdown, value, round(q * 100)]).fetchone()


def test_interpolates_inside_the_bucket_that_holds_the_rank(con):
    # pool a: 124 observations. P50: rank 62 in (0.5, 1] holding 30..70
    assert _q(con, 0.50, value="a", breakdown="pool") == (pytest.approx(0.5 + 0.5 * 32 / 40), 124)
    # P95: rank 117.8 in (1, 2] holding 70..120
    assert _q(con, 0.95, value="a", breakdown="pool")[0] == pytest.approx(1 + 47.8 / 50)
    # P99: rank 122.76 is past le=2: the highest finite bound, as histogram_quantile does
    assert _q(con, 0.99, value="a", breakdown="pool")[0] == 2.0


def test_counter_reset_counts_the_value_after_it(con):
    # pool b: 0 10 10 12 after the reset; P50 rank 6 in (0.5, 1] holding 0..10
    assert _q(con, 0.50, value="b", breakdown="pool") == (pytest.approx(0.5 + 0.5 * 6 / 10), 12)
    assert _q(con, 0.95, value="b", breakdown="pool")[0] == 2.0


def test_scopes_sum_the_buckets_of_their_pools(con):
    # all pools: 30 80 130 136; P50 rank 68 in (0.5, 1]; P95 rank 129.2 in (1, 2]
    assert _q(con, 0.50) == (pytest.approx(0.5 + 0.5 * 38 / 50), 136)
    assert _q(con, 0.95)[0] == pytest.approx(1 + 49.2 / 50)
    assert _q(con, 0.50, segment="treatment") == _q(con, 0.50, value="a", breakdown="pool")
    assert _q(con, 0.50, segment="control") == _q(con, 0.50, value="b", breakdown="pool")
    # validation has one sample per bucket: no increase, no quantile
    assert _q(con, 0.50, phase="validation") is None


def test_headline_uses_histograms_only_without_requests_and_says_so(con):
    value, note = con.execute(
        "SELECT value, note FROM metrics_headline WHERE phase = 'baseline' AND segment = 'all' "
        "AND breakdown = 'overall' AND metric = 'p95_latency_s'").fetchone()
    assert value == pytest.approx(1 + 49.2 / 50) and note.startswith("approximate")


def test_per_request_rows_win_over_histograms(tmp_path):
    c = duckdb.connect(str(tmp_path / "x.duckdb"))
    _seed(c)  # with its requests: baseline ok latencies 0.5, 2.0, 31.5 s (r3 retried)
    c.executemany(
        "INSERT INTO samples VALUES ('p1', CAST('2026-01-01 ' || ? || ':00' AS TIMESTAMP), "
        "'e2e_latency_s_bucket', 'a', 'n1', NULL, ?, ?)",
        [(t, v, le) for t, vals in COUNTS["a"].items() for le, v in zip(LE, vals, strict=True)])
    _build_headline(c)
    value, note = c.execute(
        "SELECT value, note FROM metrics_headline WHERE phase = 'baseline' AND segment = 'all' "
        "AND breakdown = 'overall' AND metric = 'p50_latency_s'").fetchone()
    assert value == pytest.approx(2.0) and note is None


def test_time_per_output_token_and_label_sets_split_at_one_instant(tmp_path):
    """tpot_s buckets of pool a, each value exported as two label sets at the same instant
    (a label the adapters drop): the counts add before the increase is taken.
    le 0.01 0.05 +Inf: 00:05 (2+2) (4+4) (4+4), 00:15 (12+10) (24+20) (26+24): increase
    18 36 42; P50 rank 21 in (0.01, 0.05] holding 18..36 -> 0.01 + 0.04 x 3/18."""
    c = duckdb.connect(str(tmp_path / "t.duckdb"))
    _seed(c)
    c.execute("DELETE FROM requests")
    halves = {"00:05": ((2, 2), (4, 4), (4, 4)), "00:15": ((12, 10), (24, 20), (26, 24))}
    c.executemany(
        "INSERT INTO samples VALUES ('p1', CAST('2026-01-01 ' || ? || ':00' AS TIMESTAMP), "
        "'tpot_s_bucket', 'a', 'n1', NULL, ?, ?)",
        [(t, v, le) for t, vals in halves.items()
         for le, pair in zip((0.01, 0.05, float("inf")), vals, strict=True) for v in pair])
    _build_headline(c)
    value, observations = c.execute(
        "SELECT value_s, observations FROM latency_histogram_quantiles WHERE phase = "
        "'baseline' AND segment = 'all' AND breakdown = 'overall' AND family = 'tpot_s' "
        "AND round(q * 100) = 50").fetchone()
    assert observations == 42 and value == pytest.approx(0.01 + 0.04 * 3 / 18)
