-- The thresholds in force for the pilot, one row with one column each (METRICS.md defaults,
-- overridden by pilot.yaml), so later SQL can cross join it instead of repeating lookups.
SELECT
    $pilot AS pilot,
    max(CASE WHEN name = 'burst_factor'         THEN value END) AS burst_factor,
    max(CASE WHEN name = 'burst_min_count'      THEN value END) AS burst_min_count,
    max(CASE WHEN name = 'burst_window_s'       THEN value END) AS burst_window_s,
    max(CASE WHEN name = 'burst_trailing_s'     THEN value END) AS burst_trailing_s,
    max(CASE WHEN name = 'wave_factor'          THEN value END) AS wave_factor,
    max(CASE WHEN name = 'wave_lag_s'           THEN value END) AS wave_lag_s,
    max(CASE WHEN name = 'long_job_s'           THEN value END) AS long_job_s,
    max(CASE WHEN name = 'sla_target'           THEN value END) AS sla_target,
    max(CASE WHEN name = 'hcl_pp'               THEN value END) AS hcl_pp,
    max(CASE WHEN name = 'di'                   THEN value END) AS di,
    max(CASE WHEN name = 'sched_delay_target_s' THEN value END) AS sched_delay_target_s
FROM thresholds
WHERE pilot = $pilot
