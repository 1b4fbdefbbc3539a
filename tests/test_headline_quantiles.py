"""The headline's quantiles by histogram selection (int_quantile_ranks, int_headline_quantiles)
against DuckDB's quantile_cont, bit for bit, on adversarial values.

Each pool holds one kind of series: ties, all zeros, one value, two values, NULLs among values
and only NULLs, negatives with zeros, ~200 k distinct values inside one 1 % bucket (the second
pass ranks them all), magnitudes from 1e-11 to 1e11, and the extremes of the double range.
Every scope of metrics_headline (phase x segment 'all'/own x overall/pool/priority) and every
series (latency of ok requests; queue wait of every attempt, of those not censored, of those in
a burst window; scheduling delay) must give quantile_cont's value exactly (None where it has
no values).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.sql_models import build_model

PILOT = "adversarial"

# value of row i (BIGINT) of each pool; hash(i) is DuckDB's, deterministic
PATTERNS = {
    "ties": (4000, "(i % 4) * 0.5"),
    "zeros": (600, "0.0"),
    "one": (1, "3.7"),
    "two": (2, "CASE WHEN i = 0 THEN 1.0 ELSE 2.0 END"),
    "nulls": (900, "CASE WHEN i % 2 = 0 THEN NULL ELSE i * 0.37 END"),
    "allnull": (60, "CAST(NULL AS DOUBLE)"),
    "neg": (3000, "(i % 201 - 100) * 0.013"
                  " + CASE WHEN i % 3 = 0 THEN 0 ELSE (hash(i) % 7) * 1e-4 END"),
    "huge": (200_000, "1.0 + (hash(i) % 1000000) * 1e-9"),
    "wide": (5000, "exp((hash(i) % 1000) / 22.0 - 25)"),
    "extreme": (8, "[0.0, 5e-324, 1e-300, 1.0, 1e300, 1.7e308, -1.7e308, -5e-324][i % 8 + 1]"),
}
SCOPE = """
    phase,
    CASE WHEN grouping(segment) = 1 THEN 'all' ELSE segment END AS segment,
    CASE WHEN grouping(pool) = 0 THEN 'pool' WHEN grouping(priority) = 0 THEN 'priority'
         ELSE 'overall' END AS breakdown,
    CASE WHEN grouping(pool) = 0 THEN pool WHEN grouping(priority) = 0 THEN priority END
        AS breakdown_value"""
SETS = """GROUPING SETS ((phase), (phase, segment), (phase, pool), (phase, segment, pool),
                         (phase, priority), (phase, segment, priority))"""
REFERENCE = f"""
    WITH lq AS (
        SELECT {SCOPE},
               quantile_cont(CASE WHEN outcome = 'ok' THEN latency_s END, [0.50, 0.95, 0.99])
                   AS q
        FROM int_logical_requests GROUP BY {SETS}
    ),
    aq AS (
        SELECT {SCOPE},
               quantile_cont(queue_wait_s, [0.50, 0.95]) AS w,
               quantile_cont(CASE WHEN NOT wait_censored THEN queue_wait_s END, [0.50, 0.95])
                   AS d,
               quantile_cont(CASE WHEN is_burst THEN queue_wait_s END, [0.50, 0.95]) AS b,
               quantile_cont(sched_delay_s, 0.95) AS s
        FROM (SELECT a.*, bw.is_burst
              FROM int_attempts a
              LEFT JOIN burst_windows bw
                ON bw.pool = a.pool AND bw.w = a.arrival_us // 1000000)
        GROUP BY {SETS}
    )
    SELECT coalesce(l.phase, a.phase), coalesce(l.segment, a.segment),
           coalesce(l.breakdown, a.breakdown), coalesce(l.breakdown_value, a.breakdown_value),
           l.q[1], l.q[2], l.q[3], a.w[1], a.w[2], a.d[1], a.d[2], a.b[1], a.b[2], a.s
    FROM lq l
    FULL JOIN aq a
      ON a.phase = l.phase AND a.segment = l.segment AND a.breakdown = l.breakdown
     AND a.breakdown_value IS NOT DISTINCT FROM l.breakdown_value
"""
COLUMNS = ("lat_p50", "lat_p95", "lat_p99", "wait_p50", "wait_p95", "wait_done_p50",
           "wait_done_p95", "burst_wait_p50", "burst_wait_p95", "sched_delay_p95")


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(Path(tmp_path_factory.mktemp("quantiles")) / "w.duckdb"))
    c.execute("CREATE TABLE vals (pool VARCHAR, i BIGINT, v DOUBLE)")
    for pool, (n, expr) in PATTERNS.items():
        c.execute(f"INSERT INTO vals SELECT '{pool}', i, {expr} FROM range({n}) r(i)")
    keys = f"""'{PILOT}' AS pilot,
        CASE WHEN (i // 7) % 2 = 0 THEN 'baseline' ELSE 'validation' END AS phase,
        CASE WHEN i % 2 = 0 THEN 'treatment' ELSE 'control' END AS segment, pool,
        'P' || (i % 3) AS priority"""
    c.execute(f"""CREATE TABLE int_logical_requests AS
        SELECT {keys}, CASE WHEN i % 5 = 4 THEN 'timeout' ELSE 'ok' END AS outcome,
               v AS latency_s
        FROM vals""")
    # sched_delay_s: the values mirrored and shifted, so that it is a series of its own
    c.execute(f"""CREATE TABLE int_attempts AS
        SELECT {keys}, i * 1000000 AS arrival_us, v AS queue_wait_s,
               CASE WHEN i % 4 = 1 THEN NULL ELSE i % 3 = 0 END AS wait_censored,
               CASE WHEN i % 11 = 0 THEN NULL ELSE 0.5 - v END AS sched_delay_s
        FROM vals""")
    c.execute(f"""CREATE TABLE burst_windows AS
        SELECT DISTINCT '{PILOT}' AS pilot, pool, i AS w,
               CASE WHEN i % 5 = 3 THEN NULL ELSE i % 2 = 0 END AS is_burst
        FROM vals WHERE i % 9 <> 0""")
    c.execute(f"CREATE TABLE int_thresholds AS SELECT '{PILOT}' AS pilot, 1.0 AS burst_window_s")
    build_model(c, "int_quantile_ranks", PILOT)
    build_model(c, "int_headline_quantiles", PILOT)
    return c


def test_quantiles_equal_quantile_cont(con: duckdb.DuckDBPyConnection) -> None:
    ref = {tuple(r[:4]): r[4:] for r in con.execute(REFERENCE).fetchall()
           if r[1] in ("all", "treatment", "control")}
    got = {tuple(r[:4]): r[4:] for r in con.execute(
        f"SELECT phase, segment, breakdown, breakdown_value, {', '.join(COLUMNS)} "
        "FROM int_headline_quantiles WHERE pilot = ?", [PILOT]).fetchall()}
    # up to 2 phases x (3 overall + 30 pool + 9 priority) scopes; 'one' and 'two' fill fewer
    assert len(ref) == 76 and set(got) <= set(ref)
    checked = 0
    for scope, want in ref.items():
        have = got.get(scope, (None,) * len(COLUMNS))
        for name, w, h in zip(COLUMNS, want, have, strict=True):
            assert h == w, (scope, name, h, w)  # bit for bit (None: no values)
            checked += w is not None
    assert checked > 550


def test_second_pass_ranks_within_a_bucket(con: duckdb.DuckDBPyConnection) -> None:
    """The ~200 k distinct values of pool 'huge' share one bucket: their quantiles come from
    ranking inside it (lo < hi), not from a bucket of one value."""
    (n,) = con.execute("""
        SELECT count(*) FROM int_quantile_ranks
        WHERE pilot = ? AND breakdown = 'pool' AND breakdown_value = 'huge' AND lo < hi
          AND j > 1000""", [PILOT]).fetchone()
    assert n > 0
