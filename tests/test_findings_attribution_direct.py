"""findings' queue-wait attribution equals a direct computation over every (attempt, finding)
pair on a simulated pilot, whose jobs of a pool overlap (METRICS.md 5, Attribution).

findings.sql finds a wait's job finding without pairing it with every job (the least fid of
the jobs ending after its arrival, then one overlap check); this test pairs them all, as the
definition reads, and compares the per-finding sums.
"""

from __future__ import annotations

import duckdb
import pytest

from pipelines.sql_models import build_all
from tests.simulated_pilot import write_simulated_pilot

PILOT = "attr-direct"

# every detected queue-wait finding covering an attempt: the job patterns the delayed waits
# (int_delayed_waits; P0/P1 only for inversion) whose wait [a, e) overlaps [start, end), the
# others the waits arriving in [start, end); the first finding in precedence order wins
DIRECT = """
WITH prec(pattern, precedence) AS (VALUES
    ('priority_inversion', 1), ('batch_scheduling_conflict', 2), ('burst_amplification', 3),
    ('retry_timeout_amplification', 4), ('legitimate_vs_amplifying_queueing', 5)),
f AS (
    SELECT f.*, p.precedence,
           epoch_us(f.start_ts) AS cs, epoch_us(f.end_ts) AS ce,
           row_number() OVER (ORDER BY p.precedence NULLS LAST, f.start_ts NULLS LAST,
                                       f.scope_pool NULLS LAST, f.end_ts NULLS LAST,
                                       f.evidence_json NULLS LAST) AS fid
    FROM findings f LEFT JOIN prec p USING (pattern)
    WHERE f.pilot = $1
),
cov AS (SELECT * FROM f WHERE detected AND precedence IS NOT NULL AND cs IS NOT NULL
                          AND ce IS NOT NULL),
w AS (
    SELECT phase, pool, priority, arrival_us, queue_wait_s, count(*) AS n
    FROM int_attempts WHERE pilot = $1 AND queue_wait_s > 0 GROUP BY ALL
),
d AS (SELECT DISTINCT phase, pool, priority, arrival_us, queue_wait_s, wait_end_us
      FROM int_delayed_waits WHERE pilot = $1),
pairs AS (
    SELECT w.*, c.fid
    FROM w JOIN d USING (phase, pool, priority, arrival_us, queue_wait_s)
    JOIN cov c ON c.phase = w.phase AND c.scope_pool = w.pool
     AND c.pattern IN ('priority_inversion', 'batch_scheduling_conflict')
     AND w.arrival_us < c.ce AND d.wait_end_us > c.cs
     AND (c.pattern <> 'priority_inversion' OR w.priority IN ('P0', 'P1'))
    UNION ALL
    SELECT w.*, c.fid
    FROM w JOIN cov c ON c.phase = w.phase AND c.scope_pool = w.pool
     AND c.pattern NOT IN ('priority_inversion', 'batch_scheduling_conflict')
     AND w.arrival_us >= c.cs AND w.arrival_us < c.ce
),
best AS (SELECT min(fid) AS fid, any_value(queue_wait_s * n) AS wait_s FROM pairs
         GROUP BY phase, pool, priority, arrival_us, queue_wait_s),
att AS (SELECT fid, sum(wait_s) AS wait_s FROM best GROUP BY fid)
SELECT f.fid, f.pattern, f.attributed_queue_wait_s,
       CASE WHEN f.precedence IS NOT NULL THEN coalesce(a.wait_s, 0) END AS direct_s
FROM f LEFT JOIN att a USING (fid)
"""


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path_factory.mktemp("attr_direct") / "w.duckdb"))
    write_simulated_pilot(c, PILOT, 5, 0.03)
    build_all(c, PILOT)
    return c


def test_attribution_matches_every_pair_direct(con):
    rows = con.execute(DIRECT, [PILOT]).fetchall()
    jobs = [r for r in rows if r[1] in ("priority_inversion", "batch_scheduling_conflict")]
    # the case that needs the pairs: jobs of one pool overlapping, and some waits given away
    overlapping = con.execute(
        """SELECT count(*) FROM jobs a JOIN jobs b ON a.pool = b.pool AND a.job_id < b.job_id
           AND a.start_ts < b.end_ts AND b.start_ts < a.end_ts WHERE a.pilot = ?""",
        [PILOT]).fetchone()[0]
    assert overlapping > 0 and any(r[3] and r[3] > 0 for r in jobs)
    for fid, pattern, got, want in rows:
        if want is None:
            assert got is None, (fid, pattern)
        else:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9), (fid, pattern)
