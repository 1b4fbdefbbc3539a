-- Per pool and 1-minute window (by attempt arrival): load, queue wait P95, latency P95 of
-- attempts that completed ok, timeouts, SLA adherence of logical requests first arriving in
-- the window, and whether any burst window falls inside it.
WITH a AS (
    SELECT pool, phase, segment, arrival_us // 60000000 AS m, queue_wait_s, e2e_s, status,
           attempt, logical_met_sla
    FROM int_attempts
    WHERE pilot = $pilot
),
bursts AS (
    SELECT pool, epoch_us(window_start) // 60000000 AS m, bool_or(is_burst) AS in_burst
    FROM burst_windows
    WHERE pilot = $pilot
    GROUP BY ALL
)
SELECT
    $pilot AS pilot,
    a.pool,
    make_timestamp(a.m * 60000000) AS window_start,
    min(a.phase) AS phase,
    CASE WHEN count(DISTINCT a.segment) = 1 THEN min(a.segment) ELSE 'mixed' END AS segment,
    count(*) AS arrivals,
    count(*) / 60.0 AS arrival_rate_rps,
    quantile_cont(a.queue_wait_s, 0.95) AS queue_wait_p95_s,
    quantile_cont(a.e2e_s, 0.95) FILTER (WHERE a.status = 'ok') AS latency_p95_s,
    count(*) FILTER (WHERE a.status = 'timeout') AS timeouts,
    avg(CASE WHEN a.logical_met_sla THEN 1.0 ELSE 0.0 END) FILTER (WHERE a.attempt = 0)
        AS sla_adherence,
    coalesce(any_value(b.in_burst), false) AS in_burst
FROM a
LEFT JOIN bursts b ON b.pool = a.pool AND b.m = a.m
GROUP BY a.pool, a.m
