-- The headline metrics of METRICS.md per pilot x phase x segment, overall and per pool and
-- per priority class, in long form (one row per metric). Segment 'all' is both segments.
-- Latency quantiles are exact (quantile_cont, linear interpolation); only where a scope has no
-- per-request rows do they come from latency histograms (latency_histogram_quantiles,
-- declared approximate, and noted so on the row).
WITH seg AS (
    SELECT * FROM (VALUES ('all'), ('treatment'), ('control')) v(segment_label)
),
phase_len AS (
    SELECT phase, (epoch_us(end_ts) - epoch_us(start_ts)) / 1e6 AS phase_s
    FROM phases WHERE pilot = $pilot
),
th AS (
    SELECT CAST(burst_window_s * 1e6 AS BIGINT) AS win_us
    FROM int_thresholds WHERE pilot = $pilot
),
lg AS (
    SELECT l.phase, s.segment_label AS segment, l.pool, l.priority,
           l.latency_s, l.outcome, l.met_sla, l.attempts
    FROM int_logical_requests l
    JOIN seg s ON s.segment_label = 'all' OR s.segment_label = l.segment
    WHERE l.pilot = $pilot
),
logical_m AS (
    SELECT
        phase, segment,
        CASE WHEN grouping(pool) = 0 THEN 'pool'
             WHEN grouping(priority) = 0 THEN 'priority'
             ELSE 'overall' END                                        AS breakdown,
        CASE WHEN grouping(pool) = 0 THEN pool
             WHEN grouping(priority) = 0 THEN priority END             AS breakdown_value,
        -- one aggregate per quantile: the list form quantile_cont(x, [..]) is ~13 % faster on
        -- DuckDB but Spark's PERCENTILE over an array ran this model 52 s -> 80 s (parity test)
        quantile_cont(latency_s, 0.50) FILTER (WHERE outcome = 'ok') AS lat_p50,
        quantile_cont(latency_s, 0.95) FILTER (WHERE outcome = 'ok') AS lat_p95,
        quantile_cont(latency_s, 0.99) FILTER (WHERE outcome = 'ok') AS lat_p99,
        avg(CASE WHEN outcome IN ('timeout', 'dropped') THEN 1.0 ELSE 0.0 END)
                                                                       AS timeout_drop_rate,
        avg(CASE WHEN met_sla THEN 1.0 ELSE 0.0 END)                   AS sla_adherence,
        sum(CASE WHEN met_sla THEN 1 ELSE 0 END)                       AS good_requests,
        sum(attempts) * 1.0 / count(*)                                 AS retry_amplification,
        CAST(count(*) AS DOUBLE)                                       AS logical_requests,
        CAST(sum(attempts) AS DOUBLE)                                  AS attempts
    FROM lg
    GROUP BY GROUPING SETS ((phase, segment), (phase, segment, pool), (phase, segment, priority))
),
att AS (
    SELECT a.phase, s.segment_label AS segment, a.pool, a.priority, a.gpu,
           a.queue_wait_s, a.sched_delay_s, a.e2e_s, a.service_s, a.status,
           a.logical_met_sla, coalesce(bw.is_burst, false) AS in_burst
    FROM int_attempts a
    CROSS JOIN th
    JOIN seg s ON s.segment_label = 'all' OR s.segment_label = a.segment
    LEFT JOIN burst_windows bw
      ON bw.pilot = $pilot AND bw.pool = a.pool AND bw.w = a.arrival_us // th.win_us
    WHERE a.pilot = $pilot
),
attempt_m AS (
    SELECT
        phase, segment,
        CASE WHEN grouping(pool) = 0 THEN 'pool'
             WHEN grouping(priority) = 0 THEN 'priority'
             ELSE 'overall' END                                        AS breakdown,
        CASE WHEN grouping(pool) = 0 THEN pool
             WHEN grouping(priority) = 0 THEN priority END             AS breakdown_value,
        quantile_cont(queue_wait_s, 0.50)                              AS wait_p50,
        quantile_cont(queue_wait_s, 0.95)                              AS wait_p95,
        max(queue_wait_s)                                              AS queue_wait_max_s,
        quantile_cont(sched_delay_s, 0.95)                             AS sched_delay_p95_s,
        quantile_cont(queue_wait_s, 0.50) FILTER (WHERE in_burst) AS burst_wait_p50,
        quantile_cont(queue_wait_s, 0.95) FILTER (WHERE in_burst) AS burst_wait_p95,
        sum(queue_wait_s) FILTER (WHERE status = 'ok')
            / nullif(sum(e2e_s) FILTER (WHERE status = 'ok'), 0)       AS delay_index,
        -- GPU time on attempts that ended ok for a request that met its SLA (fallback for
        -- effective utilization when no sm_active telemetry exists)
        coalesce(sum(service_s) FILTER (WHERE status = 'ok' AND logical_met_sla), 0)
                                                                       AS productive_s,
        count(DISTINCT gpu)                                            AS request_gpus,
        count(*) FILTER (WHERE in_burst)                               AS burst_attempts
    FROM att
    GROUP BY GROUPING SETS ((phase, segment), (phase, segment, pool), (phase, segment, priority))
),
gp AS (
    SELECT g.phase, s.segment_label AS segment, g.pool, g.gpu, g.series, g.value, g.dt_s
    FROM int_gpu_samples g
    JOIN seg s ON s.segment_label = 'all' OR s.segment_label = g.segment
    WHERE g.pilot = $pilot
),
gpu_m AS (
    SELECT
        phase, segment,
        CASE WHEN grouping(pool) = 0 THEN 'pool' ELSE 'overall' END    AS breakdown,
        CASE WHEN grouping(pool) = 0 THEN pool END                      AS breakdown_value,
        sum(value * dt_s) FILTER (WHERE series = 'gpu_util')
            / nullif(sum(dt_s) FILTER (WHERE series = 'gpu_util'), 0)  AS nominal_util,
        sum(value * dt_s) FILTER (WHERE series = 'sm_active')
            / nullif(sum(dt_s) FILTER (WHERE series = 'sm_active'), 0) AS sm_active_util,
        sum(value * dt_s) FILTER (WHERE series = 'power_w')            AS energy_j,
        count(DISTINCT gpu)                                            AS sample_gpus
    FROM gp
    GROUP BY GROUPING SETS ((phase, segment), (phase, segment, pool))
),
-- histogram quantiles (approximate), one row per scope
hq AS (
    SELECT phase, segment, breakdown, breakdown_value,
           max(value_s) FILTER (WHERE family = 'e2e_latency_s' AND round(q * 100) = 50) AS p50,
           max(value_s) FILTER (WHERE family = 'e2e_latency_s' AND round(q * 100) = 95) AS p95,
           max(value_s) FILTER (WHERE family = 'e2e_latency_s' AND round(q * 100) = 99) AS p99,
           max(value_s) FILTER (WHERE family = 'queue_time_s' AND round(q * 100) = 50)
                                                                       AS queue_p50,
           max(value_s) FILTER (WHERE family = 'queue_time_s' AND round(q * 100) = 95)
                                                                       AS queue_p95
    FROM latency_histogram_quantiles
    WHERE pilot = $pilot
    GROUP BY phase, segment, breakdown, breakdown_value
),
-- every scope with per-request rows, plus the scopes only histograms describe
scopes AS (
    SELECT phase, segment, breakdown, breakdown_value FROM logical_m
    UNION
    SELECT phase, segment, breakdown, breakdown_value FROM hq
),
wide AS (
    SELECT
        k.phase, k.segment, k.breakdown, k.breakdown_value,
        coalesce(l.lat_p50, h.p50) AS p50_latency_s,
        coalesce(l.lat_p95, h.p95) AS p95_latency_s,
        coalesce(l.lat_p99, h.p99) AS p99_latency_s,
        l.lat_p95 IS NULL AND h.p95 IS NOT NULL                      AS latency_from_hist,
        coalesce(a.wait_p50, h.queue_p50) AS queue_wait_p50_s,
        coalesce(a.wait_p95, h.queue_p95) AS queue_wait_p95_s,
        a.wait_p95 IS NULL AND h.queue_p95 IS NOT NULL             AS queue_from_hist,
        a.queue_wait_max_s, a.sched_delay_p95_s,
        a.burst_wait_p50 AS burst_queue_wait_p50_s,
        a.burst_wait_p95 AS burst_queue_wait_p95_s,
        g.nominal_util,
        coalesce(g.sm_active_util,
                 a.productive_s / nullif(coalesce(g.sample_gpus, a.request_gpus) * pl.phase_s, 0))
                                                                       AS effective_util,
        l.timeout_drop_rate, l.sla_adherence,
        l.good_requests / pl.phase_s                                   AS goodput_rps,
        l.good_requests / pl.phase_s
            / nullif(coalesce(g.sample_gpus, a.request_gpus), 0)       AS goodput_rps_per_gpu,
        l.retry_amplification,
        g.energy_j / nullif(l.good_requests, 0)                        AS energy_per_good_request_j,
        a.delay_index,
        l.logical_requests, l.attempts,
        g.sm_active_util IS NOT NULL                                   AS has_sm_active,
        g.nominal_util IS NOT NULL                                     AS has_gpu_util,
        g.energy_j IS NOT NULL                                         AS has_power,
        a.burst_attempts
    FROM scopes k
    JOIN phase_len pl ON pl.phase = k.phase
    LEFT JOIN logical_m l
      ON l.phase = k.phase AND l.segment = k.segment AND l.breakdown = k.breakdown
     AND l.breakdown_value IS NOT DISTINCT FROM k.breakdown_value
    LEFT JOIN attempt_m a
      ON a.phase = k.phase AND a.segment = k.segment AND a.breakdown = k.breakdown
     AND a.breakdown_value IS NOT DISTINCT FROM k.breakdown_value
    LEFT JOIN gpu_m g
      ON g.phase = k.phase AND g.segment = k.segment AND g.breakdown = k.breakdown
     AND g.breakdown_value IS NOT DISTINCT FROM k.breakdown_value
    LEFT JOIN hq h
      ON h.phase = k.phase AND h.segment = k.segment AND h.breakdown = k.breakdown
     AND h.breakdown_value IS NOT DISTINCT FROM k.breakdown_value
),
wide2 AS (
    SELECT *, 100 * (nominal_util - effective_util) AS hcl_pp FROM wide
),
long AS (
    SELECT *
    FROM wide2
    UNPIVOT INCLUDE NULLS (value FOR metric IN (
        p50_latency_s, p95_latency_s, p99_latency_s,
        queue_wait_p50_s, queue_wait_p95_s, queue_wait_max_s, sched_delay_p95_s,
        burst_queue_wait_p50_s, burst_queue_wait_p95_s,
        nominal_util, effective_util, hcl_pp,
        timeout_drop_rate, sla_adherence, goodput_rps, goodput_rps_per_gpu,
        retry_amplification, energy_per_good_request_j, delay_index,
        logical_requests, attempts
    ))
)
SELECT
    $pilot AS pilot,
    l.phase,
    l.segment,
    l.breakdown,
    l.breakdown_value,
    l.metric,
    CAST(l.value AS DOUBLE) AS value,
    c.unit,
    'measured' AS basis,
    CASE
        WHEN l.metric = 'effective_util' AND l.has_sm_active THEN 'sm_active'
        WHEN l.metric = 'effective_util' AND l.value IS NOT NULL THEN 'productive-time'
        WHEN l.metric IN ('nominal_util', 'hcl_pp') AND l.breakdown = 'priority'
            THEN 'GPUs are not split by priority class'
        WHEN l.metric IN ('nominal_util', 'hcl_pp', 'energy_per_good_request_j')
             AND l.value IS NULL AND l.segment <> 'all' AND NOT l.has_gpu_util
            THEN 'no GPU telemetry for this segment (GPUs shared by both segments or absent)'
        WHEN l.metric IN ('nominal_util', 'hcl_pp') AND NOT l.has_gpu_util
            THEN 'no gpu_util telemetry'
        WHEN l.metric = 'energy_per_good_request_j' AND NOT l.has_power
            THEN 'no power_w telemetry'
        WHEN l.metric LIKE 'burst_queue_wait%' AND coalesce(l.burst_attempts, 0) = 0
            THEN 'no burst windows detected'
        WHEN l.metric = 'sched_delay_p95_s' AND l.value IS NULL THEN 'no dispatch_ts telemetry'
        WHEN l.metric LIKE 'p%_latency_s' AND l.latency_from_hist
            THEN 'approximate: from e2e latency histogram buckets, per server request (a retry '
                 || 'counts on its own); no per-request rows'
        WHEN l.metric IN ('queue_wait_p50_s', 'queue_wait_p95_s') AND l.queue_from_hist
            THEN 'approximate: from queue-time histogram buckets (no per-request rows)'
        WHEN l.metric LIKE 'p%_latency_s' AND l.value IS NULL THEN 'no completed requests'
    END AS note
FROM long l
LEFT JOIN metric_catalog c ON c.name = l.metric
