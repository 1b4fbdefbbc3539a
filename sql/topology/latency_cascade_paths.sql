-- Latency cascade paths: pool -> pool edges from the WPI wave events, per phase: how many of
-- the source pool's burst episodes were followed by a latency wave in the target pool, the
-- share, the mean lag and the mean strength (target P95 / its trailing median).
SELECT
    $pilot AS pilot,
    phase,
    from_pool,
    to_pool,
    count(*)                                   AS episodes,
    count(*) FILTER (WHERE exceeded)           AS waves,
    avg(CASE WHEN exceeded THEN 1.0 ELSE 0.0 END) AS share,
    avg(lag_s) FILTER (WHERE exceeded)         AS mean_lag_s,
    avg(strength) FILTER (WHERE exceeded)      AS mean_strength
FROM int_wave_events
WHERE pilot = $pilot
GROUP BY phase, from_pool, to_pool
