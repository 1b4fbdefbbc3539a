-- Arrival burstiness per phase x pool (and 'all' pools) of first attempts (retries are the
-- system's own echo, not offered load): CV of inter-arrival times, index of dispersion
-- (variance / mean) of counts per burst window (empty windows included), Gamma shape
-- k = 1 / CV^2 (k = 1 Poisson, k < 1 burstier), as vLLM's --burstiness and trace studies use.
WITH th AS (
    SELECT CAST(burst_window_s * 1e6 AS BIGINT) AS win_us
    FROM int_thresholds WHERE pilot = $pilot
),
ph AS (
    SELECT phase, epoch_us(start_ts) AS s_us, epoch_us(end_ts) AS e_us
    FROM phases WHERE pilot = $pilot
),
a AS (
    SELECT phase, pool, arrival_us FROM int_attempts WHERE pilot = $pilot AND attempt = 0
),
both_scopes AS (
    SELECT phase, pool, arrival_us FROM a
    UNION ALL
    SELECT phase, '(all pools)' AS pool, arrival_us FROM a
),
gaps AS (
    SELECT phase, pool, arrival_us,
           arrival_us - lag(arrival_us) OVER (PARTITION BY phase, pool ORDER BY arrival_us)
               AS gap_us
    FROM both_scopes
),
counts AS (
    SELECT g.phase, g.pool, g.arrival_us // th.win_us AS w, count(*) AS c
    FROM gaps g CROSS JOIN th
    GROUP BY ALL
),
disp AS (
    SELECT c.phase, c.pool, sum(c.c) AS n, sum(c.c * c.c) AS sum_sq,
           -- windows of the phase, empty ones included
           any_value((ph.e_us - 1) // th.win_us - ph.s_us // th.win_us + 1) AS windows
    FROM counts c CROSS JOIN th JOIN ph ON ph.phase = c.phase
    GROUP BY c.phase, c.pool
),
cv AS (
    SELECT phase, pool, count(gap_us) AS gaps,
           stddev_samp(gap_us / 1e6) / nullif(avg(gap_us / 1e6), 0) AS cv
    FROM gaps
    GROUP BY phase, pool
)
SELECT
    $pilot AS pilot,
    cv.phase,
    cv.pool,
    d.n AS arrivals,
    cv.gaps AS inter_arrivals,
    cv.cv AS interarrival_cv,
    1 / nullif(cv.cv * cv.cv, 0) AS gamma_shape_k,
    d.windows,
    d.n * 1.0 / d.windows AS mean_count,
    (d.sum_sq - d.n * d.n * 1.0 / d.windows) / nullif(d.windows - 1, 0)
        / nullif(d.n * 1.0 / d.windows, 0) AS index_of_dispersion,
    'first attempts (attempt = 0)' AS input
FROM cv JOIN disp d ON d.phase = cv.phase AND d.pool = cv.pool
