-- Job timeline: one row per scheduler job (jobs table: sacct, Slurm accounting) with its
-- pool, state, GPUs and run interval, the phase its start falls in, how long it waited
-- (submit -> start) and ran (start -> end), and its GPU-hours when its GPU count is known.
-- A job still running at export (start, no end) runs to the end of the pilot's last phase
-- (`end_known` false). A job that never started has no run interval. No jobs: zero rows.
WITH span AS (SELECT max(end_ts) AS end_ts FROM phases WHERE pilot = $pilot),
j AS (
    SELECT j.*, j.end_ts IS NOT NULL AS end_known,
           CASE WHEN j.start_ts IS NOT NULL THEN coalesce(j.end_ts, greatest(s.end_ts, j.start_ts))
           END AS run_end_ts
    FROM jobs j CROSS JOIN span s
    WHERE j.pilot = $pilot
)
SELECT
    $pilot AS pilot,
    j.job_id,
    j.kind,
    j.queue,
    j.state,
    j.pool,
    j.node,
    j.gpus,
    j.submit_ts,
    j.start_ts,
    j.run_end_ts AS end_ts,
    j.end_known,
    p.phase,
    (epoch_us(j.start_ts) - epoch_us(j.submit_ts)) / 1e6 AS wait_s,
    (epoch_us(j.run_end_ts) - epoch_us(j.start_ts)) / 1e6 AS duration_s,
    j.gpus * (epoch_us(j.run_end_ts) - epoch_us(j.start_ts)) / 3.6e9 AS gpu_hours
FROM j
LEFT JOIN phases p
  ON p.pilot = $pilot AND j.start_ts >= p.start_ts AND j.start_ts < p.end_ts
