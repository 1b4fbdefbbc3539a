-- Queue saturation zones: pool x 1-minute cells whose queue-wait P95 exceeds SLA/2 (P95 of
-- wait / own class's SLA target > 0.5), adjacent cells of a pool merged into one zone.
WITH cells AS (
    SELECT pool, m, phase, arrivals, queue_wait_p95_s, queue_depth, timeouts,
           m - row_number() OVER (PARTITION BY pool ORDER BY m) AS island
    FROM int_pool_minutes
    WHERE pilot = $pilot AND wait_sla_ratio_p95 > 0.5
)
SELECT
    $pilot AS pilot,
    pool,
    pool || ':' || CAST(min(m) AS VARCHAR)    AS zone_id,
    arg_min(phase, m)                          AS phase,
    make_timestamp(min(m) * 60000000)          AS start_ts,
    make_timestamp((max(m) + 1) * 60000000)    AS end_ts,
    count(*)                                   AS minutes,
    count(*) * 60.0                            AS duration_s,
    max(queue_wait_p95_s)                      AS peak_wait_p95_s,
    max(queue_depth)                           AS max_queue_depth,
    sum(arrivals)                              AS arrivals,
    sum(timeouts)                              AS timeouts
FROM cells
GROUP BY pool, island
