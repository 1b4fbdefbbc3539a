-- The headline metrics of METRICS.md per pilot x phase x segment, overall and per pool and
-- per priority class, in long form (one row per metric). Segment 'all' is both segments.
-- Latency and wait quantiles are exact (quantile_cont's values, linear interpolation, from
-- int_headline_quantiles: a histogram selection whose memory the buffer manager bounds); only
-- where a scope has no per-request rows do they come from latency histograms
-- (latency_histogram_quantiles, basis 'approximate', and noted so on the row).
-- Scopes come from whatever the pilot has: per-request rows, histograms, GPU samples (a
-- GPU-only pilot still has nominal utilization, power, energy and memory per phase x segment
-- x pool) and scheduler jobs (batch occupancy). A metric whose telemetry is absent is a NULL
-- row whose note says "not measured: needs ..."; GPU metrics from samples without a GPU id
-- (aggregated per-pool series) have basis 'aggregate'.
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
-- exact quantiles per scope (sql/intermediate/int_headline_quantiles.sql)
quant AS (
    SELECT * FROM int_headline_quantiles WHERE pilot = $pilot
),
-- Segment 'all' is a grouping set without segment, not a copy of every row: each request
-- and attempt counts in the six scopes of its phase (overall, pool, priority; in 'all' and in
-- its own segment). The rows are read once into their finest group (phase, segment, pool,
-- priority), a few hundred rows, and only those are rolled up to the six grouping sets:
-- grouping sets over the raw rows aggregate every row once per set (10 M bench: this model
-- 4.5 -> 2.0 CPU s). Counts and extrema are the same; sums differ by float rounding only
-- (as the thread order already made them differ between runs).
logical_f AS (
    SELECT phase, segment, pool, priority,
           count(CASE WHEN outcome IN ('timeout', 'dropped') THEN 1 END) AS n_td,
           count(CASE WHEN met_sla THEN 1 END)                          AS n_met,
           sum(attempts)                                                AS att,
           count(*)                                                     AS n
    FROM int_logical_requests
    WHERE pilot = $pilot
    GROUP BY phase, segment, pool, priority
),
logical_q AS (
    SELECT
        phase,
        CASE WHEN grouping(segment) = 1 THEN 'all' ELSE segment END    AS segment,
        CASE WHEN grouping(pool) = 0 THEN 'pool'
             WHEN grouping(priority) = 0 THEN 'priority'
             ELSE 'overall' END                                        AS breakdown,
        CASE WHEN grouping(pool) = 0 THEN pool
             WHEN grouping(priority) = 0 THEN priority END             AS breakdown_value,
        CAST(sum(n_td) AS DOUBLE) / CAST(sum(n) AS DOUBLE)             AS timeout_drop_rate,
        CAST(sum(n_met) AS DOUBLE) / CAST(sum(n) AS DOUBLE)            AS sla_adherence,
        sum(n_met)                                                     AS good_requests,
        sum(att) * 1.0 / CAST(sum(n) AS BIGINT)                        AS retry_amplification,
        CAST(sum(n) AS DOUBLE)                                         AS logical_requests,
        CAST(sum(att) AS DOUBLE)                                       AS attempts
    FROM logical_f
    GROUP BY GROUPING SETS ((phase), (phase, segment), (phase, pool), (phase, segment, pool),
                            (phase, priority), (phase, segment, priority))
),
logical_m AS (
    SELECT l.phase, l.segment, l.breakdown, l.breakdown_value,
           q.lat_p50, q.lat_p95, q.lat_p99,
           l.timeout_drop_rate, l.sla_adherence, l.good_requests, l.retry_amplification,
           l.logical_requests, l.attempts
    FROM logical_q l
    LEFT JOIN quant q
      ON q.phase = l.phase AND q.segment = l.segment AND q.breakdown = l.breakdown
     AND q.breakdown_value IS NOT DISTINCT FROM l.breakdown_value
    WHERE l.segment IN (SELECT segment_label FROM seg)
),
-- finest group x GPU: the GPUs serving requests per scope (a distinct count, not rolled up
-- from counts) come from the same pass
attempt_f AS (
    SELECT
        a.phase, a.segment, a.pool, a.priority, a.gpu,
        max(a.queue_wait_s)                                            AS wait_max,
        count(CASE WHEN a.wait_censored THEN 1 END)                    AS n_cens,
        count(*)                                                       AS n,
        max(CASE WHEN a.wait_censored THEN a.queue_wait_s END)         AS cens_cap,
        count(CASE WHEN a.wait_censored AND a.end_ts IS NULL THEN 1 END) AS cens_at_cap,
        sum(CASE WHEN a.status = 'ok' THEN a.queue_wait_s END)         AS ok_wait,
        sum(CASE WHEN a.status = 'ok' THEN a.e2e_s END)                AS ok_e2e,
        sum(CASE WHEN a.status = 'ok' AND a.logical_met_sla THEN a.service_s END) AS productive,
        count(CASE WHEN bw.is_burst THEN 1 END)                        AS burst
    FROM int_attempts a
    CROSS JOIN th
    LEFT JOIN burst_windows bw
      ON bw.pilot = $pilot AND bw.pool = a.pool AND bw.w = a.arrival_us // th.win_us
    WHERE a.pilot = $pilot
    GROUP BY a.phase, a.segment, a.pool, a.priority, a.gpu
),
attempt_q AS (
    SELECT
        phase,
        CASE WHEN grouping(segment) = 1 THEN 'all' ELSE segment END    AS segment,
        CASE WHEN grouping(pool) = 0 THEN 'pool'
             WHEN grouping(priority) = 0 THEN 'priority'
             ELSE 'overall' END                                        AS breakdown,
        CASE WHEN grouping(pool) = 0 THEN pool
             WHEN grouping(priority) = 0 THEN priority END             AS breakdown_value,
        max(wait_max)                                                  AS queue_wait_max_s,
        CAST(sum(n_cens) AS DOUBLE) / CAST(sum(n) AS DOUBLE)           AS censored_share,
        max(cens_cap)                                                  AS censored_cap_s,
        CAST(sum(cens_at_cap) AS BIGINT)                               AS censored_at_cap,
        sum(ok_wait) / nullif(sum(ok_e2e), 0)                          AS delay_index,
        -- GPU time on attempts that ended ok for a request that met its SLA (fallback for
        -- effective utilization when no sm_active telemetry exists)
        coalesce(sum(productive), 0)                                   AS productive_s,
        CAST(sum(burst) AS BIGINT)                                     AS burst_attempts,
        count(DISTINCT gpu)                                            AS request_gpus
    FROM attempt_f
    GROUP BY GROUPING SETS ((phase), (phase, segment), (phase, pool), (phase, segment, pool),
                            (phase, priority), (phase, segment, priority))
),
-- queue wait of every attempt, right-censored ones at their wait until they left
-- (int_attempts); the attempts that started are a secondary view, never the headline
attempt_m AS (
    SELECT a.phase, a.segment, a.breakdown, a.breakdown_value,
           q.wait_p50, q.wait_p95, a.queue_wait_max_s,
           q.wait_done_p50, q.wait_done_p95,
           a.censored_share, a.censored_cap_s, a.censored_at_cap,
           q.sched_delay_p95 AS sched_delay_p95_s,
           q.burst_wait_p50, q.burst_wait_p95,
           a.delay_index, a.productive_s, a.request_gpus, a.burst_attempts
    FROM attempt_q a
    LEFT JOIN quant q
      ON q.phase = a.phase AND q.segment = a.segment AND q.breakdown = a.breakdown
     AND q.breakdown_value IS NOT DISTINCT FROM a.breakdown_value
    WHERE a.segment IN (SELECT segment_label FROM seg)
),
-- GPU energy per unit (GPU): the increase of its energy_j counter where it has one (the sum
-- of its rises between consecutive samples of the phase, a drop being a reset: the value after
-- it is the rise), else the integral of its power_w. Only the counter samples are put in
-- time order; which units have a counter in a phase is a lookup (sorting every sample for
-- it was most of the GPU metrics' time).
counters AS (
    SELECT DISTINCT unit, phase, true AS counted
    FROM int_gpu_samples
    WHERE pilot = $pilot AND series = 'energy_j'
),
gp AS (
    SELECT phase, segment, pool, gpu, series, value, dt_s, per_gpu, true AS counted,
           CASE WHEN prev IS NULL THEN 0.0 WHEN value >= prev THEN value - prev ELSE value END
               AS energy_part
    FROM (
        SELECT *, lag(value) OVER (PARTITION BY unit, phase ORDER BY ts_us) AS prev
        FROM int_gpu_samples
        WHERE pilot = $pilot AND series = 'energy_j'
    )
    UNION ALL
    SELECT g.phase, g.segment, g.pool, g.gpu, g.series, g.value, g.dt_s, g.per_gpu,
           coalesce(c.counted, false) AS counted,
           CASE WHEN g.series = 'power_w' AND c.counted IS NULL THEN g.value * g.dt_s END
               AS energy_part
    FROM int_gpu_samples g
    LEFT JOIN counters c
      ON c.unit IS NOT DISTINCT FROM g.unit AND c.phase IS NOT DISTINCT FROM g.phase
    WHERE g.pilot = $pilot AND g.series IS DISTINCT FROM 'energy_j'
),
-- finest group x GPU first (as for the attempts above), then the four grouping sets
gpu_f AS (
    SELECT
        phase, segment, pool, gpu, per_gpu,
        sum(CASE WHEN series = 'gpu_util' THEN value * dt_s END)          AS util_vt,
        sum(CASE WHEN series = 'gpu_util' THEN dt_s END)                  AS util_t,
        sum(CASE WHEN series = 'sm_active' THEN value * dt_s END)         AS sm_vt,
        sum(CASE WHEN series = 'sm_active' THEN dt_s END)                 AS sm_t,
        sum(CASE WHEN series = 'power_w' THEN value * dt_s END)           AS pw_vt,
        sum(CASE WHEN series = 'power_w' THEN dt_s END)                   AS pw_t,
        sum(CASE WHEN series = 'mem_used_bytes' THEN value * dt_s END)    AS mem_vt,
        sum(CASE WHEN series = 'mem_used_bytes' THEN dt_s END)            AS mem_t,
        sum(energy_part)                                                  AS energy_part,
        count(CASE WHEN series = 'energy_j' THEN 1 END)                   AS n_energy,
        count(CASE WHEN series = 'power_w' AND NOT counted THEN 1 END)    AS n_integrated,
        count(CASE WHEN series = 'gpu_util' AND NOT per_gpu THEN 1 END)   AS n_agg_util,
        count(CASE WHEN series IN ('power_w', 'energy_j') AND NOT per_gpu THEN 1 END)
                                                                          AS n_agg_power,
        count(CASE WHEN series = 'mem_used_bytes' AND NOT per_gpu THEN 1 END) AS n_agg_mem
    FROM gp
    GROUP BY phase, segment, pool, gpu, per_gpu
),
gpu_q AS (
    SELECT
        phase,
        -- samples of no segment (GPUs shared by both) count in 'all' only
        CASE WHEN grouping(segment) = 1 THEN 'all' ELSE segment END    AS segment,
        CASE WHEN grouping(pool) = 0 THEN 'pool' ELSE 'overall' END    AS breakdown,
        CASE WHEN grouping(pool) = 0 THEN pool END                      AS breakdown_value,
        sum(util_vt) / nullif(sum(util_t), 0)                          AS nominal_util,
        sum(sm_vt) / nullif(sum(sm_t), 0)                              AS sm_active_util,
        sum(pw_vt)                                                     AS energy_j,
        sum(pw_vt) / nullif(sum(pw_t), 0)                              AS power_mean_w,
        sum(energy_part)                                               AS gpu_energy_j,
        sum(n_energy) > 0                                              AS energy_counted,
        sum(n_integrated) > 0                                          AS energy_integrated,
        sum(mem_vt) / nullif(sum(mem_t), 0)                            AS mem_mean_bytes,
        -- samples without a GPU id stand for a pool or node: aggregates, not per GPU
        sum(n_agg_util) > 0                                            AS agg_util,
        sum(n_agg_power) > 0                                           AS agg_power,
        sum(n_agg_mem) > 0                                             AS agg_mem,
        -- GPUs the samples identify (none when they stand for pools or nodes)
        count(DISTINCT gpu) FILTER (WHERE per_gpu)                     AS sample_gpus
    FROM gpu_f
    GROUP BY GROUPING SETS ((phase), (phase, segment), (phase, pool), (phase, segment, pool))
),
gpu_m AS (
    SELECT * FROM gpu_q WHERE segment IN (SELECT segment_label FROM seg)
),
-- batch occupancy (METRICS.md): per pool, the share of phase time with at least one job
-- running (its jobs' run intervals merged, gaps-and-islands, clipped to the phase), over the
-- pools that ran jobs in the pilot; and the GPU-hours of jobs inside the phase where their
-- GPU count is known
jt AS (
    SELECT pool, epoch_us(start_ts) AS js, epoch_us(end_ts) AS je, gpus
    FROM job_timeline
    WHERE pilot = $pilot AND pool IS NOT NULL AND start_ts IS NOT NULL AND end_ts > start_ts
),
jt_start AS (
    SELECT *,
           CASE WHEN js > coalesce(max(je) OVER (
                    PARTITION BY pool ORDER BY js, je
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), js - 1)
                THEN 1 ELSE 0 END AS new_run
    FROM jt
),
jt_runs AS (
    SELECT pool, min(js) AS rs, max(je) AS re
    FROM (
        SELECT *, sum(new_run) OVER (PARTITION BY pool ORDER BY js, je
                                     ROWS UNBOUNDED PRECEDING) AS run
        FROM jt_start
    )
    GROUP BY pool, run
),
ph_us AS (
    SELECT phase, epoch_us(start_ts) AS ps, epoch_us(end_ts) AS pe
    FROM phases WHERE pilot = $pilot
),
job_cover AS (
    SELECT p.phase, r.pool, sum(greatest(least(r.re, p.pe) - greatest(r.rs, p.ps), 0)) / 1e6
               AS covered_s
    FROM jt_runs r CROSS JOIN ph_us p
    GROUP BY p.phase, r.pool
),
job_gpu AS (
    SELECT p.phase, j.pool,
           sum(j.gpus * greatest(least(j.je, p.pe) - greatest(j.js, p.ps), 0)) / 3.6e9
               AS gpu_hours
    FROM jt j CROSS JOIN ph_us p
    GROUP BY p.phase, j.pool
),
job_pools AS (
    SELECT c.phase, c.pool, c.covered_s,
           CASE WHEN k.known THEN coalesce(g.gpu_hours, 0) END AS gpu_hours,
           CASE WHEN sc.kind = 'all' THEN 'treatment'
                WHEN sc.kind = 'pools' THEN
                    CASE WHEN list_contains(sc.pools, c.pool) THEN 'treatment'
                         ELSE 'control' END
           END AS segment
    FROM job_cover c
    CROSS JOIN (SELECT count(gpus) > 0 AS known FROM jt) k
    CROSS JOIN (SELECT * FROM pilot_scope WHERE pilot = $pilot) sc
    LEFT JOIN job_gpu g ON g.phase = c.phase AND g.pool = c.pool
),
jobs_m AS (
    SELECT
        j.phase, s.segment_label AS segment,
        CASE WHEN grouping(j.pool) = 0 THEN 'pool' ELSE 'overall' END  AS breakdown,
        CASE WHEN grouping(j.pool) = 0 THEN j.pool END                  AS breakdown_value,
        sum(j.covered_s) / (count(*) * any_value(pl.phase_s))          AS batch_occupancy,
        sum(j.gpu_hours)                                               AS batch_gpu_hours
    FROM job_pools j
    JOIN phase_len pl ON pl.phase = j.phase
    JOIN seg s ON s.segment_label = 'all' OR s.segment_label = j.segment
    GROUP BY GROUPING SETS ((j.phase, s.segment_label), (j.phase, s.segment_label, j.pool))
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
-- every scope with per-request rows, plus the scopes only histograms, GPU samples or
-- scheduler jobs describe
scopes AS (
    SELECT phase, segment, breakdown, breakdown_value FROM logical_m
    UNION
    SELECT phase, segment, breakdown, breakdown_value FROM hq
    UNION
    SELECT phase, segment, breakdown, breakdown_value FROM gpu_m
    UNION
    SELECT phase, segment, breakdown, breakdown_value FROM jobs_m
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
        a.wait_done_p50 AS queue_wait_completed_p50_s,
        a.wait_done_p95 AS queue_wait_completed_p95_s,
        a.censored_share AS queue_wait_censored_share,
        a.censored_cap_s AS queue_wait_cap_s,
        coalesce(a.censored_at_cap, 0)                              AS censored_at_cap,
        coalesce(a.censored_share, 0) > 0                           AS has_censored,
        a.queue_wait_max_s, a.sched_delay_p95_s,
        a.burst_wait_p50 AS burst_queue_wait_p50_s,
        a.burst_wait_p95 AS burst_queue_wait_p95_s,
        g.nominal_util,
        coalesce(g.sm_active_util,
                 a.productive_s / nullif(coalesce(nullif(g.sample_gpus, 0), a.request_gpus) * pl.phase_s, 0))
                                                                       AS effective_util,
        l.timeout_drop_rate, l.sla_adherence,
        l.good_requests / pl.phase_s                                   AS goodput_rps,
        l.good_requests / pl.phase_s
            / nullif(coalesce(nullif(g.sample_gpus, 0), a.request_gpus), 0)       AS goodput_rps_per_gpu,
        l.retry_amplification,
        g.energy_j / nullif(l.good_requests, 0)                        AS energy_per_good_request_j,
        a.delay_index,
        l.logical_requests, l.attempts,
        g.power_mean_w                                                 AS gpu_power_w,
        g.gpu_energy_j,
        g.mem_mean_bytes                                               AS gpu_mem_used_bytes,
        j.batch_occupancy,
        j.batch_gpu_hours,
        g.sm_active_util IS NOT NULL                                   AS has_sm_active,
        g.nominal_util IS NOT NULL                                     AS has_gpu_util,
        g.energy_j IS NOT NULL                                         AS has_power,
        coalesce(g.energy_counted, false)                              AS energy_counted,
        coalesce(g.energy_integrated, false)                           AS energy_integrated,
        l.logical_requests IS NOT NULL                                 AS has_requests,
        j.batch_occupancy IS NOT NULL                                  AS has_jobs,
        coalesce(g.agg_util, false)                                    AS agg_util,
        coalesce(g.agg_power, false)                                   AS agg_power,
        coalesce(g.agg_mem, false)                                     AS agg_mem,
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
    LEFT JOIN jobs_m j
      ON j.phase = k.phase AND j.segment = k.segment AND j.breakdown = k.breakdown
     AND j.breakdown_value IS NOT DISTINCT FROM k.breakdown_value
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
        queue_wait_completed_p50_s, queue_wait_completed_p95_s, queue_wait_censored_share,
        queue_wait_cap_s,
        burst_queue_wait_p50_s, burst_queue_wait_p95_s,
        nominal_util, effective_util, hcl_pp,
        timeout_drop_rate, sla_adherence, goodput_rps, goodput_rps_per_gpu,
        retry_amplification, energy_per_good_request_j, delay_index,
        logical_requests, attempts,
        gpu_power_w, gpu_energy_j, gpu_mem_used_bytes, batch_occupancy, batch_gpu_hours
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
    CASE
        WHEN l.metric LIKE 'p%_latency_s' AND l.latency_from_hist THEN 'approximate'
        WHEN l.metric IN ('queue_wait_p50_s', 'queue_wait_p95_s') AND l.queue_from_hist
            THEN 'approximate'
        WHEN l.metric IN ('nominal_util', 'hcl_pp') AND l.agg_util THEN 'aggregate'
        WHEN l.metric IN ('gpu_power_w', 'gpu_energy_j') AND l.agg_power THEN 'aggregate'
        WHEN l.metric = 'gpu_mem_used_bytes' AND l.agg_mem THEN 'aggregate'
        ELSE 'measured'
    END AS basis,
    CASE
        WHEN l.metric = 'effective_util' AND l.has_sm_active THEN 'sm_active'
        WHEN l.metric = 'effective_util' AND l.value IS NOT NULL THEN 'productive-time'
        WHEN l.metric IN ('nominal_util', 'hcl_pp', 'gpu_power_w', 'gpu_energy_j',
                          'gpu_mem_used_bytes') AND l.breakdown = 'priority'
            THEN 'GPUs are not split by priority class'
        WHEN l.metric IN ('batch_occupancy', 'batch_gpu_hours') AND l.breakdown = 'priority'
            THEN 'scheduler jobs are not split by priority class'
        WHEN l.metric IN ('nominal_util', 'hcl_pp', 'energy_per_good_request_j', 'gpu_power_w',
                          'gpu_energy_j', 'gpu_mem_used_bytes')
             AND l.value IS NULL AND l.segment <> 'all' AND NOT l.has_gpu_util
             AND NOT l.has_power
            THEN 'no GPU telemetry for this segment (GPUs shared by both segments or absent)'
        WHEN l.metric IN ('effective_util', 'hcl_pp') AND l.value IS NULL
             AND l.has_gpu_util AND NOT l.has_sm_active AND NOT l.has_requests
            THEN 'not measured: needs sm_active or per-request rows'
        WHEN l.metric IN ('nominal_util', 'hcl_pp', 'effective_util') AND NOT l.has_gpu_util
            THEN 'not measured: needs gpu_util samples (DCGM, nvidia-smi or Prometheus)'
        WHEN l.metric = 'gpu_power_w' AND l.value IS NULL
            THEN 'not measured: needs GPU power samples (power_w)'
        WHEN l.metric = 'gpu_energy_j' AND l.value IS NULL
            THEN 'not measured: needs GPU power samples (power_w) or an energy counter (energy_j)'
        WHEN l.metric = 'gpu_energy_j' AND l.energy_counted AND l.energy_integrated
            THEN 'increase of the energy_j counter where a GPU has one, else the integral of '
                 || 'its power_w'
        WHEN l.metric = 'gpu_energy_j' AND l.energy_counted
            THEN 'increase of the energy_j counter'
        WHEN l.metric = 'gpu_energy_j' THEN 'integral of power_w over time'
        WHEN l.metric = 'gpu_mem_used_bytes' AND l.value IS NULL
            THEN 'not measured: needs GPU memory samples (mem_used_bytes)'
        WHEN l.metric IN ('batch_occupancy', 'batch_gpu_hours') AND NOT l.has_jobs
            THEN 'not measured: needs scheduler jobs (sacct) with pool and run times'
        WHEN l.metric = 'batch_gpu_hours' AND l.value IS NULL
            THEN 'not measured: needs the GPU count of jobs (AllocTRES gres/gpu)'
        WHEN l.metric LIKE 'p%_latency_s' AND l.latency_from_hist
            THEN 'approximate: from e2e latency histogram buckets, per server request (a retry '
                 || 'counts on its own); no per-request rows'
        WHEN l.metric IN ('queue_wait_p50_s', 'queue_wait_p95_s') AND l.queue_from_hist
            THEN 'approximate: from queue-time histogram buckets (no per-request rows); '
                 || 'requests that left before being scheduled are not in them'
        WHEN l.metric LIKE 'p%_latency_s' AND l.value IS NULL AND NOT l.has_requests
            THEN 'not measured: needs per-request rows or e2e latency histograms'
        WHEN l.metric IN ('queue_wait_p50_s', 'queue_wait_p95_s') AND l.value IS NULL
             AND NOT l.has_requests
            THEN 'not measured: needs per-request rows or queue-time histograms'
        WHEN l.metric = 'energy_per_good_request_j' AND NOT l.has_requests
            THEN 'not measured: needs per-request rows (requests) with SLA targets'
        WHEN l.metric IN ('queue_wait_max_s', 'sched_delay_p95_s', 'burst_queue_wait_p50_s',
                          'burst_queue_wait_p95_s', 'timeout_drop_rate', 'sla_adherence',
                          'goodput_rps', 'goodput_rps_per_gpu', 'retry_amplification',
                          'delay_index', 'logical_requests', 'attempts')
             AND NOT l.has_requests
            THEN 'not measured: needs per-request rows (requests)'
        WHEN l.metric = 'energy_per_good_request_j' AND NOT l.has_power
            THEN 'not measured: needs GPU power samples (power_w)'
        WHEN l.metric IN ('queue_wait_completed_p50_s', 'queue_wait_completed_p95_s',
                          'queue_wait_censored_share', 'queue_wait_cap_s')
             AND NOT l.has_requests
            THEN 'not measured: needs per-request rows (requests)'
        WHEN l.metric = 'queue_wait_cap_s' AND l.value IS NULL
            THEN 'no right-censored waits: every attempt started'
        WHEN l.metric = 'queue_wait_cap_s' AND l.censored_at_cap > 0
            THEN 'largest right-censored wait; attempts that left without starting and '
                 || 'without a recorded end_ts count at the pilot''s longest recorded wait'
        WHEN l.metric = 'queue_wait_cap_s'
            THEN 'largest right-censored wait (an attempt that left without starting)'
        WHEN l.metric IN ('queue_wait_p50_s', 'queue_wait_p95_s', 'queue_wait_max_s',
                          'burst_queue_wait_p50_s', 'burst_queue_wait_p95_s')
             AND l.value IS NOT NULL AND l.has_censored
            THEN 'every attempt: those that left without starting count at their wait until '
                 || 'they left (right-censored, so a lower bound of the wait had none left); '
                 || 'see queue_wait_censored_share, queue_wait_cap_s'
        WHEN l.metric LIKE 'burst_queue_wait%' AND coalesce(l.burst_attempts, 0) = 0
            THEN 'no burst windows detected'
        WHEN l.metric = 'sched_delay_p95_s' AND l.value IS NULL THEN 'no dispatch_ts telemetry'
        WHEN l.metric LIKE 'p%_latency_s' AND l.value IS NULL THEN 'no completed requests'
    END AS note
FROM long l
LEFT JOIN metric_catalog c ON c.name = l.metric
-- series metrics (vLLM / Prometheus counters, gauges, TTFT/TPOT histograms, aggregated
-- per-interval series, arrival traces): sql/metrics/series_metrics.sql, same columns. Listed
-- by position, not BY NAME: Spark SQL has no UNION BY NAME (engine parity).
UNION ALL
SELECT pilot, phase, segment, breakdown, breakdown_value, metric, value, unit, basis, note
FROM series_metrics
WHERE pilot = $pilot
