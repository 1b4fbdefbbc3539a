"""Headline metrics on a small hand-computed pilot (every expected value worked out by hand).

Baseline [00:00, 01:00), validation [01:00, 02:00); pool `a` is treatment, `b` control;
P0 SLA = 1 s. Baseline logical requests: r1 (0.5 s, ok, met), r2 (2.0 s, ok, missed),
r3 -> retried as r3b (31.5 s, ok, missed); validation: r4 (0.4 s, ok, met) and r5 (timeout).
"""

from __future__ import annotations

import duckdb
import pytest

from pipelines.config import DEFAULT_THRESHOLDS
from pipelines.metric_catalog import CATALOG
from pipelines.sql_models import MODELS, build_all, build_model, refresh_metric_catalog
from pipelines.warehouse import SQL_DIR
from tests.built_warehouse import warehouse_fixture

# METRICS.md defaults, with a burst floor small enough for a hand-sized table
THRESHOLDS = {**DEFAULT_THRESHOLDS, "burst_min_count": 3}


def _ts(hms: str) -> str:
    return f"2026-01-01 {hms}"


def _seed(con: duckdb.DuckDBPyConnection, pilot: str = "p1") -> None:
    for ddl in sorted((SQL_DIR / "staging").glob("*.sql")):
        con.execute(ddl.read_text())
    con.execute(
        "INSERT INTO phases VALUES (?, 'baseline', ?, ?), (?, 'validation', ?, ?)",
        [pilot, _ts("00:00"), _ts("01:00"), pilot, _ts("01:00"), _ts("02:00")],
    )
    con.execute("INSERT INTO pilot_scope VALUES (?, 'pools', ['a'], NULL, NULL)", [pilot])
    con.execute("INSERT INTO sla_targets VALUES (?, 'P0', 1000, NULL)", [pilot])
    con.executemany(
        "INSERT INTO thresholds VALUES (?, ?, ?)", [(pilot, k, v) for k, v in THRESHOLDS.items()]
    )
    rows = [
        # id, parent, attempt, pool, gpu, arrival, dispatch, start, end, status
        ("r1", None, 0, "a", "g1", "00:10:00", "00:10:00.1", "00:10:00.2", "00:10:00.5", "ok"),
        ("r2", None, 0, "a", "g1", "00:20:00", None, "00:20:01", "00:20:02", "ok"),
        ("r3", None, 0, "b", "g2", "00:30:00", None, "00:30:05", "00:30:30", "timeout"),
        ("r3b", "r3", 1, "b", "g2", "00:30:31", None, "00:30:31", "00:30:31.5", "ok"),
        ("r4", None, 0, "a", "g1", "01:10:00", None, "01:10:00", "01:10:00.4", "ok"),
        ("r5", None, 0, "b", "g2", "01:20:00", None, "01:20:10", "01:20:30", "timeout"),
    ]
    con.executemany(
        "INSERT INTO requests VALUES (?, ?, ?, ?, ?, 'n1', ?, 'llm', 'P0', ?, ?, ?, NULL, ?, ?,"
        " 10, 10)",
        [
            (pilot, i, par, att, pool, gpu, _ts(arr), dis and _ts(dis), _ts(st), _ts(end), status)
            for i, par, att, pool, gpu, arr, dis, st, end, status in rows
        ],
    )
    # GPU g1 (pool a): gpu_util 0.8, sm_active 0.5, power 300 W, one sample a minute.
    con.execute(
        """INSERT INTO samples
           SELECT ?, TIMESTAMP '2026-01-01 00:00:00' + to_minutes(i), s, 'a', 'n1', 'g1',
                  CASE s WHEN 'gpu_util' THEN 0.8 WHEN 'sm_active' THEN 0.5 ELSE 300 END, NULL
           FROM range(120) t(i), (VALUES ('gpu_util'), ('sm_active'), ('power_w')) v(s)""",
        [pilot],
    )


def _seed_and_build(c: duckdb.DuckDBPyConnection) -> None:
    _seed(c)
    build_all(c, "p1")


con = warehouse_fixture("metrics", _seed_and_build)


