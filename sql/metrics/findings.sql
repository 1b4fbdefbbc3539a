-- Pattern findings (METRICS.md, Patterns): one row per candidate with its scope, evidence,
-- severity and cost; `detected` says whether it crossed its threshold (thresholds in
-- int_thresholds). Range joins go through a 1-minute bucket key + range filter.
WITH th AS (SELECT * FROM int_thresholds WHERE pilot = $pilot),
-- attempts that waited at least the scheduling-delay target (dropped ones until abandonment)
waits AS (
    SELECT pool, priority, phase, arrival_us,
           coalesce(epoch_us(start_ts), epoch_us(end_ts)) AS wait_end_us,
           arrival_us // 60000000 AS m
    FROM int_attempts a CROSS JOIN th
    WHERE a.pilot = $pilot
      AND coalesce(epoch_us(start_ts), epoch_us(end_ts)) - arrival_us
          >= th.sched_delay_target_s * 1e6
),
max_wait AS (SELECT coalesce(max(wait_end_us - arrival_us), 0) AS us FROM waits),
pool_load AS (
    SELECT pool, m, arrivals FROM int_pool_minutes WHERE pilot = $pilot
),
jb AS (
    SELECT job_id, kind, pool, gpus, gpu_ids, start_ts, end_ts,
           epoch_us(start_ts) AS js, epoch_us(end_ts) AS je
    FROM jobs
    WHERE pilot = $pilot AND start_ts IS NOT NULL AND end_ts IS NOT NULL AND pool IS NOT NULL
),
jkeys AS (
    SELECT jb.job_id, jb.pool, jb.js, jb.je,
           unnest(range((jb.js - mw.us) // 60000000, (jb.je - 1) // 60000000 + 1)) AS m
    FROM jb CROSS JOIN max_wait mw
),
job_hits AS (
    SELECT k.job_id,
           count(*)                                                   AS attempts_hit,
           count(*) FILTER (WHERE w.priority IN ('P0', 'P1'))         AS p01_hit,
           sum(least(w.wait_end_us, k.je) - greatest(w.arrival_us, k.js)) / 1e6
                                                                      AS wait_overlap_s,
           coalesce(sum(least(w.wait_end_us, k.je) - greatest(w.arrival_us, k.js))
               FILTER (WHERE w.priority IN ('P0', 'P1')), 0) / 1e6    AS p01_wait_overlap_s
    FROM jkeys k
    JOIN waits w
      ON w.pool = k.pool AND w.m = k.m AND w.arrival_us < k.je AND w.wait_end_us > k.js
    GROUP BY k.job_id
),
job_load AS (
    SELECT jb.job_id, sum(pl.arrivals) AS pool_arrivals
    FROM jb JOIN pool_load pl
      ON pl.pool = jb.pool AND pl.m >= jb.js // 60000000 AND pl.m <= (jb.je - 1) // 60000000
    GROUP BY jb.job_id
),
jf AS (
    SELECT jb.*, h.attempts_hit, h.p01_hit, h.wait_overlap_s, h.p01_wait_overlap_s,
           h.attempts_hit * 1.0 / nullif(l.pool_arrivals, 0) AS share_hit,
           (jb.je - jb.js) / 1e6 AS held_s,
           p.phase
    FROM jb
    JOIN job_hits h USING (job_id)
    LEFT JOIN job_load l USING (job_id)
    LEFT JOIN phases p ON p.pilot = $pilot AND jb.start_ts >= p.start_ts AND jb.start_ts < p.end_ts
),
conflict AS (
    SELECT phase, 'batch_scheduling_conflict' AS pattern, pool AS scope_pool,
           gpu_ids AS scope_gpus, start_ts, end_ts,
           json_object('job_id', job_id, 'kind', kind, 'gpus', gpus,
                       'attempts_waiting', attempts_hit, 'share_of_pool_attempts', share_hit,
                       'wait_overlap_s', wait_overlap_s, 'input', 'requests + jobs')
               AS evidence,
           CASE WHEN share_hit >= 0.10 THEN 'high' WHEN share_hit >= 0.01 THEN 'medium'
                ELSE 'low' END AS severity,
           wait_overlap_s AS latency_cost_s,
           NULL::DOUBLE AS gpu_hours_lost,
           attempts_hit >= th.conflict_min_attempts AS detected
    FROM jf CROSS JOIN th
),
inversion AS (
    SELECT phase, 'priority_inversion' AS pattern, pool, gpu_ids, start_ts, end_ts,
           json_object('job_id', job_id, 'kind', kind, 'held_s', held_s,
                       'p0_p1_attempts_waiting', p01_hit,
                       'inversion_time_s', p01_wait_overlap_s, 'input', 'requests + jobs'),
           CASE WHEN p01_wait_overlap_s >= 600 THEN 'high'
                WHEN p01_wait_overlap_s >= 60 THEN 'medium' ELSE 'low' END,
           p01_wait_overlap_s,
           NULL::DOUBLE,
           held_s > th.long_job_s AND p01_hit >= th.conflict_min_attempts
    FROM jf CROSS JOIN th
    WHERE p01_hit > 0
),
burst_amp AS (
    SELECT phase, 'burst_amplification', pool, NULL::VARCHAR[], start_ts, end_ts,
           json_object('episode_id', episode_id, 'amplification', amplification,
                       'queue_wait_p95_s', wait_p95_s,
                       'trailing_queue_wait_p95_s', trailing_wait_p95_s,
                       'rate_ratio', rate_ratio, 'note', note, 'input', 'requests'),
           CASE WHEN amplification >= 3 OR (amplified AND amplification IS NULL) THEN 'high'
                WHEN amplification >= 1.5 THEN 'medium' ELSE 'low' END,
           (wait_p95_s - coalesce(trailing_wait_p95_s, 0)) * arrivals,
           NULL::DOUBLE,
           amplified
    FROM burst_amplification
    WHERE pilot = $pilot
),
extremes AS (
    SELECT pool, phase, window_start, state,
           lag(state) OVER (PARTITION BY pool ORDER BY window_start)        AS prev_state,
           lag(window_start) OVER (PARTITION BY pool ORDER BY window_start) AS prev_start
    FROM idle_overload_states
    WHERE pilot = $pilot AND state IN ('idle', 'overload')
),
oscillation AS (
    SELECT x.phase, 'idle_overload_oscillation', x.pool, NULL::VARCHAR[],
           x.prev_start, x.window_start + INTERVAL 1 MINUTE,
           json_object('from', x.prev_state, 'to', x.state,
                       'minutes_apart',
                       (epoch_us(x.window_start) - epoch_us(x.prev_start)) / 6e7,
                       'input', 'requests + gpu_util samples'),
           'medium',
           NULL::DOUBLE,
           NULL::DOUBLE,
           true
    FROM extremes x CROSS JOIN th
    WHERE x.state <> x.prev_state
      AND epoch_us(x.window_start) - epoch_us(x.prev_start) <= th.flip_window_s * 1e6
),
-- retries explained by timeouts: per pool x phase, retry share in timeout-spike minutes
-- (timeouts >= 5 and >= 2x the pool-phase mean) vs the other minutes, and corr(t, t+1)
rt AS (
    SELECT pool, phase, m, arrivals, retries, timeouts,
           avg(timeouts) OVER (PARTITION BY pool, phase) AS mean_timeouts,
           lead(retries) OVER (PARTITION BY pool ORDER BY m) AS retries_next
    FROM int_pool_minutes
    WHERE pilot = $pilot AND phase IS NOT NULL
),
rt_agg AS (
    SELECT pool, phase,
           sum(retries) FILTER (WHERE spike) * 1.0
               / nullif(sum(arrivals) FILTER (WHERE spike), 0)       AS share_spike,
           sum(retries) FILTER (WHERE NOT spike) * 1.0
               / nullif(sum(arrivals) FILTER (WHERE NOT spike), 0)   AS share_calm,
           count(*) FILTER (WHERE spike)                              AS spike_minutes,
           corr(timeouts, retries_next)                               AS corr_next,
           min(window_start) FILTER (WHERE spike)                     AS first_spike,
           max(window_start) FILTER (WHERE spike)                     AS last_spike,
           sum(retries)                                               AS retries
    FROM (SELECT *, make_timestamp(m * 60000000) AS window_start,
                 timeouts >= 5 AND timeouts >= 2 * mean_timeouts AS spike FROM rt)
    GROUP BY pool, phase
),
retry AS (
    SELECT phase, 'retry_timeout_amplification', pool, NULL::VARCHAR[], first_spike,
           last_spike + INTERVAL 1 MINUTE,
           json_object('retry_share_in_spikes', share_spike, 'retry_share_outside', share_calm,
                       'spike_minutes', spike_minutes,
                       'corr_timeouts_t_retries_t1', corr_next, 'input', 'requests'),
           CASE WHEN share_spike >= 4 * share_calm THEN 'high' ELSE 'medium' END,
           NULL::DOUBLE, NULL::DOUBLE,
           coalesce(share_spike >= th.retry_spike_ratio * share_calm, false)
    FROM rt_agg CROSS JOIN th
    WHERE spike_minutes > 0
),
-- energy vs latency: Spearman rho of per-minute pool power and P95 latency (rank + corr)
el AS (
    SELECT pool, phase, power_w, latency_p95_s,
           rank() OVER (PARTITION BY pool, phase ORDER BY power_w)       AS r_pow,
           rank() OVER (PARTITION BY pool, phase ORDER BY latency_p95_s) AS r_lat
    FROM int_pool_minutes
    WHERE pilot = $pilot AND phase IS NOT NULL AND power_w IS NOT NULL
      AND latency_p95_s IS NOT NULL
),
el_agg AS (
    SELECT el.pool, el.phase, corr(r_pow, r_lat) AS rho,
           stddev_samp(latency_p95_s) / nullif(avg(latency_p95_s), 0) AS latency_cv,
           count(*) AS minutes
    FROM el GROUP BY el.pool, el.phase
),
el_energy AS (
    SELECT pool, phase, sum(power_w * 60) AS energy_j,
           sum(first_arrivals * sla_adherence) AS good_requests,
           min(window_start) AS s, max(window_start) + INTERVAL 1 MINUTE AS e
    FROM int_pool_minutes WHERE pilot = $pilot AND phase IS NOT NULL GROUP BY ALL
),
energy AS (
    SELECT a.phase, 'energy_latency_mismatch', a.pool, NULL::VARCHAR[], e.s, e.e,
           json_object('spearman_rho', a.rho, 'latency_p95_cv', a.latency_cv,
                       'minutes', a.minutes,
                       'j_per_good_request', e.energy_j / nullif(e.good_requests, 0),
                       'input', 'power_w samples + requests'),
           'medium', NULL::DOUBLE, NULL::DOUBLE,
           coalesce(abs(a.rho) < th.energy_rho_max AND a.latency_cv > th.latency_cv_min, false)
    FROM el_agg a CROSS JOIN th JOIN el_energy e ON e.pool = a.pool AND e.phase = a.phase
),
idx AS (
    SELECT phase, segment, index, value, note FROM indices
    WHERE pilot = $pilot AND index IN ('DI', 'HCL') AND segment <> 'all'
),
ph AS (SELECT phase, start_ts, end_ts FROM phases WHERE pilot = $pilot),
di_hcl AS (
    SELECT i.phase,
           CASE i.index WHEN 'DI' THEN 'non_productive_queue_waiting'
                        ELSE 'hidden_gpu_occupancy_loss' END,
           'segment:' || i.segment, NULL::VARCHAR[], ph.start_ts, ph.end_ts,
           json_object(i.index, i.value, 'threshold',
                       CASE i.index WHEN 'DI' THEN th.di ELSE th.hcl_pp END,
                       'note', i.note),
           CASE WHEN i.value > 2 * CASE i.index WHEN 'DI' THEN th.di ELSE th.hcl_pp END
                THEN 'high' ELSE 'medium' END,
           NULL::DOUBLE, NULL::DOUBLE,
           coalesce(i.value > CASE i.index WHEN 'DI' THEN th.di ELSE th.hcl_pp END, false)
    FROM idx i CROSS JOIN th JOIN ph ON ph.phase = i.phase
    WHERE i.value IS NOT NULL
),
-- legitimate vs amplifying queueing over queue saturation zones: legitimate when the zone
-- stays in its pool (no other pool saturated during it), clears within legit_clear_s and
-- no burst episode inside it amplified; otherwise amplifying
zones AS (
    SELECT * FROM queue_saturation_zones WHERE pilot = $pilot
),
zone_judged AS (
    SELECT z.*,
           EXISTS (SELECT 1 FROM zones o
                   WHERE o.pool <> z.pool AND o.start_ts < z.end_ts
                     AND o.end_ts > z.start_ts) AS spread,
           coalesce((SELECT bool_or(b.amplified) FROM burst_amplification b
                     WHERE b.pilot = $pilot AND b.pool = z.pool
                       AND b.start_ts < z.end_ts AND b.end_ts > z.start_ts), false)
               AS amplified
    FROM zones z
),
legit AS (
    SELECT phase, 'legitimate_vs_amplifying_queueing', pool, NULL::VARCHAR[], start_ts,
           end_ts,
           json_object('verdict', CASE WHEN NOT spread AND duration_s <= th.legit_clear_s
                                        AND NOT amplified THEN 'legitimate'
                                       ELSE 'amplifying' END,
                       'spread_to_other_pools', spread, 'duration_s', duration_s,
                       'burst_amplified', amplified, 'peak_wait_p95_s', peak_wait_p95_s,
                       'input', 'requests'),
           CASE WHEN spread AND amplified THEN 'high' ELSE 'medium' END,
           NULL::DOUBLE, NULL::DOUBLE,
           spread OR duration_s > th.legit_clear_s OR amplified
    FROM zone_judged CROSS JOIN th
),
allf AS (
    SELECT * FROM conflict
    UNION ALL SELECT * FROM inversion
    UNION ALL SELECT * FROM burst_amp
    UNION ALL SELECT * FROM oscillation
    UNION ALL SELECT * FROM retry
    UNION ALL SELECT * FROM energy
    UNION ALL SELECT * FROM di_hcl
    UNION ALL SELECT * FROM legit
)
SELECT
    $pilot AS pilot,
    phase,
    pattern,
    scope_pool,
    scope_gpus,
    start_ts,
    end_ts,
    CAST(evidence AS VARCHAR) AS evidence_json,
    severity,
    CAST(latency_cost_s AS DOUBLE) AS latency_cost_s,
    CAST(gpu_hours_lost AS DOUBLE) AS gpu_hours_lost,
    detected
FROM allf
