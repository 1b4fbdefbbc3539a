-- Arrival burstiness per phase x pool (and 'all' pools) of first attempts (retries are the
-- system's own echo, not offered load): CV of inter-arrival times, index of dispersion
-- (variance / mean) of counts per burst window (empty windows included), Gamma shape
-- k = 1 / CV^2 (k = 1 Poisson, k < 1 burstier), as vLLM's --burstiness and trace studies use.
-- Speed: the exact CV needs the arrivals in time order, one sort per scope, keyed and carried
-- by integers only (string keys and wide payloads are what make a sort slow). Per pool the sort
-- is partitioned by a dense pool number, so Spark spreads it over its executors. Phases are
-- disjoint time ranges (pilot.yaml refuses overlaps) and a first attempt's phase is the one
-- its arrival falls in, so the previous arrival of the same phase and pool is the previous
-- arrival of the pool when that one is not before the phase's start; a gap across a phase
-- start is dropped. A pilot without per-request rows takes its arrivals from its arrival
-- trace (`arrivals`, no pool: only the all-pools row). arrival_rate_rps = arrivals / phase s.
WITH th AS (
    SELECT CAST(burst_window_s * 1e6 AS BIGINT) AS win_us
    FROM int_thresholds WHERE pilot = $pilot
),
ph AS (
    SELECT ph.phase, epoch_us(ph.start_ts) AS s_us, ph.start_ts, ph.end_ts,
           (epoch_us(ph.end_ts) - epoch_us(ph.start_ts)) / 1e6 AS phase_s,
           -- windows of the phase, empty ones included
           (epoch_us(ph.end_ts) - 1) // th.win_us - epoch_us(ph.start_ts) // th.win_us + 1
               AS windows
    FROM phases ph CROSS JOIN th WHERE ph.pilot = $pilot
),
have AS (SELECT count(*) AS attempts FROM int_attempts WHERE pilot = $pilot),
first AS (
    SELECT pool, phase, arrival_us FROM int_attempts WHERE pilot = $pilot AND attempt = 0
    UNION ALL
    SELECT 'all' AS pool, ph.phase, epoch_us(t.ts) AS arrival_us
    FROM arrivals t
    CROSS JOIN have h
    JOIN ph ON t.ts >= ph.start_ts AND t.ts < ph.end_ts
    WHERE t.pilot = $pilot AND h.attempts = 0
),
-- pool numbers from their own small scan: reading `first` twice would keep a copy of it
pools AS (
    SELECT pool, CAST(row_number() OVER (ORDER BY pool) AS INTEGER) AS pid
    FROM (SELECT pool FROM int_attempts WHERE pilot = $pilot AND attempt = 0
          UNION SELECT 'all' AS pool)
),
a AS (
    SELECT ph.s_us, p.pid, x.arrival_us
    FROM first x
    JOIN pools p ON p.pool = x.pool
    JOIN ph ON ph.phase = x.phase
),
gaps AS (
    SELECT s_us, pid, arrival_us,
           lag(arrival_us) OVER (PARTITION BY pid ORDER BY arrival_us) AS prev_us
    FROM a
    UNION ALL
    -- all pools: one time order (the scope has no partition to spread)
    SELECT s_us, 0 AS pid, arrival_us, lag(arrival_us) OVER (ORDER BY arrival_us) AS prev_us
    FROM a
),
cv AS (
    SELECT s_us, pid, count(gap_s) AS gaps, stddev_samp(gap_s) / nullif(avg(gap_s), 0) AS cv
    FROM (
        SELECT s_us, pid,
               CASE WHEN prev_us >= s_us THEN (arrival_us - prev_us) / 1e6 END AS gap_s
        FROM gaps
    )
    GROUP BY s_us, pid
),
pool_counts AS (
    SELECT a.s_us, a.pid, a.arrival_us // th.win_us AS w, count(*) AS c
    FROM a CROSS JOIN th
    GROUP BY ALL
),
counts AS (
    SELECT s_us, pid, c FROM pool_counts
    UNION ALL
    SELECT s_us, 0 AS pid, sum(c) AS c FROM pool_counts GROUP BY s_us, w
),
disp AS (
    SELECT s_us, pid, sum(c) AS n, sum(c * c) AS sum_sq FROM counts GROUP BY s_us, pid
)
SELECT
    $pilot AS pilot,
    ph.phase,
    CASE WHEN cv.pid = 0 THEN '(all pools)' ELSE p.pool END AS pool,
    d.n AS arrivals,
    d.n / ph.phase_s AS arrival_rate_rps,
    cv.gaps AS inter_arrivals,
    cv.cv AS interarrival_cv,
    1 / nullif(cv.cv * cv.cv, 0) AS gamma_shape_k,
    ph.windows,
    d.n * 1.0 / ph.windows AS mean_count,
    (d.sum_sq - d.n * d.n * 1.0 / ph.windows) / nullif(ph.windows - 1, 0)
        / nullif(d.n * 1.0 / ph.windows, 0) AS index_of_dispersion,
    CASE WHEN h.attempts > 0 THEN 'first attempts (attempt = 0)'
         ELSE 'arrival trace (arrivals)' END AS input
FROM cv
CROSS JOIN have h
JOIN disp d ON d.s_us = cv.s_us AND d.pid = cv.pid
JOIN ph ON ph.s_us = cv.s_us
LEFT JOIN pools p ON p.pid = cv.pid
-- a trace has no pool: its one pool row would repeat the all-pools row
WHERE h.attempts > 0 OR cv.pid = 0
