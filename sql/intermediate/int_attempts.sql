-- One row per attempt with its durations in seconds (integer epoch microseconds keep
-- sub-second precision on every engine) and the phase/segment of its logical request.
-- Kept narrow on purpose: it is as long as `requests` and every byte is written to disk.
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
    (epoch_us(r.start_ts) - epoch_us(r.arrival_ts)) / 1e6     AS queue_wait_s,
    (epoch_us(r.dispatch_ts) - epoch_us(r.arrival_ts)) / 1e6  AS sched_delay_s,
    (epoch_us(r.end_ts) - epoch_us(r.arrival_ts)) / 1e6       AS e2e_s,
    (epoch_us(r.end_ts) - epoch_us(r.start_ts)) / 1e6         AS service_s,
    (epoch_us(r.first_token_ts) - epoch_us(r.arrival_ts)) / 1e6 AS ttft_s
FROM requests r
JOIN int_logical_requests l
  ON l.pilot = $pilot
 AND l.logical_id = coalesce(r.parent_request_id, r.request_id)
WHERE r.pilot = $pilot
