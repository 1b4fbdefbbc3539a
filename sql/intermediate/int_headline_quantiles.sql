-- Exact quantiles of the headline's latency and wait series (metrics_headline) per
-- phase x segment x scope, the scopes of metrics_headline ('all' is both segments; overall,
-- per pool, per priority class). quantile_cont keeps every value of every group in aggregate
-- state that memory_limit does not cap (22 GiB peak RSS at 100 M attempts); the same order
-- statistics come here from a selection whose operators the buffer manager bounds (they spill):
-- 1. a histogram: count, min and max per finest group (phase, segment, pool, priority) and fine
--    bucket of the value (monotone: 1 % wide on a log scale; zero and negatives apart),
--    rolled up to the six scopes;
-- 2. per quantile p of the n values of a scope, h = (n-1)p: the buckets holding the ranks
--    floor(h)+1 and ceil(h)+1 (1-based), from the cumulative counts; a bucket of one distinct
--    value (min = max: waits are often exactly 0) is that value;
-- 3. else only the values of those buckets are read again and ranked within their bucket.
-- The value is quantile_cont's (DuckDB's arithmetic for DOUBLE): v[floor(h)] when h is whole,
-- else v[floor(h)] * (1 - d) + v[ceil(h)] * d with d = h - floor(h).
-- Series: lat (latency_s of logical requests that ended ok), wait (queue_wait_s of every
-- attempt), wait_done (of the attempts not right-censored), burst_wait (of the attempts that
-- arrived in a burst window), sched (sched_delay_s).
WITH th AS (
    SELECT CAST(burst_window_s * 1e6 AS BIGINT) AS win_us
    FROM int_thresholds WHERE pilot = $pilot
),
located AS (
    SELECT * FROM int_quantile_ranks WHERE pilot = $pilot
),
-- pass 2: buckets of more than one distinct value, and only their values
-- (a semi-join on the bucket alone: its build side is these few buckets, and one integer key
-- the cheapest probe of every row; a row of another phase or scope is dropped further down)
open_buckets AS (
    SELECT DISTINCT series, b FROM located WHERE lo < hi
),
-- the value range of those buckets per read: a comparison drops most rows before their
-- bucket (a logarithm) is computed for the semi-join (NULL bounds, no open bucket: no rows)
rng AS (
    SELECT min(lo) FILTER (WHERE series = 'lat') AS lat_lo,
           max(hi) FILTER (WHERE series = 'lat') AS lat_hi,
           min(lo) FILTER (WHERE series IN ('wait', 'wait_done', 'burst_wait')) AS wait_lo,
           max(hi) FILTER (WHERE series IN ('wait', 'wait_done', 'burst_wait')) AS wait_hi,
           min(lo) FILTER (WHERE series = 'sched') AS sched_lo,
           max(hi) FILTER (WHERE series = 'sched') AS sched_hi
    FROM located WHERE lo < hi
),
-- each (scope, series, bucket) to rank in, by an integer id: the window below partitions
-- on it alone, not on six columns (four of them strings)
targets AS (
    SELECT phase, segment, breakdown, breakdown_value, series, b,
           row_number() OVER (ORDER BY phase, segment, breakdown, breakdown_value, series, b)
               AS tid
    FROM (SELECT DISTINCT phase, segment, breakdown, breakdown_value, series, b
          FROM located WHERE lo < hi)
),
cand AS (
    SELECT l.phase, l.segment, l.pool, l.priority, 'lat' AS series, l.b, l.v
    FROM (
        SELECT phase, segment, pool, priority, latency_s AS v,
               CASE WHEN latency_s > 0
                        THEN 1000000 + CAST(floor(ln(least(latency_s, 1e300)) * 100) AS BIGINT)
                    WHEN latency_s < 0
                        THEN -1000000 - CAST(floor(ln(least(-latency_s, 1e300)) * 100) AS BIGINT)
                    WHEN latency_s = 0 THEN 0 END AS b
        FROM int_logical_requests CROSS JOIN rng
        WHERE pilot = $pilot AND outcome = 'ok' AND latency_s BETWEEN rng.lat_lo AND rng.lat_hi
    ) l
    WHERE l.b IN (SELECT b FROM open_buckets WHERE series = 'lat')
    UNION ALL
    SELECT a.phase, a.segment, a.pool, a.priority, s.series, a.b, a.v
    FROM (
        SELECT a.phase, a.segment, a.pool, a.priority, a.arrival_us, a.wait_censored, a.b, a.v
        FROM (
            SELECT phase, segment, pool, priority, arrival_us, wait_censored,
                   queue_wait_s AS v,
                   CASE WHEN queue_wait_s > 0
                            THEN 1000000
                                 + CAST(floor(ln(least(queue_wait_s, 1e300)) * 100) AS BIGINT)
                        WHEN queue_wait_s < 0
                            THEN -1000000
                                 - CAST(floor(ln(least(-queue_wait_s, 1e300)) * 100) AS BIGINT)
                        WHEN queue_wait_s = 0 THEN 0 END AS b
            FROM int_attempts CROSS JOIN rng
            WHERE pilot = $pilot AND queue_wait_s BETWEEN rng.wait_lo AND rng.wait_hi
        ) a
        WHERE a.b IN (SELECT b FROM open_buckets
                      WHERE series IN ('wait', 'wait_done', 'burst_wait'))
    ) a
    CROSS JOIN th
    LEFT JOIN burst_windows bw
      ON bw.pilot = $pilot AND bw.pool = a.pool AND bw.w = a.arrival_us // th.win_us
    JOIN (VALUES ('wait'), ('wait_done'), ('burst_wait')) s(series)
      ON s.series = 'wait'
      OR (s.series = 'wait_done' AND NOT a.wait_censored)
      OR (s.series = 'burst_wait' AND coalesce(bw.is_burst, false))
    UNION ALL
    SELECT a.phase, a.segment, a.pool, a.priority, 'sched' AS series, a.b, a.v
    FROM (
        SELECT phase, segment, pool, priority, sched_delay_s AS v,
               CASE WHEN sched_delay_s > 0
                        THEN 1000000 + CAST(floor(ln(least(sched_delay_s, 1e300)) * 100) AS BIGINT)
                    WHEN sched_delay_s < 0
                        THEN -1000000
                             - CAST(floor(ln(least(-sched_delay_s, 1e300)) * 100) AS BIGINT)
                    WHEN sched_delay_s = 0 THEN 0 END AS b
        FROM int_attempts CROSS JOIN rng
        WHERE pilot = $pilot AND sched_delay_s BETWEEN rng.sched_lo AND rng.sched_hi
    ) a
    WHERE a.b IN (SELECT b FROM open_buckets WHERE series = 'sched')
),
-- each candidate value in every scope of its row that wants its bucket, ranked there
ranked AS (
    SELECT t.tid, c.v, row_number() OVER (PARTITION BY t.tid ORDER BY c.v) AS j
    FROM cand c
    JOIN targets t
      ON t.phase = c.phase AND t.series = c.series AND t.b = c.b
     AND (t.segment = 'all' OR t.segment = c.segment)
     AND (t.breakdown = 'overall'
          OR (t.breakdown = 'pool' AND t.breakdown_value IS NOT DISTINCT FROM c.pool)
          OR (t.breakdown = 'priority' AND t.breakdown_value IS NOT DISTINCT FROM c.priority))
),
stat AS (
    SELECT l.phase, l.segment, l.breakdown, l.breakdown_value, l.series, l.qi, l.h, l.side,
           CASE WHEN l.lo = l.hi THEN l.lo ELSE k.v END AS v
    FROM located l
    LEFT JOIN targets t  -- targets and ranked hold only buckets of several values (lo < hi)
      ON t.phase = l.phase AND t.segment = l.segment
     AND t.breakdown = l.breakdown AND t.breakdown_value IS NOT DISTINCT FROM l.breakdown_value
     AND t.series = l.series AND t.b = l.b
    LEFT JOIN ranked k ON k.tid = t.tid AND k.j = l.j
),
quant AS (
    SELECT phase, segment, breakdown, breakdown_value, series, qi,
           CASE WHEN count(*) = 1 THEN max(v)
                ELSE max(v) FILTER (WHERE side = 1) * (1.0 - (max(h) - floor(max(h))))
                     + max(v) FILTER (WHERE side = 2) * (max(h) - floor(max(h)))
           END AS value
    FROM stat
    GROUP BY phase, segment, breakdown, breakdown_value, series, qi
)
SELECT
    $pilot AS pilot, phase, segment, breakdown, breakdown_value,
    max(value) FILTER (WHERE series = 'lat' AND qi = 1)                AS lat_p50,
    max(value) FILTER (WHERE series = 'lat' AND qi = 2)                AS lat_p95,
    max(value) FILTER (WHERE series = 'lat' AND qi = 3)                AS lat_p99,
    max(value) FILTER (WHERE series = 'wait' AND qi = 1)               AS wait_p50,
    max(value) FILTER (WHERE series = 'wait' AND qi = 2)               AS wait_p95,
    max(value) FILTER (WHERE series = 'wait_done' AND qi = 1)          AS wait_done_p50,
    max(value) FILTER (WHERE series = 'wait_done' AND qi = 2)          AS wait_done_p95,
    max(value) FILTER (WHERE series = 'burst_wait' AND qi = 1)         AS burst_wait_p50,
    max(value) FILTER (WHERE series = 'burst_wait' AND qi = 2)         AS burst_wait_p95,
    max(value) FILTER (WHERE series = 'sched' AND qi = 1)              AS sched_delay_p95
FROM quant
GROUP BY phase, segment, breakdown, breakdown_value
