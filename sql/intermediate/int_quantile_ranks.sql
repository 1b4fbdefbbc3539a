-- Pass 1 of the headline's exact quantiles (int_headline_quantiles, which has the method):
-- for every order statistic a quantile of a scope needs, the bucket of the value that holds it
-- and its rank within that bucket (j), with the bucket's min and max over the scope (lo = hi:
-- one distinct value, which is then the statistic). A table of its own, not a CTE, so that the
-- second pass is planned on its true size (a few hundred rows): estimated through the CTEs it
-- was planned as the larger side of the join that picks the rows of these buckets.
WITH th AS (
    SELECT CAST(burst_window_s * 1e6 AS BIGINT) AS win_us
    FROM int_thresholds WHERE pilot = $pilot
),
-- The bucket of a value v: 0 for v = 0, 1e6 + floor(100 ln v) > 0 for v > 0 (NaN and +inf
-- with the largest finite values), mirrored below 0 for v < 0, so bucket order is value order;
-- NULLs have none. The raw rows are read once per pass, each read spelling the bucket out: a
-- CTE read twice is materialized (every row written once more).
-- pass 1: the finest histogram, one row per (finest group, series, bucket)
hist AS (
    SELECT phase, segment, pool, priority, 'lat' AS series, b,
           count(*) AS c, min(v) AS lo, max(v) AS hi
    FROM (
        SELECT phase, segment, pool, priority, latency_s AS v,
               CASE WHEN latency_s > 0
                        THEN 1000000 + CAST(floor(ln(least(latency_s, 1e300)) * 100) AS BIGINT)
                    WHEN latency_s < 0
                        THEN -1000000 - CAST(floor(ln(least(-latency_s, 1e300)) * 100) AS BIGINT)
                    WHEN latency_s = 0 THEN 0 END AS b
        FROM int_logical_requests
        WHERE pilot = $pilot AND outcome = 'ok' AND latency_s IS NOT NULL
    )
    GROUP BY phase, segment, pool, priority, b
    UNION ALL
    -- one histogram of queue_wait_s serves its three series (their counts)
    SELECT phase, segment, pool, priority, s.series, b,
           CASE s.series WHEN 'wait' THEN c_wait WHEN 'wait_done' THEN c_done ELSE c_burst END
               AS c,
           lo, hi
    FROM (
        SELECT a.phase, a.segment, a.pool, a.priority,
               CASE WHEN a.queue_wait_s > 0
                        THEN 1000000 + CAST(floor(ln(least(a.queue_wait_s, 1e300)) * 100) AS BIGINT)
                    WHEN a.queue_wait_s < 0
                        THEN -1000000
                             - CAST(floor(ln(least(-a.queue_wait_s, 1e300)) * 100) AS BIGINT)
                    WHEN a.queue_wait_s = 0 THEN 0 END AS b,
               count(*) AS c_wait,
               count(*) FILTER (WHERE NOT a.wait_censored) AS c_done,
               count(*) FILTER (WHERE bw.is_burst) AS c_burst,
               min(a.queue_wait_s) AS lo, max(a.queue_wait_s) AS hi
        FROM int_attempts a
        CROSS JOIN th
        LEFT JOIN burst_windows bw
          ON bw.pilot = $pilot AND bw.pool = a.pool AND bw.w = a.arrival_us // th.win_us
        WHERE a.pilot = $pilot AND a.queue_wait_s IS NOT NULL
        GROUP BY ALL
    )
    CROSS JOIN (VALUES ('wait'), ('wait_done'), ('burst_wait')) s(series)
    WHERE CASE s.series WHEN 'wait' THEN c_wait WHEN 'wait_done' THEN c_done ELSE c_burst END
          > 0
    UNION ALL
    SELECT phase, segment, pool, priority, 'sched' AS series, b,
           count(*) AS c, min(v) AS lo, max(v) AS hi
    FROM (
        SELECT phase, segment, pool, priority, sched_delay_s AS v,
               CASE WHEN sched_delay_s > 0
                        THEN 1000000 + CAST(floor(ln(least(sched_delay_s, 1e300)) * 100) AS BIGINT)
                    WHEN sched_delay_s < 0
                        THEN -1000000
                             - CAST(floor(ln(least(-sched_delay_s, 1e300)) * 100) AS BIGINT)
                    WHEN sched_delay_s = 0 THEN 0 END AS b
        FROM int_attempts
        WHERE pilot = $pilot AND sched_delay_s IS NOT NULL
    )
    GROUP BY phase, segment, pool, priority, b
),
-- the histogram per scope (metrics_headline's grouping sets), with cumulative counts
scoped AS (
    SELECT
        phase,
        CASE WHEN grouping(segment) = 1 THEN 'all' ELSE segment END    AS segment,
        CASE WHEN grouping(pool) = 0 THEN 'pool'
             WHEN grouping(priority) = 0 THEN 'priority'
             ELSE 'overall' END                                        AS breakdown,
        CASE WHEN grouping(pool) = 0 THEN pool
             WHEN grouping(priority) = 0 THEN priority END             AS breakdown_value,
        series, b, CAST(sum(c) AS BIGINT) AS c, min(lo) AS lo, max(hi) AS hi
    FROM hist
    GROUP BY GROUPING SETS ((phase, series, b), (phase, segment, series, b),
                            (phase, pool, series, b), (phase, segment, pool, series, b),
                            (phase, priority, series, b), (phase, segment, priority, series, b))
),
cum AS (
    SELECT *,
           CAST(sum(c) OVER (PARTITION BY phase, segment, breakdown, breakdown_value, series
                             ORDER BY b ROWS UNBOUNDED PRECEDING) AS BIGINT) - c  AS below,
           CAST(sum(c) OVER (PARTITION BY phase, segment, breakdown, breakdown_value, series)
                AS BIGINT)                                                      AS n
    FROM scoped
    WHERE segment IN ('all', 'treatment', 'control')
),
probs AS (
    SELECT * FROM (VALUES ('lat', 1, CAST(0.50 AS DOUBLE)), ('lat', 2, CAST(0.95 AS DOUBLE)),
                          ('lat', 3, CAST(0.99 AS DOUBLE)),
                          ('wait', 1, CAST(0.50 AS DOUBLE)), ('wait', 2, CAST(0.95 AS DOUBLE)),
                          ('wait_done', 1, CAST(0.50 AS DOUBLE)),
                          ('wait_done', 2, CAST(0.95 AS DOUBLE)),
                          ('burst_wait', 1, CAST(0.50 AS DOUBLE)),
                          ('burst_wait', 2, CAST(0.95 AS DOUBLE)),
                          ('sched', 1, CAST(0.95 AS DOUBLE))) v(series, qi, p)
),
-- per scope x series x quantile: h and the two ranks it interpolates between
ranks AS (
    SELECT k.phase, k.segment, k.breakdown, k.breakdown_value, k.series, q.qi,
           CAST(k.n - 1 AS DOUBLE) * q.p AS h
    FROM (SELECT DISTINCT phase, segment, breakdown, breakdown_value, series, n FROM cum) k
    JOIN probs q ON q.series = k.series
),
wanted AS (
    SELECT r.*, x.side, CAST(floor(r.h) AS BIGINT) + x.side AS rk
    FROM ranks r
    CROSS JOIN (VALUES (1), (2)) x(side)
    WHERE x.side = 1 OR ceil(r.h) > floor(r.h)
),
-- the bucket of each wanted rank, and its rank within the bucket
located AS (
    SELECT w.phase, w.segment, w.breakdown, w.breakdown_value, w.series, w.qi, w.h, w.side,
           c.b, w.rk - c.below AS j, c.lo, c.hi
    FROM wanted w
    JOIN cum c
      ON c.phase = w.phase AND c.segment = w.segment AND c.breakdown = w.breakdown
     AND c.breakdown_value IS NOT DISTINCT FROM w.breakdown_value AND c.series = w.series
     AND w.rk > c.below AND w.rk <= c.below + c.c
)
SELECT $pilot AS pilot, * FROM located
