-- One row per logical request: a first attempt together with its retries (METRICS.md, Grain).
-- Outcome = the last attempt's status; latency = first arrival -> last attempt's end.
-- Phase and segment are decided by the first attempt, so retries never split a request.
WITH attempts AS (
    SELECT
        coalesce(parent_request_id, request_id) AS logical_id,
        attempt, pool, priority, model_class, arrival_ts, end_ts, status, start_ts
    FROM requests
    WHERE pilot = $pilot
),
logical AS (
    SELECT
        logical_id,
        arg_min(pool, attempt)          AS pool,
        arg_min(priority, attempt)      AS priority,
        arg_min(model_class, attempt)   AS model_class,
        min(arrival_ts)                 AS first_arrival_ts,
        arg_max(end_ts, attempt)        AS last_end_ts,
        arg_max(status, attempt)        AS outcome,
        count(*)                        AS attempts
    FROM attempts
    GROUP BY logical_id
),
scope AS (SELECT * FROM pilot_scope WHERE pilot = $pilot),
phased AS (
    SELECT l.*, p.phase
    FROM logical l
    JOIN phases p
      ON p.pilot = $pilot
     AND l.first_arrival_ts >= p.start_ts
     AND l.first_arrival_ts <  p.end_ts
)
SELECT
    $pilot AS pilot,
    d.logical_id,
    d.phase,
    CASE
        WHEN s.kind = 'all' THEN 'treatment'
        WHEN s.kind = 'pools' THEN
            CASE WHEN list_contains(s.pools, d.pool) THEN 'treatment' ELSE 'control' END
        WHEN s.kind = 'priorities' THEN
            CASE WHEN list_contains(s.priorities, d.priority) THEN 'treatment' ELSE 'control' END
        -- hashed share: a stable pseudo-random split of logical requests
        WHEN ('0x' || substr(md5(d.logical_id), 1, 8))::UBIGINT / 4294967296.0 < s.share
            THEN 'treatment'
        ELSE 'control'
    END AS segment,
    d.pool,
    d.priority,
    d.model_class,
    d.first_arrival_ts,
    d.last_end_ts,
    d.outcome,
    d.attempts,
    (epoch_us(d.last_end_ts) - epoch_us(d.first_arrival_ts)) / 1e6 AS latency_s,
    t.e2e_ms / 1e3 AS sla_s,
    (d.outcome = 'ok'
        AND d.last_end_ts IS NOT NULL
        AND (epoch_us(d.last_end_ts) - epoch_us(d.first_arrival_ts)) / 1e6 <= t.e2e_ms / 1e3)
        AS met_sla
FROM phased d
CROSS JOIN scope s
LEFT JOIN sla_targets t ON t.pilot = $pilot AND t.priority = d.priority
