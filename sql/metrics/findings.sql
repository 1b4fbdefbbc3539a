-- Pattern findings (METRICS.md, Patterns): one row per candidate with its scope, evidence,
-- severity and cost; `detected` says whether it crossed its threshold (thresholds in
-- int_thresholds). Range joins go through a 1-minute bucket key + range filter.
-- Queue-wait costs are attributed (end of file): each attempt's wait goes to at most one
-- detected finding, so the costs are shares of the phase's total queue wait.
WITH th AS (SELECT * FROM int_thresholds WHERE pilot = $pilot),
pool_load AS (
    SELECT pool, m, arrivals FROM int_pool_minutes WHERE pilot = $pilot
),
jb AS (
    SELECT job_id, kind, pool, gpus, gpu_ids, start_ts, end_ts,
           epoch_us(start_ts) AS js, epoch_us(end_ts) AS je
    FROM jobs
    WHERE pilot = $pilot AND start_ts IS NOT NULL AND end_ts IS NOT NULL AND pool IS NOT NULL
),
job_hits AS (
    SELECT job_id, attempts_hit, p01_hit, attempts_delayed, p01_delayed, wait_overlap_s,
           p01_wait_overlap_s
    FROM int_job_waits WHERE pilot = $pilot
),
job_load AS (
    SELECT jb.job_id, sum(pl.arrivals) AS pool_arrivals
    FROM jb JOIN pool_load pl
      ON pl.pool = jb.pool AND pl.m >= jb.js // 60000000 AND pl.m <= (jb.je - 1) // 60000000
    GROUP BY jb.job_id
),
jf AS (
    SELECT jb.*, h.attempts_hit, h.p01_hit, h.attempts_delayed, h.p01_delayed,
           h.wait_overlap_s, h.p01_wait_overlap_s,
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
                       'attempts_waiting', attempts_hit, 'attempts_delayed', attempts_delayed,
                       'share_of_pool_attempts', share_hit,
                       'wait_overlap_s', wait_overlap_s, 'input', 'requests + jobs')
               AS evidence,
           CASE WHEN share_hit >= 0.10 THEN 'high' WHEN share_hit >= 0.01 THEN 'medium'
                ELSE 'low' END AS severity,
           wait_overlap_s AS latency_cost_s,
           NULL::DOUBLE AS gpu_hours_lost,
           attempts_delayed >= th.conflict_min_attempts AS detected
    FROM jf CROSS JOIN th
),
inversion AS (
    SELECT phase, 'priority_inversion' AS pattern, pool, gpu_ids, start_ts, end_ts,
           json_object('job_id', job_id, 'kind', kind, 'held_s', held_s,
                       'p0_p1_attempts_waiting', p01_hit,
                       'p0_p1_attempts_delayed', p01_delayed,
                       'inversion_time_s', p01_wait_overlap_s, 'input', 'requests + jobs'),
           CASE WHEN p01_wait_overlap_s >= 600 THEN 'high'
                WHEN p01_wait_overlap_s >= 60 THEN 'medium' ELSE 'low' END,
           p01_wait_overlap_s,
           NULL::DOUBLE,
           held_s > th.long_job_s AND p01_delayed >= th.conflict_min_attempts
    FROM jf CROSS JOIN th
    WHERE p01_hit > 0
),
burst_amp AS (
    SELECT phase, 'burst_amplification', pool, NULL::VARCHAR[], start_ts, end_ts,
           json_object('episode_id', episode_id, 'amplification', amplification,
                       'queue_wait_p95_s', wait_p95_s,
                       'trailing_queue_wait_p95_s', trailing_wait_p95_s,
                       'rate_ratio', rate_ratio,
                       'excess_wait_s', (wait_p95_s - coalesce(trailing_wait_p95_s, 0)) * arrivals,
                       'note', note, 'input', 'requests'),
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
-- retry / timeout amplification (METRICS.md): per pool, a timeout spike is a run of minutes
-- whose timeout/drop rate exceeds timeout_rate_max (read from `thresholds`: int_thresholds has
-- no column for it). For each spike: retries in window t+1 explained by timeouts in window t
-- (sum over its minutes of min(retries[t+1], timeouts[t])), and the retry share (retries /
-- attempts) during the spike and the minute after it vs the pool-phase's other minutes;
-- amplification when that share is >= retry_spike_ratio x the share outside and at least one
-- retry is explained. Cost: time the timed-out attempts spent before timing out (latency;
-- dropped attempts have no end time and are only counted) and the GPU time they burnt
-- (service time of attempts that started: lost work).
tr AS (
    SELECT timeout_rate_max FROM int_thresholds WHERE pilot = $pilot
),
rt AS (
    SELECT p.pool, p.phase, p.m, p.arrivals, p.retries, p.timeouts,
           p.timeouts > 0 AND p.timeouts > tr.timeout_rate_max * p.arrivals AS spike,
           CASE WHEN lead(p.m) OVER (PARTITION BY p.pool ORDER BY p.m) = p.m + 1
                THEN lead(p.retries) OVER (PARTITION BY p.pool ORDER BY p.m) END
               AS retries_next
    FROM int_pool_minutes p CROSS JOIN tr
    WHERE p.pilot = $pilot AND p.phase IS NOT NULL
),
rt_isl AS (
    SELECT *, m - row_number() OVER (PARTITION BY pool ORDER BY m) AS island
    FROM rt WHERE spike
),
spikes AS (
    SELECT pool, island, arg_min(phase, m) AS phase, min(m) AS m0, max(m) AS m1,
           sum(timeouts)                               AS timeouts,
           sum(coalesce(retries_next, 0))              AS retries_next,
           sum(least(coalesce(retries_next, 0), timeouts)) AS explained_retries
    FROM rt_isl GROUP BY pool, island
),
-- a spike's reach: its minutes and the one after (where its retries land)
spike_win AS (
    SELECT s.pool, s.island, r.m, r.arrivals, r.retries
    FROM spikes s
    JOIN rt r ON r.pool = s.pool AND r.m >= s.m0 AND r.m <= s.m1 + 1
),
spike_share AS (
    SELECT pool, island, sum(arrivals) AS arrivals, sum(retries) AS retries
    FROM spike_win GROUP BY pool, island
),
calm AS (
    SELECT r.pool, r.phase, sum(r.arrivals) AS arrivals, sum(r.retries) AS retries
    FROM rt r
    LEFT JOIN (SELECT DISTINCT pool, m FROM spike_win) w ON w.pool = r.pool AND w.m = r.m
    WHERE w.m IS NULL
    GROUP BY r.pool, r.phase
),
to_cost AS (
    SELECT pool, arrival_us // 60000000 AS m,
           sum(e2e_s) AS timeout_e2e_s, coalesce(sum(service_s), 0) AS timeout_service_s,
           count(*) FILTER (WHERE status = 'dropped') AS dropped
    FROM int_attempts
    WHERE pilot = $pilot AND status IN ('timeout', 'dropped')
    GROUP BY ALL
),
spike_cost AS (
    SELECT s.pool, s.island, sum(c.timeout_e2e_s) AS latency_s,
           sum(c.timeout_service_s) / 3600 AS gpu_hours, sum(c.dropped) AS dropped
    FROM spikes s
    JOIN to_cost c ON c.pool = s.pool AND c.m >= s.m0 AND c.m <= s.m1
    GROUP BY s.pool, s.island
),
rt_judged AS (
    SELECT s.*, sh.arrivals AS arrivals_during, sh.retries AS retries_during,
           sh.retries * 1.0 / nullif(sh.arrivals, 0)      AS share_during,
           c.retries * 1.0 / nullif(c.arrivals, 0)        AS share_outside,
           sc.latency_s, sc.gpu_hours, coalesce(sc.dropped, 0) AS dropped,
           -- compared without dividing so that no retries outside still counts
           s.explained_retries > 0 AND sh.retries > 0
               AND sh.retries * coalesce(c.arrivals, 0)
                   >= th.retry_spike_ratio * coalesce(c.retries, 0) * sh.arrivals
               AS amplified
    FROM spikes s
    CROSS JOIN th
    JOIN spike_share sh ON sh.pool = s.pool AND sh.island = s.island
    LEFT JOIN calm c ON c.pool = s.pool AND c.phase = s.phase
    LEFT JOIN spike_cost sc ON sc.pool = s.pool AND sc.island = s.island
),
retry AS (
    SELECT r.phase, 'retry_timeout_amplification', r.pool, NULL::VARCHAR[],
           make_timestamp(r.m0 * 60000000), make_timestamp((r.m1 + 1) * 60000000),
           json_object('timeouts', r.timeouts, 'retries_next_window', r.retries_next,
                       'retries_explained_by_timeouts', r.explained_retries,
                       'explained_share',
                       r.explained_retries * 1.0 / nullif(r.retries_next, 0),
                       'retry_share_during_spike', r.share_during,
                       'retry_share_outside', r.share_outside,
                       'timeout_rate_max', tr.timeout_rate_max,
                       'retry_spike_ratio', th.retry_spike_ratio,
                       'timeout_latency_s', r.latency_s,
                       'dropped_attempts_no_end_time', r.dropped, 'input', 'requests'),
           CASE WHEN r.amplified
                     AND r.explained_retries >= 0.5 * r.retries_next
                     AND r.share_during >= 2 * th.retry_spike_ratio
                                           * coalesce(r.share_outside, 0) THEN 'high'
                WHEN r.amplified THEN 'medium' ELSE 'low' END,
           r.latency_s,
           r.gpu_hours,
           coalesce(r.amplified, false)
    FROM rt_judged r CROSS JOIN th CROSS JOIN tr
),
-- energy vs latency: Spearman rho of per-minute pool power and P95 latency (rank + corr).
-- Power is a parallel float sum: minutes of equal power differ in their last bits with the
-- summation order, so it is ranked to the microwatt (equal minutes tie on every run).
el AS (
    SELECT pool, phase, power_w, latency_p95_s,
           rank() OVER (PARTITION BY pool, phase ORDER BY round(power_w, 6)) AS r_pow,
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
-- non-productive queue waiting (DI > di) and hidden GPU occupancy loss (HCL > hcl_pp), judged
-- per pool x phase (metrics_headline's pool breakdown; the same definitions as the indices),
-- so a finding names the pool where the waiting or the loss happens.
idx AS (
    SELECT h.phase, h.breakdown_value AS pool,
           CASE h.metric WHEN 'delay_index' THEN 'DI' ELSE 'HCL' END AS index, h.value,
           CASE WHEN h.metric = 'hcl_pp'
                THEN 'effective utilisation from ' || coalesce(e.note, 'unknown') END AS note
    FROM metrics_headline h
    LEFT JOIN metrics_headline e
      ON e.pilot = h.pilot AND e.phase = h.phase AND e.segment = h.segment
     AND e.breakdown = 'pool' AND e.breakdown_value = h.breakdown_value
     AND e.metric = 'effective_util'
    WHERE h.pilot = $pilot AND h.breakdown = 'pool' AND h.segment = 'all'
      AND h.metric IN ('delay_index', 'hcl_pp')
),
ph AS (SELECT phase, start_ts, end_ts FROM phases WHERE pilot = $pilot),
di_hcl AS (
    SELECT i.phase,
           CASE i.index WHEN 'DI' THEN 'non_productive_queue_waiting'
                        ELSE 'hidden_gpu_occupancy_loss' END,
           i.pool, NULL::VARCHAR[], ph.start_ts, ph.end_ts,
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
-- legitimate vs amplifying queueing (METRICS.md) over queue saturation zones: legitimate
-- when the zone stays in its pool (no other pool saturated while it lasted), clears within
-- legit_clear_s and its own amplification is <= 1; otherwise amplifying. The zone's
-- amplification compares its growth with the load's, from int_pool_minutes: (mean 1-min
-- queue-wait P95 in the zone / median 1-min queue-wait P95 of the pool's trailing
-- burst_trailing_s, floored at sched_delay_target_s: a shorter wait is no queue) / (mean
-- 1-min arrivals in the zone / median trailing 1-min arrivals), compared without dividing.
-- A zone that neither spread nor lasted but has no trailing load to compare with is
-- 'undetermined' (not a finding). Cost: the queue wait accrued by the completed attempts
-- that arrived in the zone.
zones AS (
    SELECT pool, zone_id, phase, start_ts, end_ts, duration_s, peak_wait_p95_s,
           epoch_us(start_ts) // 60000000 AS m0, epoch_us(end_ts) // 60000000 AS m1
    FROM queue_saturation_zones WHERE pilot = $pilot
),
zpm AS (SELECT pool, m, arrivals, queue_wait_p95_s, ok_wait_s
        FROM int_pool_minutes WHERE pilot = $pilot),
zone_in AS (
    SELECT z.zone_id, avg(p.queue_wait_p95_s) AS wait_p95_s, avg(p.arrivals) AS rate_pm,
           sum(p.ok_wait_s) AS wait_s
    FROM zones z JOIN zpm p ON p.pool = z.pool AND p.m >= z.m0 AND p.m < z.m1
    GROUP BY z.zone_id
),
zone_trail AS (
    SELECT z.zone_id,
           greatest(quantile_cont(p.queue_wait_p95_s, 0.5) FILTER (WHERE p.arrivals > 0),
                    any_value(th.sched_delay_target_s)) AS trail_wait_p95_s,
           quantile_cont(p.arrivals, 0.5)       AS trail_rate_pm
    FROM zones z
    CROSS JOIN th
    JOIN zpm p
      ON p.pool = z.pool AND p.m < z.m0
     AND p.m >= z.m0 - CAST(th.burst_trailing_s AS BIGINT) // 60
    GROUP BY z.zone_id
),
zone_spread AS (
    SELECT z.zone_id, count(DISTINCT o.pool) AS other_pools
    FROM zones z
    JOIN zones o ON o.pool <> z.pool AND o.start_ts < z.end_ts AND o.end_ts > z.start_ts
    GROUP BY z.zone_id
),
zone_judged AS (
    SELECT z.*, i.wait_p95_s, i.rate_pm, i.wait_s, t.trail_wait_p95_s, t.trail_rate_pm,
           coalesce(s.other_pools, 0) AS other_pools,
           (i.wait_p95_s / t.trail_wait_p95_s)
               / nullif(i.rate_pm / nullif(t.trail_rate_pm, 0), 0) AS amplification,
           i.wait_p95_s * t.trail_rate_pm > t.trail_wait_p95_s * i.rate_pm AS amplified
    FROM zones z
    LEFT JOIN zone_in i USING (zone_id)
    LEFT JOIN zone_trail t USING (zone_id)
    LEFT JOIN zone_spread s USING (zone_id)
),
zone_verdict AS (
    SELECT zj.*,
           CASE WHEN other_pools > 0 OR duration_s > th.legit_clear_s OR amplified
                    THEN 'amplifying'
                -- no trailing load to compare with: not judged rather than called legitimate
                WHEN coalesce(trail_rate_pm, 0) = 0 OR wait_p95_s IS NULL THEN 'undetermined'
                ELSE 'legitimate'
           END AS verdict
    FROM zone_judged zj CROSS JOIN th
),
legit AS (
    SELECT phase, 'legitimate_vs_amplifying_queueing', pool, NULL::VARCHAR[], start_ts,
           end_ts,
           json_object('verdict', verdict,
                       'other_pools_saturated', other_pools, 'duration_s', duration_s,
                       'amplification', amplification, 'queue_wait_p95_s', wait_p95_s,
                       'trailing_queue_wait_p95_s', trail_wait_p95_s,
                       'arrivals_per_min', rate_pm, 'trailing_arrivals_per_min', trail_rate_pm,
                       'peak_wait_p95_s', peak_wait_p95_s, 'completed_wait_s', wait_s,
                       'legit_clear_s', th.legit_clear_s, 'input', 'requests'),
           CASE WHEN other_pools > 0 AND coalesce(amplified, false) THEN 'high'
                WHEN verdict = 'amplifying' THEN 'medium'
                ELSE 'low' END,
           wait_s,
           NULL::DOUBLE,
           verdict = 'amplifying'
    FROM zone_verdict CROSS JOIN th
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
),
-- Queue-wait attribution (METRICS.md 5, Attribution): the patterns whose cost is queue wait,
-- in precedence order, most specific cause first. Priority inversion is the part of a batch
-- conflict where P0/P1 attempts wait behind a long job (every detected inversion's job is also
-- a detected conflict), so it goes first or it would never get any wait; jobs holding the
-- pool's GPUs are a cause outside the load, bursts a cause in the load; retries follow
-- timeouts of waits already caused; an amplifying saturation zone describes the queue itself
-- and takes what is left.
prec AS (
    SELECT * FROM (VALUES
        ('priority_inversion', 1), ('batch_scheduling_conflict', 2),
        ('burst_amplification', 3), ('retry_timeout_amplification', 4),
        ('legitimate_vs_amplifying_queueing', 5)
    ) v(pattern, precedence)
),
-- one total order over the findings (precedence, then the earliest finding): an attempt goes
-- to the first detected finding of that order that covers it
ranked AS (
    SELECT f.*, p.precedence,
           row_number() OVER (ORDER BY p.precedence NULLS LAST, f.start_ts NULLS LAST,
                                       f.scope_pool NULLS LAST, f.end_ts NULLS LAST,
                                       CAST(f.evidence AS VARCHAR) NULLS LAST) AS fid
    FROM allf f LEFT JOIN prec p ON p.pattern = f.pattern
),
-- what a detected finding covers: the job patterns, the waiting attempts the jobs delayed (as
-- detected above; P0/P1 only for inversion) of their pool whose wait overlaps the job's run;
-- the others, the attempts of their pool arriving in [start_ts, end_ts). Only attempts of the
-- finding's phase.
cover AS (
    SELECT fid, pattern, phase, scope_pool AS pool,
           epoch_us(start_ts) AS cs_us, epoch_us(end_ts) AS ce_us,
           pattern IN ('priority_inversion', 'batch_scheduling_conflict') AS by_overlap
    FROM ranked
    WHERE detected AND precedence IS NOT NULL AND start_ts IS NOT NULL AND end_ts IS NOT NULL
),
-- the arrival-window patterns' minutes (a bucket key for their range join)
ckeys AS (
    SELECT fid, phase, pool, cs_us, ce_us,
           unnest(range(cs_us // 60000000, (ce_us - 1) // 60000000 + 1)) AS m
    FROM cover
    WHERE NOT by_overlap
),
-- the job patterns' findings: per pattern, pool and phase, fid orders them by start (then
-- end): the least fid of those ending after a wait's arrival a is the one starting first, so
-- it covers the wait [a, e) if any does (its start < e). Jobs ending after a: those ending
-- in a later minute (one least fid per minute of waits: minutes x jobs, few) and those
-- ending in a's own minute after a (few per wait). No waits x jobs pairs: at 100 M attempts
-- the jobs of a pool overlap by the tens and those pairs were most of findings' time.
jcov AS (
    SELECT fid, pattern, phase, pool, cs_us, ce_us, ce_us // 60000000 AS cm
    FROM cover
    WHERE by_overlap
),
-- attempts that waited, grouped by everything coverage reads (identical attempts share a
-- row and count n times): no attempt key is needed to give each one a single finding.
-- The job patterns take only the waits the jobs plausibly delayed (int_delayed_waits: one
-- row per attempt, a function of these columns, so identical attempts are all in it and its
-- count is theirs); the others, the waits arriving in their minutes. Grouping only those
-- (not every wait of the pilot) is most of findings' time saved.
wdel AS (
    SELECT phase, pool, priority, arrival_us, queue_wait_s, wait_end_us,
           arrival_us // 60000000 AS m, count(*) AS n
    FROM int_delayed_waits
    WHERE pilot = $pilot AND queue_wait_s > 0 AND phase IS NOT NULL AND priority IS NOT NULL
    GROUP BY phase, pool, priority, arrival_us, queue_wait_s, wait_end_us
),
in_keys AS (SELECT DISTINCT pool, m, phase FROM ckeys),
win AS (
    SELECT a.phase, a.pool, a.priority, a.arrival_us, a.queue_wait_s,
           a.arrival_us // 60000000 AS m, count(*) AS n
    FROM int_attempts a
    JOIN in_keys k
      ON k.pool = a.pool AND k.m = a.arrival_us // 60000000 AND k.phase = a.phase
    WHERE a.pilot = $pilot AND a.queue_wait_s > 0
    GROUP BY a.phase, a.pool, a.priority, a.arrival_us, a.queue_wait_s
),
wdel_m AS (SELECT DISTINCT pool, phase, m FROM wdel),
ends_after AS (
    SELECT k.pool, k.phase, k.m, j.pattern, min(j.fid) AS fid
    FROM wdel_m k
    JOIN jcov j ON j.pool = k.pool AND j.phase = k.phase AND j.cm > k.m
    GROUP BY k.pool, k.phase, k.m, j.pattern
),
-- candidates: every one is checked for overlap, and the least valid fid is the wait's finding
jcand AS (
    SELECT w.phase, w.pool, w.priority, w.arrival_us, w.queue_wait_s, w.wait_end_us, w.n,
           e.fid
    FROM wdel w
    JOIN ends_after e ON e.pool = w.pool AND e.phase = w.phase AND e.m = w.m
    UNION ALL
    SELECT w.phase, w.pool, w.priority, w.arrival_us, w.queue_wait_s, w.wait_end_us, w.n,
           j.fid
    FROM wdel w
    JOIN jcov j ON j.pool = w.pool AND j.phase = w.phase AND j.cm = w.m
    WHERE j.ce_us > w.arrival_us
),
pairs AS (
    SELECT c.phase, c.pool, c.priority, c.arrival_us, c.queue_wait_s, c.n, c.fid
    FROM jcand c
    JOIN jcov j ON j.fid = c.fid
    WHERE c.wait_end_us > j.cs_us
      AND (j.pattern <> 'priority_inversion' OR c.priority IN ('P0', 'P1'))
    UNION ALL
    SELECT w.phase, w.pool, w.priority, w.arrival_us, w.queue_wait_s, w.n, k.fid
    FROM win w
    JOIN ckeys k ON k.pool = w.pool AND k.m = w.m AND k.phase = w.phase
    WHERE w.arrival_us >= k.cs_us AND w.arrival_us < k.ce_us
),
best AS (
    SELECT max(queue_wait_s * n) AS wait_s, min(fid) AS fid
    FROM pairs
    GROUP BY phase, pool, priority, arrival_us, queue_wait_s
),
attributed AS (SELECT fid, sum(wait_s) AS wait_s FROM best GROUP BY fid),
-- the denominator: every attempt's queue wait in the phase, right-censored ones included
phase_wait AS (
    SELECT phase, sum(queue_wait_s) AS total_s
    FROM int_attempts WHERE pilot = $pilot GROUP BY phase
)
SELECT
    $pilot AS pilot,
    r.phase,
    r.pattern,
    r.scope_pool,
    r.scope_gpus,
    r.start_ts,
    r.end_ts,
    CAST(r.evidence AS VARCHAR) AS evidence_json,
    r.severity,
    -- a queue-wait pattern's cost is its attributed wait (the detector's own measure stays
    -- in evidence_json); other patterns keep theirs
    CAST(CASE WHEN r.precedence IS NOT NULL THEN coalesce(a.wait_s, 0)
              ELSE r.latency_cost_s END AS DOUBLE) AS latency_cost_s,
    CAST(r.gpu_hours_lost AS DOUBLE) AS gpu_hours_lost,
    r.detected,
    CAST(CASE WHEN r.precedence IS NOT NULL THEN coalesce(a.wait_s, 0) END AS DOUBLE)
        AS attributed_queue_wait_s,
    CAST(CASE WHEN r.precedence IS NOT NULL
              THEN coalesce(a.wait_s, 0) / nullif(pw.total_s, 0) END AS DOUBLE)
        AS queue_wait_share
FROM ranked r
LEFT JOIN attributed a ON a.fid = r.fid
LEFT JOIN phase_wait pw ON pw.phase = r.phase
