-- Hidden idle map: per GPU and 1-minute window, nominal (gpu_util) vs effective (sm_active)
-- utilization and their gap in percentage points (METRICS.md, HCL per GPU and window).
SELECT
    $pilot AS pilot,
    pool,
    node,
    gpu,
    make_timestamp((ts_us // 60000000) * 60000000) AS window_start,
    sum(value * dt_s) FILTER (WHERE series = 'gpu_util')
        / nullif(sum(dt_s) FILTER (WHERE series = 'gpu_util'), 0) AS nominal,
    sum(value * dt_s) FILTER (WHERE series = 'sm_active')
        / nullif(sum(dt_s) FILTER (WHERE series = 'sm_active'), 0) AS effective,
    100 * (sum(value * dt_s) FILTER (WHERE series = 'gpu_util')
              / nullif(sum(dt_s) FILTER (WHERE series = 'gpu_util'), 0)
           - sum(value * dt_s) FILTER (WHERE series = 'sm_active')
              / nullif(sum(dt_s) FILTER (WHERE series = 'sm_active'), 0)) AS hcl_pp
FROM int_gpu_samples
WHERE pilot = $pilot AND series IN ('gpu_util', 'sm_active')
GROUP BY pool, node, gpu, ts_us // 60000000