def _metric(con, metric, phase="baseline", segment="all", breakdown="overall", value=None):
    row = con.execute(
        "SELECT value, note FROM metrics_headline WHERE pilot = 'p1' AND phase = ? AND segment = ?"
        " AND breakdown = ? AND breakdown_value IS NOT DISTINCT FROM ? AND metric = ?",
        [phase, segment, breakdown, value, metric],
    ).fetchone()
    assert row is not None, metric
    return row


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("p50_latency_s", 2.0),  # latencies 0.5, 2.0, 31.5
        ("p95_latency_s", 2.0 + 0.9 * 29.5),
        ("p99_latency_s", 2.0 + 0.98 * 29.5),
        ("queue_wait_p50_s", 0.6),  # waits 0, 0.2, 1, 5
        ("queue_wait_p95_s", 1.0 + 0.85 * 4.0),
        ("queue_wait_max_s", 5.0),
        ("sched_delay_p95_s", 0.1),
        ("timeout_drop_rate", 0.0),  # r3 recovered on retry: outcome ok
        ("sla_adherence", 1 / 3),
        ("goodput_rps", 1 / 3600),
        ("retry_amplification", 4 / 3),
        ("delay_index", (0.2 + 1.0 + 0.0) / (0.5 + 2.0 + 0.5)),
        ("nominal_util", 0.8),
        ("effective_util", 0.5),
        ("hcl_pp", 30.0),
        ("energy_per_good_request_j", 300 * 60 * 60 / 1),
        ("logical_requests", 3),
        ("attempts", 4),
    ],
)
def test_baseline_headline_metric(con, metric, expected):
    value, _ = _metric(con, metric)
    assert value == pytest.approx(expected, rel=1e-9)


def test_validation_timeout_rate_and_segments(con):
    assert _metric(con, "timeout_drop_rate", phase="validation")[0] == pytest.approx(0.5)
    assert _metric(con, "sla_adherence", "validation", "treatment")[0] == pytest.approx(1.0)
    assert _metric(con, "sla_adherence", "validation", "control")[0] == pytest.approx(0.0)
    # control pool b has no GPU telemetry: said so, not guessed
    value, note = _metric(con, "nominal_util", "validation", "control")
    assert value is None and "no GPU telemetry" in note


def test_effective_util_names_its_source(con):
    assert _metric(con, "effective_util")[1] == "sm_active"


def test_breakdowns_by_pool_and_priority(con):
    assert _metric(con, "p50_latency_s", breakdown="pool", value="a")[0] == pytest.approx(1.25)
    assert _metric(con, "attempts", breakdown="priority", value="P0")[0] == 4


def test_burst_metrics_not_measured_without_bursts(con):
    value, note = _metric(con, "burst_queue_wait_p95_s")
    assert value is None and note == "no burst windows detected"


def test_before_after_and_did(con):
    ba = dict(
        con.execute(
            "SELECT segment, rel_change FROM metrics_before_after WHERE metric = 'sla_adherence'"
        ).fetchall()
    )
    assert ba["all"] == pytest.approx((0.5 - 1 / 3) / (1 / 3))
    treat, ctrl, did = con.execute(
        "SELECT treatment_change, control_change, did FROM metrics_did "
        "WHERE metric = 'sla_adherence'"
    ).fetchone()
    assert (treat, ctrl) == (pytest.approx(0.5), pytest.approx(-0.0))
    assert did == pytest.approx(0.5)


def test_rebuild_is_idempotent(con):
    before = con.execute("SELECT * FROM metrics_headline ORDER BY ALL").fetchall()
    build_all(con, "p1")
    assert con.execute("SELECT * FROM metrics_headline ORDER BY ALL").fetchall() == before


