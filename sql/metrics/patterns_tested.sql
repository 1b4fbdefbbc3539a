-- Every pattern of METRICS.md with whether it could be tested on this pilot's telemetry,
-- how many candidates it examined and how many findings crossed the threshold; when not
-- tested, `reason` says "not tested: needs ..." naming the telemetry that was missing (the
-- report lists tested-but-not-found too, and only those read as "none found").
-- For the patterns whose cost is queue wait: the wait attributed to their detected findings
-- (each attempt's wait to at most one finding, findings.sql) and its share of the pilot's
-- total queue wait over its phases; the shares of all patterns sum to at most 1.
WITH have AS (
    SELECT
        (SELECT count(*) FROM int_attempts WHERE pilot = $pilot) > 0            AS req,
        (SELECT count(*) FROM jobs WHERE pilot = $pilot AND start_ts IS NOT NULL
                                     AND pool IS NOT NULL) > 0                   AS job,
        (SELECT count(*) FROM int_gpu_samples
         WHERE pilot = $pilot AND series = 'gpu_util') > 0                       AS util,
        (SELECT count(*) FROM int_gpu_samples
         WHERE pilot = $pilot AND series = 'power_w') > 0                        AS power,
        (SELECT count(*) FROM metrics_headline WHERE pilot = $pilot AND metric = 'hcl_pp'
                                               AND value IS NOT NULL) > 0        AS hcl,
        (SELECT count(*) FROM int_gpu_samples
         WHERE pilot = $pilot AND series = 'sm_active') > 0                      AS sm,
        (SELECT coalesce(sum(retries), 0) FROM int_pool_minutes
         WHERE pilot = $pilot) > 0                                               AS retried
),
p AS (
    SELECT * FROM (VALUES
        (1, 'batch_scheduling_conflict'), (2, 'burst_amplification'),
        (3, 'priority_inversion'), (4, 'idle_overload_oscillation'),
        (5, 'retry_timeout_amplification'), (6, 'energy_latency_mismatch'),
        (7, 'non_productive_queue_waiting'), (8, 'hidden_gpu_occupancy_loss'),
        (9, 'legitimate_vs_amplifying_queueing')
    ) v(ord, pattern)
),
f AS (
    SELECT pattern, count(*) AS candidates, count(*) FILTER (WHERE detected) AS found,
           sum(attributed_queue_wait_s) AS attributed_s
    FROM findings WHERE pilot = $pilot GROUP BY pattern
),
total_wait AS (
    SELECT sum(queue_wait_s) AS total_s
    FROM int_attempts WHERE pilot = $pilot AND phase IS NOT NULL
),
-- the telemetry each pattern reads, named when absent
r0 AS (
    SELECT p.ord, p.pattern, h.retried, concat_ws(' and ',
        CASE WHEN p.pattern IN ('idle_overload_oscillation', 'hidden_gpu_occupancy_loss')
                  AND NOT h.util THEN 'gpu_util samples (DCGM, nvidia-smi or Prometheus)' END,
        CASE WHEN NOT h.req THEN
            CASE p.pattern
                WHEN 'batch_scheduling_conflict' THEN 'per-request rows (queue waits)'
                WHEN 'priority_inversion' THEN 'per-request rows (queue waits by priority)'
                WHEN 'burst_amplification' THEN 'per-request rows (queue wait per attempt)'
                WHEN 'idle_overload_oscillation' THEN 'per-request rows (queue wait: overload)'
                WHEN 'retry_timeout_amplification'
                    THEN 'per-request rows with retries linked (parent_request_id)'
                WHEN 'energy_latency_mismatch' THEN 'per-request rows (latency)'
                WHEN 'non_productive_queue_waiting'
                    THEN 'per-request rows (queue wait and latency)'
                WHEN 'hidden_gpu_occupancy_loss' THEN CASE WHEN NOT h.sm
                    THEN 'either sm_active samples (DCGM profiling) or per-request rows' END
                WHEN 'legitimate_vs_amplifying_queueing'
                    THEN 'per-request rows (queue wait per attempt)'
            END
        END,
        CASE WHEN p.pattern IN ('batch_scheduling_conflict', 'priority_inversion')
                  AND NOT h.job THEN 'scheduler jobs with pool and run times (sacct)' END,
        CASE WHEN p.pattern = 'energy_latency_mismatch' AND NOT h.power
             THEN 'GPU power samples (power_w)' END,
        CASE WHEN p.pattern = 'hidden_gpu_occupancy_loss' AND (h.req OR h.sm) AND h.util
                  AND NOT h.hcl
             THEN 'GPU samples on the GPUs that served the requests' END
    ) AS needs
    FROM p CROSS JOIN have h
),
r AS (
    SELECT ord, pattern, retried,
           CASE WHEN needs <> '' THEN 'not tested: needs ' || needs END AS not_measured
    FROM r0
)
SELECT
    $pilot AS pilot,
    r.pattern,
    r.not_measured IS NULL AS tested,
    coalesce(f.found, 0) > 0 AS found,
    coalesce(f.found, 0) AS findings,
    coalesce(f.candidates, 0) AS candidates,
    coalesce(r.not_measured,
             CASE WHEN coalesce(f.found, 0) > 0 THEN 'tested: found'
                  -- zero retries may be real, or the telemetry links no retry to its request
                  WHEN r.pattern = 'retry_timeout_amplification' AND NOT r.retried
                      THEN 'tested: no retry attempts in the telemetry (attempt > 0)'
                  -- judged per pool and phase (findings.sql)
                  WHEN r.pattern = 'non_productive_queue_waiting'
                      THEN 'tested per pool and phase: no pool''s Delay Index crossed '
                           || 'its threshold'
                  WHEN r.pattern = 'hidden_gpu_occupancy_loss'
                      THEN 'tested per pool and phase: no pool''s hidden capacity loss '
                           || 'crossed its threshold'
                  ELSE 'tested: no candidate crossed its threshold' END) AS reason,
    CAST(CASE WHEN r.not_measured IS NULL AND r.pattern IN (
                  'priority_inversion', 'batch_scheduling_conflict', 'burst_amplification',
                  'retry_timeout_amplification', 'legitimate_vs_amplifying_queueing')
              THEN coalesce(f.attributed_s, 0) END AS DOUBLE) AS attributed_queue_wait_s,
    CAST(CASE WHEN r.not_measured IS NULL AND r.pattern IN (
                  'priority_inversion', 'batch_scheduling_conflict', 'burst_amplification',
                  'retry_timeout_amplification', 'legitimate_vs_amplifying_queueing')
              THEN coalesce(f.attributed_s, 0) / nullif(tw.total_s, 0) END AS DOUBLE)
        AS queue_wait_share
FROM r LEFT JOIN f ON f.pattern = r.pattern
CROSS JOIN total_wait tw
ORDER BY r.ord
