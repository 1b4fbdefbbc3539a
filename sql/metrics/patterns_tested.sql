-- Every pattern of METRICS.md with whether it could be tested on this pilot's telemetry,
-- how many candidates it examined and how many findings crossed the threshold; when not
-- tested, `reason` says which input was missing (the report lists tested-but-not-found too).
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
    SELECT pattern, count(*) AS candidates, count(*) FILTER (WHERE detected) AS found
    FROM findings WHERE pilot = $pilot GROUP BY pattern
),
r AS (
    SELECT p.ord, p.pattern, h.retried,
           CASE
               WHEN NOT h.req THEN 'not measured: no per-request rows'
               WHEN p.pattern IN ('batch_scheduling_conflict', 'priority_inversion')
                    AND NOT h.job THEN 'not measured: no jobs with pool and run times'
               WHEN p.pattern = 'idle_overload_oscillation' AND NOT h.util
                    THEN 'not measured: no gpu_util telemetry (idle cannot be told apart)'
               WHEN p.pattern = 'energy_latency_mismatch' AND NOT h.power
                    THEN 'not measured: no power_w telemetry'
               WHEN p.pattern = 'hidden_gpu_occupancy_loss' AND NOT h.hcl
                    THEN 'not measured: no gpu_util telemetry for HCL'
           END AS not_measured
    FROM p CROSS JOIN have h
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
                  ELSE 'tested: no candidate crossed its threshold' END) AS reason
FROM r LEFT JOIN f ON f.pattern = r.pattern
ORDER BY r.ord
