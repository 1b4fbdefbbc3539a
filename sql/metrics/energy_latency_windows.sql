-- Energy-latency view (visual appendix 6): per 1-minute window, the mean cluster GPU power
-- (sum over GPUs of each GPU's time-weighted mean power_w in the window) beside the
-- pilot-wide P95 end-to-end latency of attempts that completed ok and arrived in the window.
-- Windows without either side are kept with a NULL so gaps stay visible.
WITH pw AS (
    SELECT ts_us // 60000000 AS m, unit, sum(value * dt_s) / nullif(sum(dt_s), 0) AS w
    FROM int_gpu_samples
    WHERE pilot = $pilot AND series = 'power_w'
    GROUP BY ALL
),
power AS (
    SELECT m, sum(w) AS power_w, count(*) AS gpus FROM pw GROUP BY m
),
lat AS (
    SELECT arrival_us // 60000000 AS m,
           quantile_cont(e2e_s, 0.95) FILTER (WHERE status = 'ok') AS p95_latency_s,
           count(*) AS attempts
    FROM int_attempts
    WHERE pilot = $pilot
    GROUP BY m
),
w AS (
    SELECT coalesce(p.m, l.m) AS m, p.power_w, p.gpus, l.p95_latency_s, l.attempts
    FROM power p
    FULL OUTER JOIN lat l ON l.m = p.m
)
SELECT
    $pilot AS pilot,
    make_timestamp(w.m * 60000000) AS window_start,
    ph.phase,
    w.power_w,
    w.gpus AS gpus_reporting,
    w.p95_latency_s,
    coalesce(w.attempts, 0) AS attempts
FROM w
LEFT JOIN phases ph
  ON ph.pilot = $pilot
 AND make_timestamp(w.m * 60000000) >= ph.start_ts
 AND make_timestamp(w.m * 60000000) <  ph.end_ts
