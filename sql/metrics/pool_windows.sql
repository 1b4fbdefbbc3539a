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
),
-- every row is aggregated to its pool x minute before any join: the P95s, bursts and the
-- pool-minutes outside int_pool_minutes are looked up per group, not per row (10 M bench:
-- two hash joins of every row were half of this model's time)
agg AS (
    SELECT
        pool, m,
        min(phase) AS phase,
        -- one segment or 'mixed' (min = max: the same answer as count(DISTINCT) = 1)
        CASE WHEN min(segment) = max(segment) THEN min(segment)
             WHEN count(segment) > 0 THEN 'mixed' END AS segment,
        count(*) AS arrivals,
        -- trace arrivals have no status: no timeout count, no adherence (not zeros)
        CASE WHEN count(status) > 0 THEN count(*) FILTER (WHERE status = 'timeout') END
            AS timeouts,
        avg(CASE WHEN status IS NULL THEN NULL WHEN logical_met_sla THEN 1.0 ELSE 0.0 END)
            FILTER (WHERE attempt = 0)
            AS sla_adherence
    FROM a
    GROUP BY pool, m
),
-- the attempts' pool-minutes int_pool_minutes does not hold; their P95s from their rows
-- (trace arrivals have no waits or latencies: NULL, as quantile_cont of none)
missing AS (
    SELECT g.pool, g.m FROM agg g
    WHERE NOT EXISTS (SELECT 1 FROM ipm q WHERE q.pool = g.pool AND q.m = g.m)
),
own_q AS (
    SELECT a.pool, a.arrival_us // 60000000 AS m,
           quantile_cont(a.queue_wait_s, 0.95) AS queue_wait_p95_s,
           quantile_cont(CASE WHEN a.status = 'ok' THEN a.e2e_s END, 0.95) AS latency_p95_s
    FROM int_attempts a
    JOIN missing x  -- one row per pool-minute; a NULL pool is a pool-minute of its own
      ON x.pool IS NOT DISTINCT FROM a.pool AND x.m = a.arrival_us // 60000000
    WHERE a.pilot = $pilot
    GROUP BY ALL
)
SELECT
    $pilot AS pilot,
    g.pool,
    make_timestamp(g.m * 60000000) AS window_start,
    g.phase,
    g.segment,
    g.arrivals,
    g.arrivals / 60.0 AS arrival_rate_rps,
    CASE WHEN q.m IS NOT NULL THEN q.queue_wait_p95_s ELSE o.queue_wait_p95_s END
        AS queue_wait_p95_s,
    CASE WHEN q.m IS NOT NULL THEN q.latency_p95_s ELSE o.latency_p95_s END AS latency_p95_s,
    g.timeouts,
    g.sla_adherence,
    coalesce(b.in_burst, false) AS in_burst
FROM agg g
LEFT JOIN bursts b ON b.pool = g.pool AND b.m = g.m
LEFT JOIN ipm q ON q.pool = g.pool AND q.m = g.m
LEFT JOIN own_q o ON o.pool IS NOT DISTINCT FROM g.pool AND o.m = g.m
