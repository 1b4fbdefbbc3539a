-- Indices of METRICS.md appendix A per phase x segment, with the thresholds in force beside
-- each value: DI and HCL (from metrics_headline, which names HCL's effective-utilisation
-- source), WPI (wave events after burst episodes; pilot-wide, segment 'all') and CI (share of
-- pool x 1-min windows with arrivals that are coherent: adherence >= sla_target, no queue
-- saturation, no idle<->overload flip). A NULL value carries the reason in `note`.
WITH th AS (SELECT * FROM int_thresholds WHERE pilot = $pilot),
h AS (
    SELECT phase, segment, metric, value, note FROM metrics_headline
    WHERE pilot = $pilot AND breakdown = 'overall' AND metric IN ('delay_index', 'hcl_pp')
),
eff AS (
    SELECT phase, segment, note AS eff_src FROM metrics_headline
    WHERE pilot = $pilot AND breakdown = 'overall' AND metric = 'effective_util'
),
di_hcl AS (
    SELECT phase, segment,
           CASE metric WHEN 'delay_index' THEN 'DI' ELSE 'HCL' END AS index,
           value,
           CASE metric WHEN 'delay_index' THEN 'ratio' ELSE 'pp' END AS unit,
           CASE metric WHEN 'delay_index' THEN json_object('di', th.di)
                ELSE json_object('hcl_pp', th.hcl_pp) END AS thresholds,
           CASE WHEN metric = 'delay_index' AND value IS NULL AND note LIKE 'not measured%'
                    THEN note
                WHEN metric = 'delay_index' AND value IS NULL
                    THEN 'not measured: no completed attempts'
                WHEN metric = 'hcl_pp' AND value IS NULL AND note LIKE 'not measured%'
                    THEN note
                WHEN metric = 'hcl_pp' AND value IS NULL
                    THEN 'not measured: ' || coalesce(note, 'no GPU telemetry')
                WHEN metric = 'hcl_pp'
                    THEN 'effective utilisation from ' || coalesce(eff.eff_src, 'unknown')
           END AS note
    FROM h CROSS JOIN th LEFT JOIN eff USING (phase, segment)
),
wpi AS (
    SELECT p.phase, 'all' AS segment, 'WPI' AS index,
           avg(e.share) AS value, 'ratio' AS unit,
           json_object('wave_factor', any_value(th.wave_factor),
                       'wave_lag_s', any_value(th.wave_lag_s),
                       'burst_trailing_s', any_value(th.burst_trailing_s)) AS thresholds,
           CASE WHEN NOT any_value(hv.req)
                THEN 'not measured: needs per-request rows (latency per pool)'
                WHEN count(e.episode_id) = 0
                THEN 'not measured: no burst episodes (or a single pool)' END AS note
    FROM (SELECT phase FROM phases WHERE pilot = $pilot) p
    CROSS JOIN th
    CROSS JOIN (SELECT count(*) > 0 AS req FROM int_pool_minutes
                WHERE pilot = $pilot AND latency_p95_s IS NOT NULL) hv
    LEFT JOIN (
        SELECT phase, episode_id, avg(CASE WHEN exceeded THEN 1.0 ELSE 0.0 END) AS share
        FROM int_wave_events WHERE pilot = $pilot GROUP BY phase, episode_id
    ) e ON e.phase = p.phase
    GROUP BY p.phase
),
seg AS (SELECT * FROM (VALUES ('all'), ('treatment'), ('control')) v(segment)),
ci_cells AS (
    SELECT s.phase, g.segment, pm.sla_adherence, s.state, s.flip, pm.wait_sla_ratio_p95
    FROM idle_overload_states s
    JOIN int_pool_minutes pm
      ON pm.pilot = $pilot AND pm.pool = s.pool AND pm.window_start = s.window_start
    JOIN seg g ON g.segment = 'all' OR g.segment = s.segment
    WHERE s.pilot = $pilot AND s.phase IS NOT NULL AND pm.first_arrivals > 0
),
ci AS (
    SELECT p.phase, g.segment, 'CI' AS index,
           -- no cell: no value (a 0 % beside "not measured" would read as a finding)
           CASE WHEN count(c.phase) > 0 THEN
               100 * avg(CASE WHEN c.sla_adherence >= th.sla_target
                               AND coalesce(c.wait_sla_ratio_p95, 0) <= 0.5
                               AND NOT c.flip THEN 1.0 ELSE 0.0 END) END AS value,
           '%' AS unit,
           json_object('sla_target', any_value(th.sla_target),
                       'saturation', 'queue-wait P95 > SLA/2',
                       'flip_window_s', any_value(th.flip_window_s),
                       'idle_util', any_value(th.idle_util)) AS thresholds,
           CASE WHEN count(c.phase) = 0
                THEN 'not measured: needs per-request rows (no pool-minute with first '
                     || 'attempts in this segment)'
           END AS note
    FROM (SELECT phase FROM phases WHERE pilot = $pilot) p
    CROSS JOIN seg g
    CROSS JOIN th
    LEFT JOIN ci_cells c ON c.phase = p.phase AND c.segment = g.segment
    GROUP BY p.phase, g.segment
)
SELECT $pilot AS pilot, phase, segment, index, CAST(value AS DOUBLE) AS value, unit,
       CAST(thresholds AS VARCHAR) AS thresholds_json, note
FROM (
    SELECT * FROM di_hcl
    UNION ALL SELECT * FROM wpi
    UNION ALL SELECT * FROM ci
)
