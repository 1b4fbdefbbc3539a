-- Arrival burstiness per phase x pool (and 'all' pools) of first attempts (retries are the
-- system's own echo, not offered load): CV of inter-arrival times, index of dispersion
-- (variance / mean) of counts per burst window (empty windows included), Gamma shape
-- k = 1 / CV^2 (k = 1 Poisson, k < 1 burstier), as vLLM's --burstiness and trace studies use.
-- Speed: the exact CV needs the arrivals in time order, one sort per scope, on one integer
-- key (sort payload and string keys are what cost): per pool, k = pool number x stride +
-- (arrival_us - t0), so a single sort orders the arrivals by pool, then time. Phases are disjoint time ranges (pilot.yaml refuses overlaps)
-- and a first attempt's phase is the one its arrival falls in, so the previous arrival of the
-- same phase and pool is the previous key when that key is not below the key of the pool's
-- phase start; every other gap (across a pool or a phase start) is dropped.
WITH th AS (
    SELECT CAST(burst_window_s * 1e6 AS BIGINT) AS win_us
    FROM int_thresholds WHERE pilot = $pilot
),
ph AS (
    SELECT ph.phase, epoch_us(ph.start_ts) AS s_us,
           -- windows of the phase, empty ones included
           (epoch_us(ph.end_ts) - 1) // th.win_us - epoch_us(ph.start_ts) // th.win_us + 1
               AS windows
    FROM phases ph CROSS JOIN th WHERE ph.pilot = $pilot
),
pools AS (
    SELECT pool, CAST(row_number() OVER (ORDER BY pool) AS BIGINT) AS pid
    FROM (SELECT DISTINCT pool FROM int_attempts WHERE pilot = $pilot AND attempt = 0)
),
a0 AS (
    SELECT ph.s_us, p.pid, x.arrival_us
    FROM int_attempts x
    JOIN pools p ON p.pool = x.pool
    JOIN ph ON ph.phase = x.phase
    WHERE x.pilot = $pilot AND x.attempt = 0
),
-- the key's origin and stride (min over arrivals and phase starts keeps every key >= 0)
span AS (
    SELECT least(min(arrival_us), min(s_us)) AS t0,
           max(arrival_us) - least(min(arrival_us), min(s_us)) + 1 AS stride
    FROM a0
),
a AS (
    SELECT a0.s_us, a0.pid, a0.arrival_us,
           a0.pid * span.stride + (a0.arrival_us - span.t0) AS k,
           a0.pid * span.stride + (a0.s_us - span.t0) AS k_start
    FROM a0 CROSS JOIN span
),
-- each sort carries only its key and the key of the row's phase start (the group)
gaps AS (
    SELECT k_start AS grp, CASE WHEN prev >= k_start THEN (k - prev) / 1e6 END AS gap_s
    FROM (SELECT k, k_start, lag(k) OVER (ORDER BY k) AS prev FROM a)
    UNION ALL
    SELECT s_us - span.t0 - span.stride AS grp,  -- negative: the all-pools groups
           CASE WHEN prev >= s_us THEN (arrival_us - prev) / 1e6 END
    FROM (SELECT arrival_us, s_us, lag(arrival_us) OVER (ORDER BY arrival_us) AS prev FROM a)
    CROSS JOIN span
),
cv AS (
    SELECT CASE WHEN g.grp < 0 THEN g.grp + span.stride + span.t0
                ELSE g.grp % span.stride + span.t0 END AS s_us,
           CASE WHEN g.grp < 0 THEN 0 ELSE g.grp // span.stride END AS pid,
           g.gaps, g.cv
    FROM (SELECT grp, count(gap_s) AS gaps, stddev_samp(gap_s) / nullif(avg(gap_s), 0) AS cv
          FROM gaps GROUP BY grp) g
    CROSS JOIN span
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
    cv.gaps AS inter_arrivals,
    cv.cv AS interarrival_cv,
    1 / nullif(cv.cv * cv.cv, 0) AS gamma_shape_k,
    ph.windows,
    d.n * 1.0 / ph.windows AS mean_count,
    (d.sum_sq - d.n * d.n * 1.0 / ph.windows) / nullif(ph.windows - 1, 0)
        / nullif(d.n * 1.0 / ph.windows, 0) AS index_of_dispersion,
    'first attempts (attempt = 0)' AS input
FROM cv
JOIN disp d ON d.s_us = cv.s_us AND d.pid = cv.pid
JOIN ph ON ph.s_us = cv.s_us
LEFT JOIN pools p ON p.pid = cv.pid
