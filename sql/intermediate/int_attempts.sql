-- One row per attempt with its durations in seconds (integer epoch microseconds keep
-- sub-second precision on every engine) and the phase/segment of its logical request.
-- Kept narrow on purpose: it is as long as `requests` and every byte is written to disk.
-- Queue wait (METRICS.md, queue wait) counts every attempt: one that started waited until
-- its start; one that left without starting (dropped, abandoned, timed out in queue) waited
-- until it left, its end_ts (right-censored: `wait_censored`). An unstarted attempt without a
-- recorded end_ts (TELEMETRY.md allows it) counts at the pilot's cap, the longest wait any
-- attempt recorded: leaving them out would keep only the attempts that got served.
-- Most logical requests are one first attempt: such an attempt is its logical request, so
-- its phase, segment and met_sla are int_retried_requests' rules applied to its own row, and
-- int_logical_requests reads its row from here (`logical_retried` false).
-- Only the logical requests that have a retry (or an orphan retry) are looked up in
-- int_retried_requests: joining every attempt to a table of every logical request on its
-- 20-character id built a hash table as long as the table, which spilled at 100 M attempts.
WITH cap AS (
    SELECT max(coalesce(epoch_us(start_ts), epoch_us(end_ts)) - epoch_us(arrival_ts)) / 1e6
               AS cap_s
    FROM requests
    WHERE pilot = $pilot
),
-- every logical request with an attempt that is not a first attempt; its phase is NULL when
-- it has no row in int_retried_requests (it began outside every phase): its attempts are out
retried AS (
    SELECT k.logical_id, l.phase, l.segment, l.met_sla
    FROM (
        SELECT DISTINCT coalesce(parent_request_id, request_id) AS logical_id
        FROM requests
        WHERE pilot = $pilot AND (parent_request_id IS NOT NULL OR attempt <> 0)
    ) k
    LEFT JOIN (
        SELECT logical_id, phase, segment, met_sla
        FROM int_retried_requests
        WHERE pilot = $pilot
    ) l ON l.logical_id = k.logical_id
),
scope AS (SELECT * FROM pilot_scope WHERE pilot = $pilot),
tagged AS (
    SELECT
        r.pilot, r.request_id, r.attempt, r.pool, r.gpu, r.priority, r.arrival_ts,
        r.dispatch_ts, r.start_ts, r.end_ts, r.status,
        m.logical_id IS NOT NULL AS retried,
        m.phase AS m_phase, m.segment AS m_segment, m.met_sla AS m_met_sla
    FROM requests r
    LEFT JOIN retried m ON m.logical_id = coalesce(r.parent_request_id, r.request_id)
    WHERE r.pilot = $pilot
),
logical AS (
    -- a lone first attempt: int_retried_requests' phase, segment and met_sla rules on its
    -- row (first arrival = its arrival, last end = its end, outcome = its status)
    SELECT a.*,
        CASE WHEN a.retried THEN a.m_phase ELSE p.phase END AS phase,
        CASE
            WHEN a.retried THEN a.m_segment
            WHEN s.kind = 'all' THEN 'treatment'
            WHEN s.kind = 'pools' THEN
                CASE WHEN list_contains(s.pools, a.pool) THEN 'treatment' ELSE 'control' END
            WHEN s.kind = 'priorities' THEN
                CASE WHEN list_contains(s.priorities, a.priority) THEN 'treatment'
                     ELSE 'control' END
            WHEN ('0x' || substr(md5(a.request_id), 1, 8))::UBIGINT / 4294967296.0 < s.share
                THEN 'treatment'
            ELSE 'control'
        END AS segment,
        CASE WHEN a.retried THEN a.m_met_sla
             ELSE (a.status = 'ok'
                   AND a.end_ts IS NOT NULL
                   AND (epoch_us(a.end_ts) - epoch_us(a.arrival_ts)) / 1e6 <= t.e2e_ms / 1e3)
        END AS met_sla
    FROM tagged a
    CROSS JOIN scope s
    LEFT JOIN phases p
      ON NOT a.retried
     AND p.pilot = $pilot
     AND a.arrival_ts >= p.start_ts
     AND a.arrival_ts <  p.end_ts
    LEFT JOIN sla_targets t ON t.pilot = $pilot AND t.priority = a.priority
)
SELECT
    r.pilot,
    r.attempt,
    r.pool,
    r.gpu,
    r.priority,
    r.arrival_ts,
    r.start_ts,
    r.end_ts,
    r.status,
    r.phase,
    r.segment,
    r.met_sla AS logical_met_sla,
    r.retried AS logical_retried,
    epoch_us(r.arrival_ts) AS arrival_us,
    coalesce((coalesce(epoch_us(r.start_ts), epoch_us(r.end_ts)) - epoch_us(r.arrival_ts)) / 1e6,
             cap.cap_s)                                       AS queue_wait_s,
    r.start_ts IS NULL                                        AS wait_censored,
    (epoch_us(r.dispatch_ts) - epoch_us(r.arrival_ts)) / 1e6  AS sched_delay_s,
    (epoch_us(r.end_ts) - epoch_us(r.arrival_ts)) / 1e6       AS e2e_s,
    (epoch_us(r.end_ts) - epoch_us(r.start_ts)) / 1e6         AS service_s
FROM logical r
CROSS JOIN cap
WHERE r.phase IS NOT NULL
