-- Per pool and 1-minute window (by attempt arrival): load, queue wait P95, latency P95 of
-- attempts that completed ok, timeouts, SLA adherence of logical requests first arriving in
-- the window, and whether any burst window falls inside it. A pilot without per-request
-- rows takes its arrivals from its arrival trace (`arrivals`: pool 'all', one first attempt
-- per arrival, no status): load and bursts only, every latency column NULL.
WITH have AS (SELECT count(*) AS attempts FROM int_attempts WHERE pilot = $pilot),
a AS (
    SELECT pool, phase, segment, arrival_us // 60000000 AS m, queue_wait_s, e2e_s, status,
           attempt, logical_met_sla
    FROM int_attempts
    WHERE pilot = $pilot
    UNION ALL
    SELECT 'all' AS pool, p.phase, CAST(NULL AS VARCHAR) AS segment,
           epoch_us(t.ts) // 60000000 AS m, CAST(NULL AS DOUBLE) AS queue_wait_s,
           CAST(NULL AS DOUBLE) AS e2e_s, CAST(NULL AS VARCHAR) AS status, 0 AS attempt,
           CAST(NULL AS BOOLEAN) AS logical_met_sla
    FROM arrivals t
    CROSS JOIN have h
    LEFT JOIN phases p ON p.pilot = $pilot AND t.ts >= p.start_ts AND t.ts < p.end_ts
    WHERE t.pilot = $pilot AND h.attempts = 0
),
-- int_pool_minutes' P95s at the same grain (pool x arrival minute, every attempt): one
-- implementation, and no second copy of every value in quantile state. A pool-minute outside
-- its grid (a retry arriving after the last phase, a trace's 'all' pool) is computed here.
ipm AS (
    SELECT pool, m, queue_wait_p95_s, latency_p95_s
    FROM int_pool_minutes
    WHERE pilot = $pilot AND arrivals > 0
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
    CASE WHEN count(DISTINCT a.segment) = 1 THEN min(a.segment)
         WHEN count(a.segment) > 0 THEN 'mixed' END AS segment,
    count(*) AS arrivals,
    count(*) / 60.0 AS arrival_rate_rps,
    CASE WHEN any_value(q.m) IS NOT NULL THEN any_value(q.queue_wait_p95_s)
         ELSE quantile_cont(a.queue_wait_s, 0.95) FILTER (WHERE q.m IS NULL)
    END AS queue_wait_p95_s,
    CASE WHEN any_value(q.m) IS NOT NULL THEN any_value(q.latency_p95_s)
         ELSE quantile_cont(a.e2e_s, 0.95) FILTER (WHERE q.m IS NULL AND a.status = 'ok')
    END AS latency_p95_s,
    -- trace arrivals have no status: no timeout count, no adherence (not zeros)
    CASE WHEN count(a.status) > 0 THEN count(*) FILTER (WHERE a.status = 'timeout') END
        AS timeouts,
    avg(CASE WHEN a.status IS NULL THEN NULL WHEN a.logical_met_sla THEN 1.0 ELSE 0.0 END)
        FILTER (WHERE a.attempt = 0)
        AS sla_adherence,
    coalesce(any_value(b.in_burst), false) AS in_burst
FROM a
LEFT JOIN bursts b ON b.pool = a.pool AND b.m = a.m
LEFT JOIN ipm q ON q.pool = a.pool AND q.m = a.m
GROUP BY a.pool, a.m
