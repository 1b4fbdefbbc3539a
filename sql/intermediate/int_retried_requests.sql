-- The logical requests that have a retry (METRICS.md, Grain): a first attempt together with
-- its retries, or an orphan retry's attempts when their first attempt is missing. One row
-- per such request; int_logical_requests adds the lone first attempts from int_attempts.
-- Outcome = the last attempt's status; latency = first arrival -> last attempt's end.
-- Phase and segment are decided by the first attempt, so retries never split a request.
-- Only these ~10 % of requests are written here: a lone first attempt is its own logical
-- request and int_attempts already holds its row (writing 9 M lone rows again was most of
-- the old table's build, 4.7 s of 41 s end to end at 10 M attempts).
-- The retries are grouped by logical id, and their first attempts (parent_request_id NULL,
-- attempt 0; ingest keeps one row per (request_id, attempt)) joined to that aggregate.
WITH firsts AS (
    SELECT request_id AS logical_id, pool, priority, arrival_ts, end_ts, status
    FROM requests
    WHERE pilot = $pilot AND parent_request_id IS NULL AND attempt = 0
),
retries AS (
    SELECT
        coalesce(parent_request_id, request_id) AS logical_id,
        min(attempt)                    AS min_attempt,
        max(attempt)                    AS max_attempt,
        arg_min(pool, attempt)          AS pool,
        arg_min(priority, attempt)      AS priority,
        min(arrival_ts)                 AS first_arrival_ts,
        arg_max(end_ts, attempt)        AS last_end_ts,  -- of the last attempt that has one
        max(attempt) FILTER (WHERE end_ts IS NOT NULL) AS last_end_attempt,
        arg_max(status, attempt)        AS outcome,
        count(*)                        AS attempts
    FROM requests
    WHERE pilot = $pilot AND (parent_request_id IS NOT NULL OR attempt <> 0)
    GROUP BY coalesce(parent_request_id, request_id)
),
joined AS (
    -- the first attempt (attempt 0) is the lowest- / highest-numbered one unless a retry
    -- numbers below / above it (arg_min/arg_max skip NULL values: end_ts may be NULL, the
    -- other columns are NOT NULL in requests)
    SELECT
        r.logical_id,
        f.logical_id IS NOT NULL AND coalesce(r.min_attempt, 0) >= 0 AS first_is_min,
        f.logical_id IS NOT NULL AND coalesce(r.max_attempt, 0) <= 0 AS first_is_max,
        f.end_ts IS NOT NULL AND coalesce(r.last_end_attempt, 0) <= 0 AS first_end_is_last,
        f.pool AS f_pool, f.priority AS f_priority,
        f.arrival_ts, f.end_ts, f.status,
        r.pool AS r_pool, r.priority AS r_priority,
        r.first_arrival_ts AS r_arrival_ts, r.last_end_ts AS r_end_ts, r.outcome AS r_status,
        CASE WHEN f.logical_id IS NULL THEN 0 ELSE 1 END + coalesce(r.attempts, 0) AS attempts
    FROM retries r
    LEFT JOIN firsts f ON f.logical_id = r.logical_id
),
logical AS (
    SELECT
        logical_id,
        CASE WHEN first_is_min THEN f_pool ELSE r_pool END               AS pool,
        CASE WHEN first_is_min THEN f_priority ELSE r_priority END       AS priority,
        least(arrival_ts, r_arrival_ts)                                  AS first_arrival_ts,
        CASE WHEN first_end_is_last THEN end_ts ELSE r_end_ts END        AS last_end_ts,
        CASE WHEN first_is_max THEN status ELSE r_status END             AS outcome,
        attempts
    FROM joined
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
    d.first_arrival_ts,
    d.outcome,
    d.attempts,
    (epoch_us(d.last_end_ts) - epoch_us(d.first_arrival_ts)) / 1e6 AS latency_s,
    (d.outcome = 'ok'
        AND d.last_end_ts IS NOT NULL
        AND (epoch_us(d.last_end_ts) - epoch_us(d.first_arrival_ts)) / 1e6 <= t.e2e_ms / 1e3)
        AS met_sla
FROM phased d
CROSS JOIN scope s
LEFT JOIN sla_targets t ON t.pilot = $pilot AND t.priority = d.priority