def test_bursts_detected_merged_and_their_queue_wait(tmp_path):
    c = duckdb.connect(str(tmp_path / "b.duckdb"))
    _seed(c)
    # 9 arrivals 2 s apart from 00:40:00 (5 in the first 10 s window, 4 in the next): one
    # two-window episode in pool a. Attempt i waits i seconds, then runs 0.1 s.
    c.execute(
        """INSERT INTO requests
           SELECT 'p1', 'b' || i, NULL, 0, 'a', 'n1', 'g1', 'llm', 'P0', arr, NULL,
                  arr + to_seconds(CAST(i AS BIGINT)), NULL,
                  arr + to_seconds(CAST(i AS BIGINT)) + INTERVAL 100 MILLISECOND, 'ok', 1, 1
           FROM (SELECT i, TIMESTAMP '2026-01-01 00:40:00' + to_seconds(CAST(i * 2 AS BIGINT))
                 AS arr FROM range(9) t(i))"""
    )
    build_all(c, "p1")
    episodes = c.execute(
        "SELECT pool, windows, arrivals, start_ts FROM burst_episodes WHERE pilot = 'p1'"
    ).fetchall()
    assert [(p, w, a) for p, w, a, _ in episodes] == [("a", 2, 9)]
    assert str(episodes[0][3]) == "2026-01-01 00:40:00"
    p50, p95 = (
        c.execute(
            "SELECT value FROM metrics_headline WHERE phase = 'baseline' AND segment = 'all'"
            " AND breakdown = 'overall' AND metric = ?",
            [m],
        ).fetchone()[0]
        for m in ("burst_queue_wait_p50_s", "burst_queue_wait_p95_s")
    )
    assert (p50, p95) == (pytest.approx(4.0), pytest.approx(7.6))  # waits 0..8 s


def test_effective_util_falls_back_to_productive_time(tmp_path):
    c = duckdb.connect(str(tmp_path / "f.duckdb"))
    _seed(c)
    c.execute("DELETE FROM samples WHERE series = 'sm_active'")
    build_all(c, "p1")
    value, note = c.execute(
        "SELECT value, note FROM metrics_headline WHERE phase = 'baseline' AND segment = 'all'"
        " AND breakdown = 'overall' AND metric = 'effective_util'"
    ).fetchone()
    # ok attempts of requests that met SLA: r1 ran 0.3 s on one GPU over a 3600 s phase
    assert note == "productive-time"
    assert value == pytest.approx(0.3 / 3600)


def test_pilot_name_and_catalog_text_are_bound_as_values(tmp_path):
    """build_model binds $pilot by SQL PREPARE/EXECUTE and writes the catalog as literals
    (no Python parameters): a quote in a pilot name or a definition stays data."""
    c = duckdb.connect(str(tmp_path / "q.duckdb"))
    _seed(c, "o'p")
    _seed(c, "p1")
    rows = {m: build_model(c, m, "o'p")
            for m in ("int_thresholds", "int_retried_requests", "int_attempts",
                      "int_logical_requests")}
    assert rows == {"int_thresholds": 1, "int_retried_requests": 1, "int_attempts": 6,
                    "int_logical_requests": 5}
    assert c.execute("SELECT DISTINCT pilot FROM int_attempts").fetchall() == [("o'p",)]
    refresh_metric_catalog(c)
    assert c.execute("SELECT * FROM metric_catalog").fetchall() == [
        (m.name, m.label, m.unit, m.better, m.definition) for m in CATALOG]


def test_a_second_pilot_keeps_the_first_pilots_rows_in_every_table(con):
    """A model's table holds every pilot: building one pilot replaces only its own rows. The
    table is dropped and made again only when the SQL's result no longer has the table's
    columns and types, so the two descriptions must agree exactly for an unchanged model."""
    def rows(pilot: str) -> dict[str, int]:
        return {m.name: con.execute(f'SELECT count(*) FROM "{m.name}" WHERE pilot = ?',
                                    [pilot]).fetchone()[0] for m in MODELS}

    before = rows("p1")
    assert sum(before.values()) > 0
    _seed(con, "p2")
    build_all(con, "p2")
    assert rows("p1") == before
    assert rows("p2") == before  # the same data under another name: the same rows


def test_a_table_whose_model_changed_shape_is_made_again(con):
    con.execute("ALTER TABLE metrics_did ADD COLUMN stale INTEGER")
    build_model(con, "metrics_did", "p1")
    cols = [r[0] for r in con.execute("SELECT name FROM pragma_table_info('metrics_did')")
            .fetchall()]
    assert "stale" not in cols and "did" in cols
