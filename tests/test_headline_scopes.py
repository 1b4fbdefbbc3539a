"""metrics_headline's scopes and arrival_burstiness's gaps against plain reference queries.

metrics_headline reads each request, attempt and GPU sample once and puts segment 'all' in a
grouping set of its own; the reference below is the direct formulation (one copy of every row
per segment label it belongs to, 'all' and its own segment). On a simulated pilot, with GPU
segments drawn by pools and with no GPU segment at all (scope by priority class: samples count
in 'all' only), every scope and value must agree: quantiles bit for bit, sums to float rounding.
arrival_burstiness's inter-arrival CV is checked against gaps taken per phase x pool directly.
"""

from __future__ import annotations

import duckdb
import pytest

from pipelines.sql_models import MODELS, build_model
from tests.simulated_pilot import write_simulated_pilot

PILOT = "scopes"
RTOL = 1e-12

SCOPE = """
    phase, seg AS segment,
    CASE WHEN grouping(pool) = 0 THEN 'pool' WHEN grouping(priority) = 0 THEN 'priority'
         ELSE 'overall' END AS breakdown,
    CASE WHEN grouping(pool) = 0 THEN pool WHEN grouping(priority) = 0 THEN priority END
        AS breakdown_value"""
SETS = "GROUPING SETS ((phase, seg), (phase, seg, pool), (phase, seg, priority))"
SEG = "(VALUES ('all'), ('treatment'), ('control')) v(seg)"
# (metric, exact): quantiles and counts must be bit for bit
REFERENCE = {
    f"""SELECT {SCOPE},
        quantile_cont(CASE WHEN outcome = 'ok' THEN latency_s END, 0.50) AS p50_latency_s,
        quantile_cont(CASE WHEN outcome = 'ok' THEN latency_s END, 0.95) AS p95_latency_s,
        quantile_cont(CASE WHEN outcome = 'ok' THEN latency_s END, 0.99) AS p99_latency_s,
        CAST(count(*) AS DOUBLE) AS logical_requests, CAST(sum(attempts) AS DOUBLE) AS attempts,
        avg(CASE WHEN met_sla THEN 1.0 ELSE 0.0 END) AS sla_adherence
    FROM int_logical_requests JOIN {SEG} ON seg = 'all' OR seg = segment
    GROUP BY {SETS}""": ("p50_latency_s", "p95_latency_s", "p99_latency_s",
                          "logical_requests", "attempts", "sla_adherence"),
    f"""SELECT {SCOPE},
        quantile_cont(queue_wait_s, 0.50) AS queue_wait_p50_s,
        quantile_cont(queue_wait_s, 0.95) AS queue_wait_p95_s,
        max(queue_wait_s) AS queue_wait_max_s,
        quantile_cont(CASE WHEN NOT wait_censored THEN queue_wait_s END, 0.50)
            AS queue_wait_completed_p50_s,
        quantile_cont(CASE WHEN NOT wait_censored THEN queue_wait_s END, 0.95)
            AS queue_wait_completed_p95_s,
        quantile_cont(sched_delay_s, 0.95) AS sched_delay_p95_s
    FROM int_attempts JOIN {SEG} ON seg = 'all' OR seg = segment
    GROUP BY {SETS}""": ("queue_wait_p50_s", "queue_wait_p95_s", "queue_wait_max_s",
                          "queue_wait_completed_p50_s", "queue_wait_completed_p95_s",
                          "sched_delay_p95_s"),
    f"""SELECT phase, seg AS segment,
        CASE WHEN grouping(pool) = 0 THEN 'pool' ELSE 'overall' END AS breakdown,
        CASE WHEN grouping(pool) = 0 THEN pool END AS breakdown_value,
        sum(value * dt_s) FILTER (WHERE series = 'gpu_util')
            / sum(dt_s) FILTER (WHERE series = 'gpu_util') AS nominal_util,
        sum(value * dt_s) FILTER (WHERE series = 'power_w') AS gpu_energy_j
    FROM int_gpu_samples JOIN {SEG} ON seg = 'all' OR seg = segment
    GROUP BY GROUPING SETS ((phase, seg), (phase, seg, pool))""": ("nominal_util",
                                                                   "gpu_energy_j"),
}
EXACT = {"p50_latency_s", "p95_latency_s", "p99_latency_s", "logical_requests", "attempts",
         "queue_wait_p50_s", "queue_wait_p95_s", "queue_wait_max_s",
         "queue_wait_completed_p50_s", "queue_wait_completed_p95_s", "sched_delay_p95_s"}


