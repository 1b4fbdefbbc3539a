"""Queue wait counts every attempt that waited: right-censored waits in the headline, the
bootstrap and the before/after, on the hand-computed pilot of test_metrics_sql plus two
attempts that left without starting.

Baseline waits of attempts that started: r1 0.2 s, r2 1 s, r3 5 s, r3b 0 s (validation: r4
0 s, r5 10 s). Added, baseline: d1 (pool a, treatment) dropped after 4 s with its end_ts;
d2 (pool b, control) dropped with no end_ts, so it counts at the cap, the pilot's longest
recorded wait: r5's 10 s.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from pipelines.sql_models import build_all
from pipelines.statistics import BootstrapConfig, compute_ci, load_blocks
from tests.test_metrics_sql import _seed

DROPPED = """INSERT INTO requests VALUES
    ('p1', 'd1', NULL, 0, 'a', 'n1', NULL, 'llm', 'P0', TIMESTAMP '2026-01-01 00:40:00', NULL,
     NULL, NULL, TIMESTAMP '2026-01-01 00:40:04', 'dropped', 10, NULL),
    ('p1', 'd2', NULL, 0, 'b', 'n1', NULL, 'llm', 'P0', TIMESTAMP '2026-01-01 00:45:00', NULL,
     NULL, NULL, NULL, 'dropped', 10, NULL)"""


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path_factory.mktemp("qw") / "w.duckdb"))
    _seed(c)
    c.execute(DROPPED)
    build_all(c, "p1")
    return c


def _m(con, metric, phase="baseline", segment="all"):
    row = con.execute(
        "SELECT value, basis, note FROM metrics_headline WHERE pilot = 'p1' AND phase = ? "
        "AND segment = ? AND breakdown = 'overall' AND metric = ?",
        [phase, segment, metric]).fetchone()
    assert row is not None, metric
    return row


def test_attempts_that_left_unstarted_wait_until_they_left(con):
    rows = dict(con.execute(
        "SELECT a.pool || a.status || coalesce(strftime(a.end_ts, '%M'), '-'), "
        "(a.queue_wait_s, a.wait_censored) FROM int_attempts a WHERE a.status = 'dropped'"
    ).fetchall())
    assert rows == {"adropped40": (4.0, True), "bdropped-": (10.0, True)}
    assert con.execute("SELECT count(*) FROM int_attempts WHERE queue_wait_s IS NULL "
                       "OR (wait_censored AND start_ts IS NOT NULL)").fetchone()[0] == 0


@pytest.mark.parametrize(("metric", "expected"), [
    # every attempt: 0, 0.2, 1, 4 (d1), 5, 10 (d2 at the cap)
    ("queue_wait_p50_s", (1.0 + 4.0) / 2),
    ("queue_wait_p95_s", 5.0 + 0.75 * 5.0),
    ("queue_wait_max_s", 10.0),
    # the secondary view: the attempts that started, 0, 0.2, 1, 5 (the old headline)
    ("queue_wait_completed_p50_s", 0.6),
    ("queue_wait_completed_p95_s", 1.0 + 0.85 * 4.0),
    ("queue_wait_censored_share", 2 / 6),
    ("queue_wait_cap_s", 10.0),
])
def test_headline_counts_censored_waits(con, metric, expected):
    value, basis, _ = _m(con, metric)
    assert value == pytest.approx(expected, rel=1e-9) and basis == "measured"


def test_the_cap_and_the_censoring_are_stated(con):
    _, _, note = _m(con, "queue_wait_cap_s")
    assert "longest recorded wait" in note  # d2 had no end_ts
    value, _, note = _m(con, "queue_wait_cap_s", segment="treatment")
    assert value == pytest.approx(4.0) and "longest recorded" not in note
    assert "right-censored" in _m(con, "queue_wait_p95_s")[2]
    # validation: every attempt started; no cap, no censoring note
    value, _, note = _m(con, "queue_wait_cap_s", phase="validation")
    assert value is None and note.startswith("no right-censored waits")
    assert _m(con, "queue_wait_censored_share", phase="validation")[0] == 0.0
    assert _m(con, "queue_wait_p95_s", phase="validation")[2] is None


def test_before_after_and_bootstrap_use_the_same_definition(con):
    base, = con.execute("SELECT baseline FROM metrics_before_after WHERE segment = 'all' AND "
                        "metric = 'queue_wait_p95_s'").fetchone()
    assert base == pytest.approx(8.75)
    blocks, _, _ = load_blocks(con, "p1", BootstrapConfig())
    b = blocks["baseline"]
    # the bootstrap's queue-wait histogram holds all 6 attempts, its started-only one 4
    assert b["all"].hists["qw"].sum() == 6 and b["all"].hists["qwc"].sum() == 4
    assert b["control"].hists["qw"].sum() == 3  # r3, r3b and d2 (pool b)
    assert np.sum(b["all"].sums["n_censored"]) == 2 and np.sum(b["all"].sums["n_att"]) == 6
    ci = compute_ci(con, "p1", BootstrapConfig(resamples=50))
    row = {r["metric"]: r for r in ci.filter(ci["segment"] == "all").iter_rows(named=True)}
    assert row["queue_wait_censored_share"]["baseline"] == pytest.approx(2 / 6)
    assert row["queue_wait_censored_share"]["method"].endswith("exact block sums")
    assert row["queue_wait_completed_p95_s"]["baseline"] == pytest.approx(4.4)
