-- One row per attempt with its durations in seconds (integer epoch microseconds keep
-- sub-second precision on every engine) and the phase/segment of its logical request.
-- Kept narrow on purpose: it is as long as `requests` and every byte is written to disk.
-- Queue wait (METRICS.md, queue wait) counts every attempt: one that started waited until
-- its start; one that left without starting (dropped, abandoned, timed out in queue) waited
-- until it left, its end_ts (right-censored: `wait_censored`). An unstarted attempt without a
-- recorded end_ts (TELEMETRY.md allows it) counts at the pilot's cap, the longest wait any
-- attempt recorded: leaving them out would keep only the attempts that got served.
WITH cap AS (
    SELECT max(coalesce(epoch_us(start_ts), epoch_us(end_ts)) - epoch_us(arrival_ts)) / 1e6
               AS cap_s
    FROM requests
    WHERE pilot = $pilot
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
    l.phase,
    l.segment,
    l.met_sla AS logical_met_sla,
    epoch_us(r.arrival_ts) AS arrival_us,
    coalesce((coalesce(epoch_us(r.start_ts), epoch_us(r.end_ts)) - epoch_us(r.arrival_ts)) / 1e6,
             cap.cap_s)                                       AS queue_wait_s,
    r.start_ts IS NULL                                        AS wait_censored,
    (epoch_us(r.dispatch_ts) - epoch_us(r.arrival_ts)) / 1e6  AS sched_delay_s,
    (epoch_us(r.end_ts) - epoch_us(r.arrival_ts)) / 1e6       AS e2e_s,
    (epoch_us(r.end_ts) - epoch_us(r.start_ts)) / 1e6         AS service_s,
    (epoch_us(r.first_token_ts) - epoch_us(r.arrival_ts)) / 1e6 AS ttft_s
FROM requests r
CROSS JOIN cap
JOIN int_logical_requests l
  ON l.pilot = $pilot
 AND l.logical_id = coalesce(r.parent_request_id, r.request_id)
WHERE r.pilot = $pilot