@pytest.fixture(scope="module", params=["pools", "priorities"])
def con(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path_factory.mktemp(request.param) / "w.duckdb"))
    write_simulated_pilot(c, PILOT, 11, 0.03)
    if request.param == "priorities":
        c.execute("UPDATE pilot_scope SET kind = 'priorities', pools = NULL, "
                  "priorities = ['P0'] WHERE pilot = ?", [PILOT])
    for m in MODELS:
        build_model(c, m, PILOT)
    return c


@pytest.mark.parametrize("sql", list(REFERENCE), ids=["logical", "attempts", "gpu"])
def test_headline_matches_reference(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    metrics = REFERENCE[sql]
    con.execute(f"CREATE OR REPLACE TEMP TABLE ref AS SELECT * FROM ({sql}) "
                f"UNPIVOT (value FOR metric IN ({', '.join(metrics)}))")
    listed = ", ".join(f"'{m}'" for m in metrics)
    rows = con.execute(f"""
        SELECT r.metric, r.value, h.value
        FROM ref r
        FULL JOIN (SELECT * FROM metrics_headline
                   WHERE pilot = ? AND metric IN ({listed}) AND value IS NOT NULL) h
          ON h.phase = r.phase AND h.segment = r.segment AND h.breakdown = r.breakdown
         AND h.breakdown_value IS NOT DISTINCT FROM r.breakdown_value AND h.metric = r.metric
    """, [PILOT]).fetchall()
    assert len(rows) >= 20  # every scope of both phases, not a handful
    for metric, ref, got in rows:
        assert ref is not None and got is not None, (metric, ref, got)
        if metric in EXACT:
            assert got == ref, (metric, got, ref)
        else:
            assert got == pytest.approx(ref, rel=RTOL), (metric, got, ref)


def test_gpu_segments_follow_the_scope(con: duckdb.DuckDBPyConnection) -> None:
    segments = {s for (s,) in con.execute(
        "SELECT DISTINCT segment FROM metrics_headline WHERE pilot = ? "
        "AND metric = 'nominal_util' AND value IS NOT NULL", [PILOT]).fetchall()}
    kind = con.execute("SELECT kind FROM pilot_scope WHERE pilot = ?", [PILOT]).fetchone()[0]
    # by priority class a GPU serves both segments: its samples count in 'all' only
    assert segments == ({"all", "treatment", "control"} if kind == "pools" else {"all"})


def test_burstiness_gaps_per_phase_and_pool(con: duckdb.DuckDBPyConnection) -> None:
    ref = con.execute("""
        WITH g AS (
            SELECT phase, pool, (arrival_us - lag(arrival_us) OVER (
                       PARTITION BY phase, pool ORDER BY arrival_us)) / 1e6 AS gap
            FROM int_attempts WHERE pilot = ? AND attempt = 0 AND phase IS NOT NULL
        )
        SELECT phase, pool, count(*), count(gap), stddev_samp(gap) / avg(gap)
        FROM g GROUP BY ALL ORDER BY ALL""", [PILOT]).fetchall()
    got = con.execute("""
        SELECT phase, pool, arrivals, inter_arrivals, interarrival_cv FROM arrival_burstiness
        WHERE pilot = ? AND pool <> '(all pools)' ORDER BY ALL""", [PILOT]).fetchall()
    assert len(got) == len(ref) > 2
    for (p, q, n, k, cv), (p2, q2, n2, k2, cv2) in zip(got, ref, strict=True):
        assert (p, q, n, k) == (p2, q2, n2, k2)
        assert cv == pytest.approx(cv2, rel=RTOL)
