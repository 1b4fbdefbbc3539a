-- Burst amplification per burst episode (METRICS.md, Bursts): (queue-wait P95 of attempts
-- arriving in the episode / P95 of those arriving in the trailing window before it) /
-- (episode rate / trailing median rate). Above 1 the queue grew faster than the load.
-- Exact quantiles. Range join through a 1-minute bucket key plus a range filter.
-- Needs queue waits: without per-request rows (e.g. bursts found in an arrival trace) it has
-- no rows, and measurement_coverage says it was not tested.
WITH th AS (
    SELECT CAST(burst_trailing_s * 1e6 AS BIGINT) AS trail_us,
           sched_delay_target_s AS floor_s
    FROM int_thresholds WHERE pilot = $pilot
),
have AS (SELECT count(*) AS attempts FROM int_attempts WHERE pilot = $pilot),
ep AS (
    SELECT pool, episode_id, phase, start_ts, end_ts, windows, arrivals, peak_rate_rps,
           trailing_median_rps, epoch_us(start_ts) AS s_us, epoch_us(end_ts) AS e_us
    FROM burst_episodes CROSS JOIN have
    WHERE pilot = $pilot AND have.attempts > 0
),
keys AS (
    SELECT ep.episode_id, ep.pool, ep.s_us, ep.e_us,
           unnest(range((ep.s_us - th.trail_us) // 60000000, (ep.e_us - 1) // 60000000 + 1)) AS m
    FROM ep CROSS JOIN th
),
j AS (
    SELECT k.episode_id, a.queue_wait_s, a.arrival_us >= k.s_us AS inside
    FROM keys k
    CROSS JOIN th
    JOIN int_attempts a
      ON a.pilot = $pilot AND a.pool = k.pool AND a.arrival_us // 60000000 = k.m
     AND a.arrival_us >= k.s_us - th.trail_us AND a.arrival_us < k.e_us
),
q AS (
    SELECT episode_id,
           quantile_cont(queue_wait_s, 0.95) FILTER (WHERE inside)     AS wait_p95_s,
           quantile_cont(queue_wait_s, 0.95) FILTER (WHERE NOT inside) AS trailing_wait_p95_s
    FROM j
    GROUP BY episode_id
),
r AS (
    SELECT ep.*, q.wait_p95_s, q.trailing_wait_p95_s,
           ep.arrivals / ((ep.e_us - ep.s_us) / 1e6) AS rate_rps
    FROM ep LEFT JOIN q USING (episode_id)
)
SELECT
    $pilot AS pilot,
    pool,
    episode_id,
    phase,
    start_ts,
    end_ts,
    (e_us - s_us) / 1e6 AS duration_s,
    arrivals,
    rate_rps,
    trailing_median_rps,
    rate_rps / nullif(trailing_median_rps, 0) AS rate_ratio,
    wait_p95_s,
    trailing_wait_p95_s,
    wait_p95_s / nullif(trailing_wait_p95_s, 0) AS wait_ratio,
    (wait_p95_s / nullif(trailing_wait_p95_s, 0))
        / nullif(rate_rps / nullif(trailing_median_rps, 0), 0) AS amplification,
    -- the same comparison without dividing, so a queue growing from nothing still counts;
    -- a trailing wait under the scheduling-delay target counts as that target (a wait that
    -- short is no queue), so a few ms of noise cannot make every burst "amplified"
    coalesce(wait_p95_s * coalesce(trailing_median_rps, 0)
             > greatest(coalesce(trailing_wait_p95_s, 0), th.floor_s) * rate_rps,
             false) AS amplified,
    CASE
        WHEN wait_p95_s IS NULL THEN 'no started attempts in the episode'
        WHEN coalesce(trailing_median_rps, 0) = 0 THEN 'no trailing arrivals: ratio undefined'
        WHEN coalesce(trailing_wait_p95_s, 0) = 0
            THEN 'no queue wait in the trailing window: ratio undefined, amplified if the wait exceeds the scheduling-delay target'
    END AS note
FROM r
CROSS JOIN th
