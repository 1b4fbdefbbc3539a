-- Thresholds the analytics tables use, one row per pilot: the value in force (pilot.yaml
-- override or METRICS.md default), falling back to the default when a pilot was ingested
-- before a threshold existed; `thresholds_json` records every threshold beside the results.
WITH t AS (SELECT name, value FROM thresholds WHERE pilot = $pilot),
p AS (
    SELECT
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
        max(CASE WHEN name = 'retry_spike_ratio'     THEN value END) AS retry_spike_ratio
    FROM t
)
SELECT
    $pilot AS pilot,
    coalesce(burst_window_s, 10.0)         AS burst_window_s,
    coalesce(burst_trailing_s, 900.0)      AS burst_trailing_s,
    coalesce(wave_factor, 1.5)             AS wave_factor,
    coalesce(wave_lag_s, 300.0)            AS wave_lag_s,
    coalesce(long_job_s, 60.0)             AS long_job_s,
    coalesce(sla_target, 0.95)             AS sla_target,
    coalesce(hcl_pp, 10.0)                 AS hcl_pp,
    coalesce(di, 0.5)                      AS di,
    coalesce(sched_delay_target_s, 1.0)    AS sched_delay_target_s,
    coalesce(idle_util, 0.3)               AS idle_util,
    coalesce(flip_window_s, 300.0)         AS flip_window_s,
    coalesce(conflict_min_attempts, 5.0)   AS conflict_min_attempts,
    coalesce(energy_rho_max, 0.3)          AS energy_rho_max,
    coalesce(latency_cv_min, 0.5)          AS latency_cv_min,
    coalesce(legit_clear_s, 120.0)         AS legit_clear_s,
    coalesce(disruption_recover_s, 600.0)  AS disruption_recover_s,
    coalesce(retry_spike_ratio, 2.0)       AS retry_spike_ratio,
    (SELECT CAST(json_group_object(name, value) AS VARCHAR) FROM t) AS thresholds_json
FROM p
