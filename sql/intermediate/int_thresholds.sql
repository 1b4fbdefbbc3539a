-- The thresholds in force for the pilot, one row with one column each (METRICS.md defaults
-- merged with pilot.yaml overrides at ingest, see pipelines/config.py DEFAULT_THRESHOLDS), so
-- later SQL cross joins it instead of repeating lookups; `thresholds_json` records them all
-- beside the results that used them.
SELECT
    $pilot AS pilot,
    max(CASE WHEN name = 'burst_factor'          THEN value END) AS burst_factor,
    max(CASE WHEN name = 'burst_min_count'       THEN value END) AS burst_min_count,
    max(CASE WHEN name = 'burst_window_s'        THEN value END) AS burst_window_s,
    max(CASE WHEN name = 'burst_trailing_s'      THEN value END) AS burst_trailing_s,
    max(CASE WHEN name = 'wave_factor'           THEN value END) AS wave_factor,
    max(CASE WHEN name = 'wave_lag_s'            THEN value END) AS wave_lag_s,
    max(CASE WHEN name = 'long_job_s'            THEN value END) AS long_job_s,
    max(CASE WHEN name = 'sla_target'            THEN value END) AS sla_target,
    max(CASE WHEN name = 'hcl_pp'                THEN value END) AS hcl_pp,
    max(CASE WHEN name = 'di'                    THEN value END) AS di,
    max(CASE WHEN name = 'sched_delay_target_s'  THEN value END) AS sched_delay_target_s,
    max(CASE WHEN name = 'idle_util'             THEN value END) AS idle_util,
    max(CASE WHEN name = 'flip_window_s'         THEN value END) AS flip_window_s,
    max(CASE WHEN name = 'conflict_min_attempts' THEN value END) AS conflict_min_attempts,
    max(CASE WHEN name = 'energy_rho_max'        THEN value END) AS energy_rho_max,
    max(CASE WHEN name = 'latency_cv_min'        THEN value END) AS latency_cv_min,
    max(CASE WHEN name = 'legit_clear_s'         THEN value END) AS legit_clear_s,
    max(CASE WHEN name = 'disruption_recover_s'  THEN value END) AS disruption_recover_s,
    max(CASE WHEN name = 'retry_spike_ratio'     THEN value END) AS retry_spike_ratio,
    max(CASE WHEN name = 'timeout_rate_max'      THEN value END) AS timeout_rate_max,
    CAST(json_group_object(name, value) AS VARCHAR) AS thresholds_json
FROM thresholds
WHERE pilot = $pilot
