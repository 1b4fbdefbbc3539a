-- Arrival burstiness per phase x pool (and 'all' pools) of first attempts (retries are the
-- system's own echo, not offered load): CV of inter-arrival times, index of dispersion
-- (variance / mean) of counts per burst window (empty windows included), Gamma shape
-- k = 1 / CV^2 (k = 1 Poisson, k < 1 burstier), as vLLM's --burstiness and trace studies use.
-- Cost: gaps need time order, i.e. one sort per scope (per pool, all pools); each sort carries
-- only (phase, pool, arrival) and feeds ONE aggregate per scope, at pool x burst-window
-- grain, whose sums (arrivals, gaps, sum and sum of squares of gaps) are additive: the
-- '(all pools)' window counts and the per-pool CV are re-aggregated from those few rows.
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
pool_gaps AS (
    SELECT phase, pool, arrival_us // th.win_us AS w,
           (arrival_us - lag(arrival_us) OVER (PARTITION BY phase, pool ORDER BY arrival_us))
               / 1e6 AS gap_s
    FROM a CROSS JOIN th
),
all_gaps AS (
    SELECT phase,
           (arrival_us - lag(arrival_us) OVER (PARTITION BY phase ORDER BY arrival_us))
               / 1e6 AS gap_s
    FROM a
),
-- per pool x burst window: arrivals and gap sums
pw AS (
    SELECT phase, pool, w, count(*) AS c, count(gap_s) AS n_gaps, sum(gap_s) AS s1,
           sum(gap_s * gap_s) AS s2
    FROM pool_gaps
    GROUP BY ALL
),
aw AS (
    SELECT phase, '(all pools)' AS pool, count(gap_s) AS n_gaps, sum(gap_s) AS s1,
           sum(gap_s * gap_s) AS s2
    FROM all_gaps
    GROUP BY phase
),
win_counts AS (
    SELECT phase, pool, w, c FROM pw
    UNION ALL
    SELECT phase, '(all pools)', w, sum(c) FROM pw GROUP BY phase, w
),
disp AS (
    SELECT c.phase, c.pool, sum(c.c) AS n, sum(c.c * c.c) AS sum_sq,
           -- windows of the phase, empty ones included
           any_value((ph.e_us - 1) // th.win_us - ph.s_us // th.win_us + 1) AS windows
    FROM win_counts c CROSS JOIN th JOIN ph ON ph.phase = c.phase
    GROUP BY c.phase, c.pool
),
gap_sums AS (
    SELECT phase, pool, sum(n_gaps) AS n_gaps, sum(s1) AS s1, sum(s2) AS s2
    FROM pw GROUP BY phase, pool
    UNION ALL
    SELECT phase, pool, n_gaps, s1, s2 FROM aw
),
cv AS (
    -- sample standard deviation from the sums: (s2 - s1^2 / n) / (n - 1)
    SELECT phase, pool, n_gaps AS gaps,
           sqrt(greatest((s2 - s1 * s1 / n_gaps) / nullif(n_gaps - 1, 0), 0))
               / nullif(s1 / nullif(n_gaps, 0), 0) AS cv
    FROM gap_sums
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
