-- Arrival rate per pool in fixed windows (default 10 s) over the whole pilot span, empty
-- windows included (they count as rate 0 in the trailing median). A window is a burst window
-- when rate >= burst_factor x median rate of the trailing windows (default 15 min, current
-- window excluded) and it holds at least burst_min_count arrivals (METRICS.md, Bursts).
-- Windows before a pool's first arrival are not observed, so not part of its series.
-- Arrivals are the request attempts (int_attempts); a pilot without per-request rows takes
-- them from its arrival trace (`arrivals`), which has no pool: pool 'all'.
WITH th AS (
    SELECT
        CAST(burst_window_s * 1e6 AS BIGINT)              AS win_us,
        burst_window_s                                     AS win_s,
        CAST(burst_trailing_s / burst_window_s AS BIGINT)  AS trailing_n,
        burst_factor,
        burst_min_count
    FROM int_thresholds
    WHERE pilot = $pilot
),
span AS (
    SELECT min(epoch_us(start_ts)) AS start_us, max(epoch_us(end_ts)) AS end_us
    FROM phases
    WHERE pilot = $pilot
),
have AS (SELECT count(*) AS attempts FROM int_attempts WHERE pilot = $pilot),
events AS (
    SELECT pool, arrival_us FROM int_attempts WHERE pilot = $pilot
    UNION ALL
    SELECT 'all' AS pool, epoch_us(t.ts) AS arrival_us
    FROM arrivals t CROSS JOIN have h
    WHERE t.pilot = $pilot AND h.attempts = 0
),
-- the arrivals per pool and window: the only read of the events (a CTE read twice is
-- materialized, every event written once more); a pool's first window comes from these counts
counts AS (
    SELECT a.pool, a.arrival_us // th.win_us AS w, count(*) AS arrivals
    FROM events a, th
    GROUP BY ALL
),
-- a pool is observed from its first arrival on: the empty windows before it (a trace that
-- starts after the phase) would give a trailing median of 0 and make its first windows
-- bursts, and the window holding that first arrival is only partly observed, so the series
-- starts at the next one (unless the first arrival falls in the phase's own first window).
-- min(arrival_us) // win_us = min(w): integer division is monotone.
pools AS (
    SELECT c.pool,
           CASE WHEN min(c.w) > any_value(span.start_us) // any_value(th.win_us)
                THEN min(c.w) + 1
                ELSE any_value(span.start_us) // any_value(th.win_us) END AS first_w
    FROM counts c, th, span
    GROUP BY c.pool
),
grid AS (
    SELECT pools.pool, g.w
    FROM pools
    CROSS JOIN (
        SELECT unnest(range(s.start_us // t.win_us, s.end_us // t.win_us)) AS w
        FROM span s, th t
    ) g
    WHERE g.w >= pools.first_w
),
rates AS (
    SELECT g.pool, g.w, coalesce(c.arrivals, 0) AS arrivals,
           coalesce(c.arrivals, 0) / th.win_s AS rate_rps
    FROM grid g
    CROSS JOIN th
    LEFT JOIN counts c ON c.pool = g.pool AND c.w = g.w
),
-- trailing median through an explicit self-join: frame sizes come from thresholds, which a
-- window frame cannot take as a parameter. Each window is paired with the windows 1 ..
-- trailing_n before it by an equi-join on (pool, w - k), not by a range join on pool, which
-- paired it with all of the pool's earlier windows first (10 M bench: 18.7 M pairs for 1.5 M)
lags AS (
    SELECT unnest(range(1, trailing_n + 1)) AS k FROM th
),
trail AS (
    SELECT cur.pool, cur.w, median(prev.rate_rps) AS trailing_median_rps
    FROM (SELECT r.pool, r.w, r.w - l.k AS pw FROM rates r CROSS JOIN lags l) cur
    JOIN rates prev
      ON prev.pool = cur.pool
     AND prev.w = cur.pw
    GROUP BY cur.pool, cur.w
)
SELECT
    $pilot AS pilot,
    r.pool,
    r.w,
    make_timestamp(r.w * th.win_us) AS window_start,
    p.phase,
    r.arrivals,
    r.rate_rps,
    t.trailing_median_rps,
    -- the first window has no trailing history: it cannot be judged a burst
    (r.arrivals >= th.burst_min_count
        AND t.trailing_median_rps IS NOT NULL
        AND r.rate_rps >= th.burst_factor * t.trailing_median_rps) AS is_burst
FROM rates r
CROSS JOIN th
LEFT JOIN trail t ON t.pool = r.pool AND t.w = r.w
LEFT JOIN phases p
  ON p.pilot = $pilot
 AND make_timestamp(r.w * th.win_us) >= p.start_ts
 AND make_timestamp(r.w * th.win_us) <  p.end_ts
