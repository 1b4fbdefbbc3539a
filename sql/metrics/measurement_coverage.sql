-- What each item of the report could be measured from on this pilot, and what it would
-- need when it could not: one row per item (stable key), with its report section, a status
-- (measured | approximate | aggregate | not_measured), the telemetry it was computed from
-- (`basis`), the telemetry that would unlock it (`needs`, only when not measured) and what
-- else that telemetry would unlock. Decided from which tables and series the pilot has (the
-- same presence tests the models use), so that the report can say "not tested: needs ..."
-- instead of "none found" wherever a detector had no input. Patterns: one row per
-- patterns_tested row (`pattern:<name>`).
-- per-request presence from int_pool_minutes (one small row per pool-minute instead of a
-- pass over the attempts)
WITH req AS (
    SELECT coalesce(sum(arrivals), 0) > 0                                   AS req,
           count(queue_wait_p95_s) > 0                                      AS started,
           count(latency_p95_s) > 0                                         AS ended,
           count(DISTINCT CASE WHEN latency_p95_s IS NOT NULL THEN pool END) >= 2 AS pools2
    FROM int_pool_minutes WHERE pilot = $pilot
),
sla AS (SELECT count(*) > 0 AS sla FROM sla_targets WHERE pilot = $pilot),
arr AS (SELECT count(*) > 0 AS arr FROM arrivals WHERE pilot = $pilot),
jb AS (
    SELECT count(*) > 0 AS jobs,
           count(*) FILTER (WHERE pool IS NOT NULL AND start_ts IS NOT NULL) > 0 AS jobs_run
    FROM jobs WHERE pilot = $pilot
),
ser AS (
    SELECT
        count(*) FILTER (WHERE series = 'e2e_latency_s_bucket') > 0              AS h_e2e,
        count(*) FILTER (WHERE series = 'queue_time_s_bucket') > 0               AS h_queue,
        count(*) FILTER (WHERE series = 'ttft_s_bucket') > 0                     AS h_ttft,
        count(*) FILTER (WHERE series IN ('tpot_s_bucket',
                         'vllm:time_per_output_token_seconds_bucket')) > 0       AS h_tpot,
        count(*) FILTER (WHERE regexp_matches(series, '^e2e_latency_(mean|p50|p95|p99)_s$'))
            > 0                                                                  AS a_e2e,
        count(*) FILTER (WHERE regexp_matches(series, '^queue_time_(mean|p50|p95|p99)_s$'))
            > 0                                                                  AS a_queue,
        count(*) FILTER (WHERE regexp_matches(series, '^ttft_(mean|p50|p95|p99)_s$'))
            > 0                                                                  AS a_ttft,
        count(*) FILTER (WHERE series = 'arrival_rate') > 0                      AS a_rate,
        -- a per-interval export: its gauges are aggregates too (as series_metrics labels them)
        count(*) FILTER (WHERE series = 'arrival_rate'
                         OR regexp_matches(series, '^.+_(mean|p50|p95|p99)_s$')) > 0
                                                                                 AS a_any,
        count(*) FILTER (WHERE series = 'queue_waiting') > 0                     AS qw,
        count(*) FILTER (WHERE series = 'queue_running') > 0                     AS qr,
        count(*) FILTER (WHERE series IN ('preemptions_total',
                         'vllm:num_preemptions_total')) > 0                      AS pre,
        count(*) FILTER (WHERE series IN ('request_success_total',
                         'vllm:request_success_total')) > 0                      AS succ,
        count(*) FILTER (WHERE series IN ('e2e_latency_s_count', 'queue_time_s_count',
                         'ttft_s_count')) > 0                                    AS hcount
    FROM samples WHERE pilot = $pilot
),
gpu AS (
    SELECT
        count(*) FILTER (WHERE series = 'gpu_util') > 0                          AS util,
        count(*) FILTER (WHERE series = 'gpu_util' AND per_gpu) > 0              AS util_gpu,
        count(*) FILTER (WHERE series = 'sm_active') > 0                         AS sm,
        count(*) FILTER (WHERE series = 'power_w') > 0                           AS power,
        count(*) FILTER (WHERE series = 'power_w' AND per_gpu) > 0               AS power_gpu,
        count(*) FILTER (WHERE series = 'energy_j') > 0                          AS energy,
        count(*) FILTER (WHERE series = 'mem_used_bytes') > 0                    AS mem,
        count(*) FILTER (WHERE series = 'mem_used_bytes' AND per_gpu) > 0        AS mem_gpu
    FROM int_gpu_samples WHERE pilot = $pilot
),
hcl AS (
    SELECT count(*) FILTER (WHERE value IS NOT NULL) > 0 AS hcl
    FROM metrics_headline WHERE pilot = $pilot AND metric = 'hcl_pp'
),
h AS (
    SELECT * FROM req CROSS JOIN sla CROSS JOIN arr CROSS JOIN jb CROSS JOIN ser
    CROSS JOIN gpu CROSS JOIN hcl
),
items AS (
    SELECT 1 AS ord, 'latency_quantiles' AS item, 'End-to-end latency quantiles' AS label,
           '2' AS section,
           CASE WHEN ended THEN 'measured' WHEN h_e2e THEN 'approximate'
                WHEN a_e2e THEN 'aggregate' ELSE 'not_measured' END AS status,
           CASE WHEN ended THEN 'requests (per-request rows)'
                WHEN h_e2e THEN 'vLLM e2e latency histogram buckets'
                ELSE 'aggregated per-interval latency series (e2e_latency_<stat>_s)' END
               AS basis,
           'per-request rows (requests), or vLLM e2e latency histograms, or an aggregated '
               || 'latency series' AS needs,
           'SLA adherence, latency waves and the what-if from per-request rows' AS unlocks
    FROM h
    UNION ALL
    SELECT 2, 'queue_wait', 'Queue wait', '2',
           CASE WHEN started THEN 'measured' WHEN h_queue THEN 'approximate'
                WHEN a_queue THEN 'aggregate' ELSE 'not_measured' END,
           CASE WHEN started THEN 'requests (per-request rows)'
                WHEN h_queue THEN 'vLLM queue_time histogram buckets'
                ELSE 'aggregated series queue_time_<stat>_s' END,
           'per-request rows (requests), or vLLM queue_time histograms, or an aggregated '
               || 'queue-time series',
           'Delay Index and queue saturation zones from per-request rows'
    FROM h
    UNION ALL
    SELECT 3, 'ttft', 'Time to first token', '2',
           CASE WHEN h_ttft THEN 'approximate' WHEN a_ttft THEN 'aggregate'
                ELSE 'not_measured' END,
           CASE WHEN h_ttft THEN 'vLLM time_to_first_token histogram buckets'
                ELSE 'aggregated series ttft_<stat>_s' END,
           'vLLM time_to_first_token histograms (ttft_s) or an aggregated TTFT series',
           NULL
    FROM h
    UNION ALL
    SELECT 4, 'tpot', 'Time per output token', '2',
           CASE WHEN h_tpot THEN 'approximate' ELSE 'not_measured' END,
           'vLLM time_per_output_token histogram buckets',
           'vLLM time_per_output_token histograms', NULL
    FROM h
    UNION ALL
    SELECT 5, 'sla_adherence', 'SLA adherence', '2',
           CASE WHEN req AND sla THEN 'measured' ELSE 'not_measured' END,
           'requests (per-request rows) against the SLA targets of pilot.yaml',
           CASE WHEN req THEN 'SLA targets per priority class in pilot.yaml (sla:)'
                ELSE 'per-request rows (requests) with SLA targets in pilot.yaml' END,
           'goodput, energy per good request and the SLA-risk map'
    FROM h
    UNION ALL
    SELECT 6, 'request_rate', 'Request rate', '2',
           CASE WHEN req OR arr OR succ OR hcount THEN 'measured'
                WHEN a_rate THEN 'aggregate' ELSE 'not_measured' END,
           CASE WHEN req THEN 'requests (first attempts per second)'
                WHEN arr THEN 'arrival trace (arrivals)'
                WHEN succ THEN 'vLLM request_success_total counter'
                WHEN hcount THEN 'latency histogram _count counter'
                ELSE 'aggregated series arrival_rate' END,
           'per-request rows, an arrival trace, vLLM request counters or a request-rate '
               || 'series', NULL
    FROM h
    UNION ALL
    SELECT 7, 'arrival_burstiness', 'Arrival burstiness (inter-arrival CV)', '4',
           CASE WHEN req OR arr THEN 'measured' ELSE 'not_measured' END,
           CASE WHEN req THEN 'requests (first attempts)' ELSE 'arrival trace (arrivals)' END,
           'per-request rows (requests) or an arrival trace with one timestamp per arrival',
           'burst episodes'
    FROM h
    UNION ALL
    SELECT 8, 'burst_episodes', 'Burst episodes', '4',
           CASE WHEN req OR arr THEN 'measured' ELSE 'not_measured' END,
           CASE WHEN req THEN 'requests (attempts per burst window)'
                ELSE 'arrival trace (arrivals per burst window)' END,
           'per-request rows (requests) or an arrival trace with one timestamp per arrival',
           'burst amplification and latency waves (with per-request rows)'
    FROM h
    UNION ALL
    SELECT 9, 'burst_amplification', 'Burst amplification', '4',
           CASE WHEN started THEN 'measured' ELSE 'not_measured' END,
           'requests (queue wait per attempt in and before each burst episode)',
           'per-request rows (requests) with start times (queue wait per attempt)', NULL
    FROM h
    UNION ALL
    SELECT 10, 'latency_waves', 'Latency waves and cascade paths', '4',
           CASE WHEN ended AND pools2 THEN 'measured' ELSE 'not_measured' END,
           'requests (1-minute P95 latency per pool after burst episodes)',
           CASE WHEN ended THEN 'per-request rows from at least two pools'
                ELSE 'per-request rows (requests) from at least two pools' END,
           'the Wave Propagation Index'
    FROM h
    UNION ALL
    SELECT 11, 'queue_depth', 'Queue depth', '2',
           CASE WHEN qw AND a_any THEN 'aggregate' WHEN qw THEN 'measured'
                ELSE 'not_measured' END,
           CASE WHEN a_any THEN 'aggregated series queue_waiting'
                ELSE 'queue-size gauge (vLLM num_requests_waiting: queue_waiting)' END,
           'a queue-size gauge (vLLM num_requests_waiting) or an aggregated queue-size series',
           'the queue peak of disruption timelines'
    FROM h
    UNION ALL
    SELECT 12, 'running_requests', 'Running requests', '2',
           CASE WHEN qr THEN 'measured' ELSE 'not_measured' END,
           'vLLM num_requests_running gauge (queue_running)',
           'the vLLM num_requests_running gauge', NULL
    FROM h
    UNION ALL
    SELECT 13, 'preemptions', 'Preemptions', '2',
           CASE WHEN pre THEN 'measured' ELSE 'not_measured' END,
           'vLLM num_preemptions_total counter',
           'the vLLM num_preemptions_total counter', NULL
    FROM h
    UNION ALL
    SELECT 14, 'retries', 'Retries and retry amplification', '5',
           CASE WHEN req THEN 'measured' ELSE 'not_measured' END,
           'requests (attempt > 0 linked by parent_request_id)',
           'per-request rows with retries linked (parent_request_id, attempt)',
           'the retry / timeout amplification pattern'
    FROM h
    UNION ALL
    SELECT 15, 'gpu_nominal_util', 'Nominal GPU utilization', '2',
           CASE WHEN util_gpu THEN 'measured' WHEN util THEN 'aggregate'
                ELSE 'not_measured' END,
           CASE WHEN util_gpu THEN 'gpu_util samples per GPU'
                ELSE 'aggregated gpu_util series (per pool, no GPU id)' END,
           'GPU utilization samples (DCGM, nvidia-smi or Prometheus gpu_util)',
           'idle / busy states and, with sm_active, hidden capacity loss'
    FROM h
    UNION ALL
    SELECT 16, 'gpu_effective_util', 'Effective GPU utilization', '5',
           CASE WHEN sm OR req THEN 'measured' ELSE 'not_measured' END,
           CASE WHEN sm THEN 'sm_active samples (DCGM profiling fields)'
                ELSE 'requests (productive GPU time of attempts that met their SLA)' END,
           'sm_active samples (DCGM profiling fields) or per-request rows',
           'hidden capacity loss (with gpu_util)'
    FROM h
    UNION ALL
    SELECT 17, 'hidden_capacity_loss', 'Hidden capacity loss (HCL)', '5',
           CASE WHEN hcl THEN 'measured' ELSE 'not_measured' END,
           CASE WHEN sm THEN 'gpu_util and sm_active samples'
                ELSE 'gpu_util samples and per-request rows (productive time)' END,
           CASE WHEN NOT util AND NOT (sm OR req)
                    THEN 'gpu_util samples and sm_active samples (or per-request rows)'
                WHEN NOT util THEN 'gpu_util samples'
                WHEN NOT (sm OR req) THEN 'sm_active samples or per-request rows'
                ELSE 'GPU samples of the GPUs that served the requests' END,
           'the hidden GPU occupancy loss pattern'
    FROM h
    UNION ALL
    SELECT 18, 'gpu_power', 'GPU power', '5',
           CASE WHEN power_gpu THEN 'measured' WHEN power THEN 'aggregate'
                ELSE 'not_measured' END,
           CASE WHEN power_gpu THEN 'power_w samples per GPU'
                ELSE 'aggregated power_w series (no GPU id)' END,
           'GPU power samples (DCGM_FI_DEV_POWER_USAGE, nvidia-smi power.draw)',
           'energy, energy per good request and the energy-latency view'
    FROM h
    UNION ALL
    SELECT 19, 'gpu_energy', 'GPU energy', '5',
           CASE WHEN energy OR power_gpu THEN 'measured' WHEN power THEN 'aggregate'
                ELSE 'not_measured' END,
           CASE WHEN energy THEN 'energy_j counter increase'
                ELSE 'integral of power_w over time' END,
           'GPU power samples or an energy counter (DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION)',
           'energy per good request (with per-request rows)'
    FROM h
    UNION ALL
    SELECT 20, 'energy_per_good_request', 'Energy per good request', '5',
           CASE WHEN power AND req AND sla THEN 'measured' ELSE 'not_measured' END,
           'power_w integral over requests that met their SLA',
           concat_ws(' and ',
                     CASE WHEN NOT power THEN 'GPU power samples (power_w)' END,
                     CASE WHEN NOT req THEN 'per-request rows (requests)' END,
                     CASE WHEN NOT sla THEN 'SLA targets in pilot.yaml' END),
           NULL
    FROM h
    UNION ALL
    SELECT 21, 'gpu_memory', 'GPU memory used', '2',
           CASE WHEN mem_gpu THEN 'measured' WHEN mem THEN 'aggregate'
                ELSE 'not_measured' END,
           CASE WHEN mem_gpu THEN 'mem_used_bytes samples per GPU'
                ELSE 'aggregated mem_used_bytes series (no GPU id)' END,
           'GPU memory samples (DCGM_FI_DEV_FB_USED, nvidia-smi memory.used)', NULL
    FROM h
    UNION ALL
    SELECT 22, 'idle_overload_states', 'Idle / overload states', '4',
           CASE WHEN util OR started THEN 'measured' ELSE 'not_measured' END,
           CASE WHEN util AND started THEN 'gpu_util samples (idle) and per-request rows '
                                           || '(overload)'
                WHEN util THEN 'gpu_util samples: idle / busy only (overload not tested)'
                ELSE 'per-request rows: overload only (idle not measured)' END,
           'gpu_util samples (idle) and per-request rows with start times (overload)',
           CASE WHEN util AND NOT started
                    THEN 'per-request rows (queue wait) would add the overload state'
                WHEN started AND NOT util
                    THEN 'gpu_util samples would add the idle state' END
    FROM h
    UNION ALL
    SELECT 23, 'batch_occupancy', 'Batch occupancy', '4',
           CASE WHEN jobs_run THEN 'measured' ELSE 'not_measured' END,
           'scheduler jobs (jobs: run intervals per pool)',
           'scheduler jobs (sacct) with pool and run times',
           'batch scheduling conflicts, priority inversion and slot-locking zones (with '
               || 'per-request rows)'
    FROM h
    UNION ALL
    SELECT 24, 'job_timeline', 'Job timeline', '1',
           CASE WHEN jobs THEN 'measured' ELSE 'not_measured' END,
           'scheduler jobs (jobs)', 'scheduler jobs (sacct)', NULL
    FROM h
    UNION ALL
    SELECT 25, 'delay_index', 'Delay Index (DI)', '5',
           CASE WHEN started AND ended THEN 'measured' ELSE 'not_measured' END,
           'requests (queue wait over end-to-end latency of completed attempts)',
           'per-request rows (requests) with start and end times',
           'the non-productive queue waiting pattern'
    FROM h
    UNION ALL
    SELECT 100 + row_number() OVER (ORDER BY pattern), 'pattern:' || pattern,
           'Pattern: ' || replace(pattern, '_', ' '), '3',
           CASE WHEN tested THEN 'measured' ELSE 'not_measured' END,
           reason,
           replace(reason, 'not tested: needs ', ''),
           NULL
    FROM patterns_tested WHERE pilot = $pilot
)
SELECT
    $pilot AS pilot,
    item,
    label,
    section,
    status,
    CASE WHEN status <> 'not_measured' THEN basis END AS basis,
    CASE WHEN status = 'not_measured' THEN needs END AS needs,
    unlocks
FROM items
ORDER BY ord
