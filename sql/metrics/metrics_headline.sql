-- The headline metrics of METRICS.md per pilot x phase x segment, overall and per pool and
-- per priority class, in long form (one row per metric). Segment 'all' is both segments.
-- Latency quantiles are exact (linear interpolation, as quantile_cont); only where a scope has no
-- per-request rows do they come from latency histograms (latency_histogram_quantiles,
-- basis 'approximate', and noted so on the row).
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
-- Exact quantiles from value counts: instead of one list of values per scope (each row six
-- times: 'all' and its segment x overall, pool, priority), one pass counts the rows per finest
-- cell (phase x segment x pool x priority) and value, the counts are summed per scope and
-- value, and a running count in value order finds the two order statistics each quantile
-- interpolates: with n values, h = (n - 1) q, the value of rank floor(h) and of rank
-- ceil(h) (0-based), lo + (hi - lo) (h - floor(h)), as quantile_cont (h in DOUBLE as it
-- computes it: same values). Durations repeat (millisecond resolution), so the counts are far
-- fewer rows than the requests (10 M bench: 26 -> 14 cpu s, 141 k wait cells for 10 M
-- attempts). Sums, counts and maxima are summed per cell and value in the same pass, then per
-- scope. The running count is one window over every scope in (scope, value) order, less the
-- scope's own start: per-scope partitioned windows cost several times more in DuckDB.
lg_cells AS (
    SELECT phase, segment, pool, priority, latency_s AS v,
           count(*) FILTER (WHERE outcome = 'ok')                      AS n_ok,
           count(*)                                                    AS n,
           count(*) FILTER (WHERE outcome IN ('timeout', 'dropped'))   AS n_timeout_drop,
           count(*) FILTER (WHERE met_sla)                             AS n_met,
           sum(attempts)                                               AS attempts
    FROM int_logical_requests
    WHERE pilot = $pilot
    GROUP BY ALL
),
lg_scope AS (
    SELECT
        c.phase, s.segment_label AS segment,
        CASE WHEN grouping(c.pool) = 0 THEN 'pool'
             WHEN grouping(c.priority) = 0 THEN 'priority'
             ELSE 'overall' END                                        AS breakdown,
        CASE WHEN grouping(c.pool) = 0 THEN c.pool
             WHEN grouping(c.priority) = 0 THEN c.priority END         AS breakdown_value,
        c.v, sum(c.n_ok) AS n_ok, sum(c.n) AS n, sum(c.n_timeout_drop) AS n_timeout_drop,
        sum(c.n_met) AS n_met, sum(c.attempts) AS attempts
    FROM lg_cells c
    JOIN seg s ON s.segment_label = 'all' OR s.segment_label = c.segment
    GROUP BY GROUPING SETS ((c.phase, s.segment_label, c.v),
                            (c.phase, s.segment_label, c.pool, c.v),
                            (c.phase, s.segment_label, c.priority, c.v))
),
lg_run AS (
    SELECT *, CASE WHEN v IS NOT NULL THEN n_ok ELSE 0 END AS k,
           sum(CASE WHEN v IS NOT NULL THEN n_ok ELSE 0 END) OVER (
               ORDER BY phase, segment, breakdown, breakdown_value, v
               ROWS UNBOUNDED PRECEDING)                               AS g
    FROM lg_scope
),
lg_cum AS (
    SELECT *, g - min(g - k) OVER sc AS c, sum(k) OVER sc AS t
    FROM lg_run
    WINDOW sc AS (PARTITION BY phase, segment, breakdown, breakdown_value)
),
logical_q AS (
    SELECT
        phase, segment, breakdown, breakdown_value, max(t) AS t,
        min(v) FILTER (WHERE t > 0 AND c > floor(CAST(t - 1 AS DOUBLE) * 0.50))      AS p50_lo,
        min(v) FILTER (WHERE t > 0 AND c > ceil(CAST(t - 1 AS DOUBLE) * 0.50))       AS p50_hi,
        min(v) FILTER (WHERE t > 0 AND c > floor(CAST(t - 1 AS DOUBLE) * 0.95))      AS p95_lo,
        min(v) FILTER (WHERE t > 0 AND c > ceil(CAST(t - 1 AS DOUBLE) * 0.95))       AS p95_hi,
        min(v) FILTER (WHERE t > 0 AND c > floor(CAST(t - 1 AS DOUBLE) * 0.99))      AS p99_lo,
        min(v) FILTER (WHERE t > 0 AND c > ceil(CAST(t - 1 AS DOUBLE) * 0.99))       AS p99_hi,
        sum(n_timeout_drop) * 1.0 / sum(n)                             AS timeout_drop_rate,
        sum(n_met) * 1.0 / sum(n)                                      AS sla_adherence,
        sum(n_met)                                                     AS good_requests,
        sum(attempts) * 1.0 / sum(n)                                   AS retry_amplification,
        CAST(sum(n) AS DOUBLE)                                         AS logical_requests,
        CAST(sum(attempts) AS DOUBLE)                                  AS attempts
    FROM lg_cum
    GROUP BY phase, segment, breakdown, breakdown_value
),
logical_m AS (
    SELECT phase, segment, breakdown, breakdown_value,
           p50_lo + (p50_hi - p50_lo) * (CAST(t - 1 AS DOUBLE) * 0.50 - floor(CAST(t - 1 AS DOUBLE) * 0.50)) AS lat_p50,
           p95_lo + (p95_hi - p95_lo) * (CAST(t - 1 AS DOUBLE) * 0.95 - floor(CAST(t - 1 AS DOUBLE) * 0.95)) AS lat_p95,
           p99_lo + (p99_hi - p99_lo) * (CAST(t - 1 AS DOUBLE) * 0.99 - floor(CAST(t - 1 AS DOUBLE) * 0.99)) AS lat_p99,
           timeout_drop_rate, sla_adherence, good_requests, retry_amplification,
           logical_requests, attempts
    FROM logical_q
),
-- queue waits: every attempt, right-censored ones at their wait until they left
-- (int_attempts); the attempts that started are a secondary view, never the headline
att_cells AS (
    SELECT a.phase, a.segment, a.pool, a.priority, a.queue_wait_s AS v,
           count(*)                                                    AS n,
           count(*) FILTER (WHERE NOT a.wait_censored)                 AS n_done,
           count(*) FILTER (WHERE bw.is_burst)                         AS n_burst,
           count(*) FILTER (WHERE a.wait_censored)                     AS n_censored,
           count(*) FILTER (WHERE a.wait_censored AND a.end_ts IS NULL) AS n_censored_at_cap,
           sum(a.queue_wait_s) FILTER (WHERE a.status = 'ok')          AS ok_wait_s,
           sum(a.e2e_s) FILTER (WHERE a.status = 'ok')                 AS ok_e2e_s,
           -- GPU time on attempts that ended ok for a request that met its SLA (fallback
           -- for effective utilization when no sm_active telemetry exists)
           sum(a.service_s) FILTER (WHERE a.status = 'ok' AND a.logical_met_sla)
                                                                       AS productive_s
    FROM int_attempts a
    CROSS JOIN th
    LEFT JOIN burst_windows bw
      ON bw.pilot = $pilot AND bw.pool = a.pool AND bw.w = a.arrival_us // th.win_us
    WHERE a.pilot = $pilot
    GROUP BY a.phase, a.segment, a.pool, a.priority, a.queue_wait_s
),
att_scope AS (
    SELECT
        c.phase, s.segment_label AS segment,
        CASE WHEN grouping(c.pool) = 0 THEN 'pool'
             WHEN grouping(c.priority) = 0 THEN 'priority'
             ELSE 'overall' END                                        AS breakdown,
        CASE WHEN grouping(c.pool) = 0 THEN c.pool
             WHEN grouping(c.priority) = 0 THEN c.priority END         AS breakdown_value,
        c.v, sum(c.n) AS n, sum(c.n_done) AS n_done, sum(c.n_burst) AS n_burst,
        sum(c.n_censored) AS n_censored, sum(c.n_censored_at_cap) AS n_censored_at_cap,
        sum(c.ok_wait_s) AS ok_wait_s, sum(c.ok_e2e_s) AS ok_e2e_s,
        sum(c.productive_s) AS productive_s
    FROM att_cells c
    JOIN seg s ON s.segment_label = 'all' OR s.segment_label = c.segment
    GROUP BY GROUPING SETS ((c.phase, s.segment_label, c.v),
                            (c.phase, s.segment_label, c.pool, c.v),
                            (c.phase, s.segment_label, c.priority, c.v))
),
att_k AS (
    SELECT *, CASE WHEN v IS NOT NULL THEN n ELSE 0 END AS k,
           CASE WHEN v IS NOT NULL THEN n_done ELSE 0 END AS k_done,
           CASE WHEN v IS NOT NULL THEN n_burst ELSE 0 END AS k_burst
    FROM att_scope
),
att_run AS (
    SELECT *, sum(k) OVER o AS g, sum(k_done) OVER o AS g_done, sum(k_burst) OVER o AS g_burst
    FROM att_k
    WINDOW o AS (ORDER BY phase, segment, breakdown, breakdown_value, v
                 ROWS UNBOUNDED PRECEDING)
),
att_cum AS (
    SELECT *,
           sum(k) OVER sc AS t, g - min(g - k) OVER sc AS c,
           sum(k_done) OVER sc AS t_done, g_done - min(g_done - k_done) OVER sc AS c_done,
           sum(k_burst) OVER sc AS t_burst, g_burst - min(g_burst - k_burst) OVER sc AS c_burst
    FROM att_run
    WINDOW sc AS (PARTITION BY phase, segment, breakdown, breakdown_value)
),
att_q AS (
    SELECT
        phase, segment, breakdown, breakdown_value,
        max(t) AS t, max(t_done) AS t_done, max(t_burst) AS t_burst,
        min(v) FILTER (WHERE t > 0 AND c > floor(CAST(t - 1 AS DOUBLE) * 0.50))      AS w50_lo,
        min(v) FILTER (WHERE t > 0 AND c > ceil(CAST(t - 1 AS DOUBLE) * 0.50))       AS w50_hi,
        min(v) FILTER (WHERE t > 0 AND c > floor(CAST(t - 1 AS DOUBLE) * 0.95))      AS w95_lo,
        min(v) FILTER (WHERE t > 0 AND c > ceil(CAST(t - 1 AS DOUBLE) * 0.95))       AS w95_hi,
        min(v) FILTER (WHERE t_done > 0 AND c_done > floor(CAST(t_done - 1 AS DOUBLE) * 0.50)) AS d50_lo,
        min(v) FILTER (WHERE t_done > 0 AND c_done > ceil(CAST(t_done - 1 AS DOUBLE) * 0.50))  AS d50_hi,
        min(v) FILTER (WHERE t_done > 0 AND c_done > floor(CAST(t_done - 1 AS DOUBLE) * 0.95)) AS d95_lo,
        min(v) FILTER (WHERE t_done > 0 AND c_done > ceil(CAST(t_done - 1 AS DOUBLE) * 0.95))  AS d95_hi,
        min(v) FILTER (WHERE t_burst > 0 AND c_burst > floor(CAST(t_burst - 1 AS DOUBLE) * 0.50))
                                                                       AS b50_lo,
        min(v) FILTER (WHERE t_burst > 0 AND c_burst > ceil(CAST(t_burst - 1 AS DOUBLE) * 0.50))
                                                                       AS b50_hi,
        min(v) FILTER (WHERE t_burst > 0 AND c_burst > floor(CAST(t_burst - 1 AS DOUBLE) * 0.95))
                                                                       AS b95_lo,
        min(v) FILTER (WHERE t_burst > 0 AND c_burst > ceil(CAST(t_burst - 1 AS DOUBLE) * 0.95))
                                                                       AS b95_hi,
        max(v)                                                         AS queue_wait_max_s,
        sum(n_censored) * 1.0 / sum(n)                                 AS censored_share,
        max(v) FILTER (WHERE n_censored > 0)                           AS censored_cap_s,
        sum(n_censored_at_cap)                                         AS censored_at_cap,
        sum(ok_wait_s) / nullif(sum(ok_e2e_s), 0)                      AS delay_index,
        coalesce(sum(productive_s), 0)                                 AS productive_s,
        sum(n_burst)                                                   AS burst_attempts
    FROM att_cum
    GROUP BY phase, segment, breakdown, breakdown_value
),
-- scheduling delay P95, the same way from its own value counts
sched_cells AS (
    SELECT phase, segment, pool, priority, sched_delay_s AS v, count(*) AS n
    FROM int_attempts
    WHERE pilot = $pilot AND sched_delay_s IS NOT NULL
    GROUP BY ALL
),
sched_scope AS (
    SELECT
        c.phase, s.segment_label AS segment,
        CASE WHEN grouping(c.pool) = 0 THEN 'pool'
             WHEN grouping(c.priority) = 0 THEN 'priority'
             ELSE 'overall' END                                        AS breakdown,
        CASE WHEN grouping(c.pool) = 0 THEN c.pool
             WHEN grouping(c.priority) = 0 THEN c.priority END         AS breakdown_value,
        c.v, sum(c.n) AS n
    FROM sched_cells c
    JOIN seg s ON s.segment_label = 'all' OR s.segment_label = c.segment
    GROUP BY GROUPING SETS ((c.phase, s.segment_label, c.v),
                            (c.phase, s.segment_label, c.pool, c.v),
                            (c.phase, s.segment_label, c.priority, c.v))
),
sched_q AS (
    SELECT phase, segment, breakdown, breakdown_value, max(t) AS t_sched,
           min(v) FILTER (WHERE c > floor(CAST(t - 1 AS DOUBLE) * 0.95))             AS s95_lo,
           min(v) FILTER (WHERE c > ceil(CAST(t - 1 AS DOUBLE) * 0.95))              AS s95_hi
    FROM (
        SELECT *, g - min(g - n) OVER sc AS c, sum(n) OVER sc AS t
        FROM (
            SELECT *, sum(n) OVER (ORDER BY phase, segment, breakdown, breakdown_value, v
                                   ROWS UNBOUNDED PRECEDING) AS g
            FROM sched_scope
        )
        WINDOW sc AS (PARTITION BY phase, segment, breakdown, breakdown_value)
    )
    GROUP BY phase, segment, breakdown, breakdown_value
),
-- GPUs the attempts ran on, per scope
gpu_cells AS (
    SELECT DISTINCT phase, segment, pool, priority, gpu
    FROM int_attempts
    WHERE pilot = $pilot
),
att_gpus AS (
    SELECT
        c.phase, s.segment_label AS segment,
        CASE WHEN grouping(c.pool) = 0 THEN 'pool'
             WHEN grouping(c.priority) = 0 THEN 'priority'
             ELSE 'overall' END                                        AS breakdown,
        CASE WHEN grouping(c.pool) = 0 THEN c.pool
             WHEN grouping(c.priority) = 0 THEN c.priority END         AS breakdown_value,
        count(DISTINCT c.gpu)                                          AS request_gpus
    FROM gpu_cells c
    JOIN seg s ON s.segment_label = 'all' OR s.segment_label = c.segment
    GROUP BY GROUPING SETS ((c.phase, s.segment_label), (c.phase, s.segment_label, c.pool),
                            (c.phase, s.segment_label, c.priority))
),
attempt_m AS (
    SELECT q.phase, q.segment, q.breakdown, q.breakdown_value,
           w50_lo + (w50_hi - w50_lo) * (CAST(t - 1 AS DOUBLE) * 0.50 - floor(CAST(t - 1 AS DOUBLE) * 0.50)) AS wait_p50,
           w95_lo + (w95_hi - w95_lo) * (CAST(t - 1 AS DOUBLE) * 0.95 - floor(CAST(t - 1 AS DOUBLE) * 0.95)) AS wait_p95,
           queue_wait_max_s,
           d50_lo + (d50_hi - d50_lo) * (CAST(t_done - 1 AS DOUBLE) * 0.50 - floor(CAST(t_done - 1 AS DOUBLE) * 0.50))
                                                                       AS wait_done_p50,
           d95_lo + (d95_hi - d95_lo) * (CAST(t_done - 1 AS DOUBLE) * 0.95 - floor(CAST(t_done - 1 AS DOUBLE) * 0.95))
                                                                       AS wait_done_p95,
           censored_share, censored_cap_s, censored_at_cap,
           s95_lo + (s95_hi - s95_lo) * (CAST(t_sched - 1 AS DOUBLE) * 0.95 - floor(CAST(t_sched - 1 AS DOUBLE) * 0.95))
                                                                       AS sched_delay_p95_s,
           b50_lo + (b50_hi - b50_lo) * (CAST(t_burst - 1 AS DOUBLE) * 0.50 - floor(CAST(t_burst - 1 AS DOUBLE) * 0.50))
                                                                       AS burst_wait_p50,
           b95_lo + (b95_hi - b95_lo) * (CAST(t_burst - 1 AS DOUBLE) * 0.95 - floor(CAST(t_burst - 1 AS DOUBLE) * 0.95))
                                                                       AS burst_wait_p95,
           delay_index, productive_s, g.request_gpus, burst_attempts
    FROM att_q q
    LEFT JOIN sched_q sq
      ON sq.phase IS NOT DISTINCT FROM q.phase AND sq.segment = q.segment
     AND sq.breakdown = q.breakdown AND sq.breakdown_value IS NOT DISTINCT FROM q.breakdown_value
    LEFT JOIN att_gpus g
      ON g.phase IS NOT DISTINCT FROM q.phase AND g.segment = q.segment
     AND g.breakdown = q.breakdown AND g.breakdown_value IS NOT DISTINCT FROM q.breakdown_value
),
-- GPU energy per unit (GPU): the increase of its energy_j counter where it has one (the sum
-- of its rises between consecutive samples of the phase, a drop being a reset: the value after
-- it is the rise), else the integral of its power_w. Only the counter's own rows are put in
-- time order (windows over every sample were most of the GPU part's time).
g_energy AS (
    SELECT unit, phase, segment, pool, gpu, per_gpu, value, dt_s,
           CASE WHEN lag(value) OVER w IS NULL THEN 0.0
                WHEN value >= lag(value) OVER w THEN value - lag(value) OVER w
                ELSE value END AS energy_part
    FROM int_gpu_samples
    WHERE pilot = $pilot AND series = 'energy_j'
    WINDOW w AS (PARTITION BY unit, phase ORDER BY ts_us)
),
g_counted AS (SELECT DISTINCT unit, phase FROM g_energy),
g0 AS (
    SELECT g.phase, g.segment, g.pool, g.gpu, g.series, g.value, g.dt_s, g.per_gpu,
           CASE WHEN g.series = 'power_w' AND c.unit IS NULL THEN g.value * g.dt_s END
               AS energy_part,
           g.series = 'power_w' AND c.unit IS NULL AS integrated
    FROM int_gpu_samples g
    LEFT JOIN g_counted c
      ON c.unit IS NOT DISTINCT FROM g.unit AND c.phase IS NOT DISTINCT FROM g.phase
    WHERE g.pilot = $pilot AND g.series <> 'energy_j'
    UNION ALL
    SELECT phase, segment, pool, gpu, 'energy_j' AS series, value, dt_s, per_gpu,
           energy_part, false AS integrated
    FROM g_energy
),
gp AS (
    SELECT g.phase, s.segment_label AS segment, g.pool, g.gpu, g.series, g.value, g.dt_s,
           g.per_gpu, g.integrated, g.energy_part
    FROM g0 g
    JOIN seg s ON s.segment_label = 'all' OR s.segment_label = g.segment
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
        sum(value * dt_s) FILTER (WHERE series = 'power_w')
            / nullif(sum(dt_s) FILTER (WHERE series = 'power_w'), 0)   AS power_mean_w,
        sum(energy_part)                                               AS gpu_energy_j,
        count(*) FILTER (WHERE series = 'energy_j') > 0                AS energy_counted,
        count(*) FILTER (WHERE integrated) > 0                         AS energy_integrated,
        sum(value * dt_s) FILTER (WHERE series = 'mem_used_bytes')
            / nullif(sum(dt_s) FILTER (WHERE series = 'mem_used_bytes'), 0)
                                                                       AS mem_mean_bytes,
        -- samples without a GPU id stand for a pool or node: aggregates, not per GPU
        count(*) FILTER (WHERE series = 'gpu_util' AND NOT per_gpu) > 0 AS agg_util,
        count(*) FILTER (WHERE series IN ('power_w', 'energy_j') AND NOT per_gpu) > 0
                                                                       AS agg_power,
        count(*) FILTER (WHERE series = 'mem_used_bytes' AND NOT per_gpu) > 0 AS agg_mem,
        -- GPUs the samples identify (none when they stand for pools or nodes)
        count(DISTINCT gpu) FILTER (WHERE per_gpu)                     AS sample_gpus
    FROM gp
    GROUP BY GROUPING SETS ((phase, segment), (phase, segment, pool))
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
