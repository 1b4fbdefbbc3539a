-- Wave events (METRICS.md, WPI): for every burst episode in a pool and every *other* pool,
-- whether that pool's 1-min P95 latency exceeded wave_factor x its trailing median (trailing
-- burst_trailing_s, current minute excluded) within wave_lag_s after the episode started,
-- with the lag of the first exceedance and its strength (P95 / trailing median).
WITH th AS (SELECT * FROM int_thresholds WHERE pilot = $pilot),
lat AS (
    SELECT pool, m, latency_p95_s FROM int_pool_minutes
    WHERE pilot = $pilot AND latency_p95_s IS NOT NULL
),
trail AS (
    SELECT cur.pool, cur.m, cur.latency_p95_s, median(prev.latency_p95_s) AS trailing_median_s
    FROM lat cur
    CROSS JOIN th
    JOIN lat prev
      ON prev.pool = cur.pool AND prev.m < cur.m
     AND prev.m >= cur.m - CAST(th.burst_trailing_s / 60 AS BIGINT)
    GROUP BY cur.pool, cur.m, cur.latency_p95_s
),
ep AS (
    SELECT pool, episode_id, phase, start_ts, epoch_us(start_ts) // 60000000 AS m0
    FROM burst_episodes WHERE pilot = $pilot
),
pairs AS (
    SELECT ep.*, o.pool AS to_pool
    FROM ep JOIN (SELECT DISTINCT pool FROM lat) o ON o.pool <> ep.pool
),
hits AS (
    SELECT p.episode_id, p.to_pool,
           min(t.m) FILTER (WHERE t.latency_p95_s > th.wave_factor * t.trailing_median_s)
               AS first_m,
           max(t.latency_p95_s / nullif(t.trailing_median_s, 0)) AS max_ratio
    FROM pairs p
    CROSS JOIN th
    JOIN trail t
      ON t.pool = p.to_pool AND t.m >= p.m0
     AND t.m <= p.m0 + CAST(th.wave_lag_s / 60 AS BIGINT)
    GROUP BY p.episode_id, p.to_pool
)
SELECT
    $pilot AS pilot,
    p.phase,
    p.pool AS from_pool,
    p.episode_id,
    p.start_ts AS episode_start_ts,
    p.to_pool,
    h.first_m IS NOT NULL AS exceeded,
    CASE WHEN h.first_m IS NOT NULL
         THEN greatest(h.first_m * 60000000 - epoch_us(p.start_ts), 0) / 1e6 END AS lag_s,
    h.max_ratio AS strength
FROM pairs p
LEFT JOIN hits h ON h.episode_id = p.episode_id AND h.to_pool = p.to_pool
