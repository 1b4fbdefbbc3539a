-- The waiting attempts (queue wait >= sched_delay_target_s) that the pool's scheduler jobs
-- plausibly delayed (METRICS.md 5, "Jobs: which waits they caused"): one row per such
-- attempt. int_job_waits counts them per job; findings attributes only their wait to the
-- job patterns. Its own table: inlined with the per-job sums, the plan was too large for
-- Spark's analyser.
WITH th AS (SELECT * FROM int_thresholds WHERE pilot = $pilot),
jb AS (
    SELECT pool, gpus, epoch_us(start_ts) AS js, epoch_us(end_ts) AS je
    FROM jobs
    WHERE pilot = $pilot AND start_ts IS NOT NULL AND end_ts IS NOT NULL AND pool IS NOT NULL
),
-- Which waits did the jobs cause (METRICS.md 5, patterns 1 and 3)? A fluid counterfactual
-- from telemetry alone: without its jobs the pool would have had their GPUs too. Running
-- values at many times come from step functions and per-minute running sums looked up by
-- minute (hash joins), not from job x waits joins, so the cost stays n log n. The jobs'
-- holds as events of +/- GPUs: at t, held H(t) = sum(d) and GPU-us held before t
-- G(t) = t * H(t) - sum(d * t_event), over the events at or before t.
hold_ev AS (
    SELECT pool, t, sum(d) AS d
    FROM (SELECT pool, js AS t, coalesce(gpus, 0) AS d FROM jb
          UNION ALL SELECT pool, je, -coalesce(gpus, 0) FROM jb)
    GROUP BY pool, t
),
-- the waiting attempts (a shorter wait is dispatch, not a queue) and their congested
-- periods, the maximal unions of their wait intervals: inside one, every GPU the jobs left
-- to the pool is busy
lw AS (
    SELECT pool, priority IN ('P0', 'P1') AS p01, arrival_us AS a_us,
           arrival_us + CAST(round(queue_wait_s * 1e6) AS BIGINT) AS e_us
    FROM int_attempts a CROSS JOIN th
    WHERE a.pilot = $pilot AND a.queue_wait_s >= th.sched_delay_target_s
),
lw_prev AS (
    SELECT *, max(e_us) OVER (PARTITION BY pool ORDER BY a_us, e_us
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_e_us
    FROM lw
),
-- a period starts at a wait arriving after every earlier one ended, and ends where the
-- waits before the next start end (the pool's last wait, for its last period)
periods AS (
    SELECT s.pool, s.a_us AS b_us,
           coalesce(lead(s.prev_e_us) OVER (PARTITION BY s.pool ORDER BY s.a_us), l.last_e_us)
               AS end_us
    FROM (SELECT pool, a_us, prev_e_us FROM lw_prev
          WHERE prev_e_us IS NULL OR a_us > prev_e_us) s
    JOIN (SELECT pool, max(e_us) AS last_e_us FROM lw GROUP BY pool) l USING (pool)
),
-- the held GPUs as a step function cut at every hold event and every minute of the pool's
-- periods: on [s, next_s), H = held and G(t) = held_us + held * (t - s); a time finds its
-- step through its minute (a hash join, not a sort of the waits)
hold_pts AS (
    SELECT pool, t, d FROM hold_ev
    UNION ALL
    SELECT pool, m * 60000000, 0
    FROM (SELECT pool, unnest(range(min(b_us) // 60000000, max(end_us) // 60000000 + 1)) AS m
          FROM periods GROUP BY pool)
),
hold_seg AS (
    SELECT pool, s, s // 60000000 AS m, held,
           s * held - sum_dt AS held_us,
           coalesce(lead(s) OVER (PARTITION BY pool ORDER BY s), 9223372036854775807) AS next_s
    FROM (SELECT pool, t AS s,
                 sum(sum(d)) OVER (PARTITION BY pool ORDER BY t ROWS UNBOUNDED PRECEDING)
                     AS held,
                 sum(sum(d * CAST(t AS DECIMAL(38, 0))))
                     OVER (PARTITION BY pool ORDER BY t ROWS UNBOUNDED PRECEDING) AS sum_dt
          FROM hold_pts GROUP BY pool, t)
),
-- H and G at each period's start b and end; only periods during which a job held GPUs
-- can hold a wait the jobs caused
period_hold AS (
    SELECT p.pool, p.b_us, p.end_us, hb.held AS held_b,
           hb.held_us + hb.held * (p.b_us - hb.s) AS held_us_b
    FROM periods p
    JOIN hold_seg hb
      ON hb.pool = p.pool AND hb.m = p.b_us // 60000000 AND hb.s <= p.b_us AND p.b_us < hb.next_s
    JOIN hold_seg he
      ON he.pool = p.pool AND he.m = p.end_us // 60000000 AND he.s <= p.end_us
     AND p.end_us < he.next_s
    WHERE he.held_us + he.held * (p.end_us - he.s) > hb.held_us + hb.held * (p.b_us - hb.s)
),
period_keys AS (
    SELECT pool, b_us, end_us,
           unnest(range(b_us // 60000000, (end_us - 1) // 60000000 + 1)) AS m
    FROM period_hold
),
-- every attempt arriving in such a period, whatever its wait: the order in which they left
-- the queue against the order they arrived gives, per attempt, the net number that overtook
-- it (0 under FIFO; under priority scheduling the higher classes served during its wait)
overtaken AS (
    SELECT *,
           greatest(count(*) OVER (PARTITION BY pool, b_us ORDER BY e_us
                                   RANGE UNBOUNDED PRECEDING)
                    - count(*) OVER (PARTITION BY pool, b_us ORDER BY a_us
                                     RANGE UNBOUNDED PRECEDING), 0) AS overtaken_by
    FROM (SELECT k.pool, k.b_us, a.phase, a.arrival_us AS a_us, a.priority, a.queue_wait_s,
                 a.arrival_us + CAST(round(a.queue_wait_s * 1e6) AS BIGINT) AS e_us
          FROM int_attempts a
          JOIN period_keys k
            ON k.pool = a.pool AND k.m = a.arrival_us // 60000000
           AND a.arrival_us >= k.b_us AND a.arrival_us < k.end_us
          WHERE a.pilot = $pilot AND a.queue_wait_s IS NOT NULL)
),
-- G at each waiting attempt's start (or leaving) e
lw_held AS (
    SELECT o.pool, o.phase, o.priority, o.a_us, o.e_us, o.b_us, o.queue_wait_s,
           o.overtaken_by,
           h.held_us + h.held * (o.e_us - h.s) AS held_us_e
    FROM overtaken o
    CROSS JOIN th
    JOIN hold_seg h
      ON h.pool = o.pool AND h.m = o.e_us // 60000000 AND h.s <= o.e_us AND o.e_us < h.next_s
    WHERE o.queue_wait_s >= th.sched_delay_target_s
),
pool_gpus AS (SELECT pool, max(gpus) AS n FROM int_pool_minutes WHERE pilot = $pilot GROUP BY pool),
pool_svc AS (SELECT pool, avg(service_s) AS svc FROM int_attempts WHERE pilot = $pilot GROUP BY pool),
-- the wait the jobs added to a waiting attempt: from the period's start b to the attempt's
-- start the held GPUs would have served held_gpu_s more GPU-seconds, and those held at b were
-- idle then (each starts one attempt at once: held_b x the pool's mean service time); that
-- work drains what is ahead of the attempt at the pool's N GPUs less those busy with the
-- attempts that overtook it (never below the GPUs held on average). Delayed: the added wait
-- is at least sched_delay_target_s.
delayed AS (
    SELECT l.pool, l.phase, l.priority, l.a_us, l.e_us, l.queue_wait_s
    FROM lw_held l
    JOIN period_hold p ON p.pool = l.pool AND p.b_us = l.b_us
    CROSS JOIN th
    LEFT JOIN pool_gpus g ON g.pool = l.pool
    LEFT JOIN pool_svc s ON s.pool = l.pool
    WHERE l.held_us_e > p.held_us_b
      AND least(l.queue_wait_s,
                ((l.held_us_e - p.held_us_b) / 1e6 + p.held_b * coalesce(s.svc, 0))
                / greatest(g.n - l.overtaken_by * coalesce(s.svc, 0) / l.queue_wait_s,
                           (l.held_us_e - p.held_us_b) / (l.e_us - l.b_us)))
          >= th.sched_delay_target_s
)
SELECT $pilot AS pilot, pool, phase, priority, a_us AS arrival_us, e_us AS wait_end_us,
       queue_wait_s
FROM delayed
