-- Per scheduler job of the pilot: the waiting attempts (queue wait >= sched_delay_target_s)
-- its run overlapped and how many of them its held GPUs plausibly delayed (METRICS.md 5,
-- patterns 1 and 3: batch scheduling conflict, priority inversion). Read by findings.
-- A table of its own: inlined into findings' plan, these CTEs made Spark's analyser run out
-- of memory, and a job's counts are one fact, whatever the patterns read from them.
WITH th AS (SELECT * FROM int_thresholds WHERE pilot = $pilot),
jb AS (
    SELECT job_id, kind, pool, gpus, gpu_ids, start_ts, end_ts,
           epoch_us(start_ts) AS js, epoch_us(end_ts) AS je
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
    FROM (SELECT k.pool, k.b_us, a.arrival_us AS a_us, a.priority, a.queue_wait_s,
                 a.arrival_us + CAST(round(a.queue_wait_s * 1e6) AS BIGINT) AS e_us
          FROM int_attempts a
          JOIN period_keys k
            ON k.pool = a.pool AND k.m = a.arrival_us // 60000000
           AND a.arrival_us >= k.b_us AND a.arrival_us < k.end_us
          WHERE a.pilot = $pilot AND a.queue_wait_s IS NOT NULL)
),
-- G at each waiting attempt's start (or leaving) e
lw_held AS (
    SELECT o.pool, o.priority, o.a_us, o.e_us, o.b_us, o.queue_wait_s, o.overtaken_by,
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
    SELECT l.pool, l.priority IN ('P0', 'P1') AS p01, l.a_us, l.e_us
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
),
-- per job, the waiting attempts whose wait [a, e) overlaps its run [js, je): #{a < je} -
-- #{e <= js}, and their total overlap, the integral of the number waiting over [js, je): at
-- t, I(t) = t * Q(t) - sum(d * t_event), d = +1 at an arrival, -1 when it leaves the queue.
-- Running values at a time = those of the whole minutes before it (a cumulative sum over
-- the pool's minutes) + those of the events of its own minute before it (at it too, for a
-- job's start): no job x waits join. Event columns: all waits, P0/P1, delayed, delayed P0/P1.
w_ev AS (
    SELECT pool, t, t // 60000000 AS m, d * CAST(t AS DECIMAL(38, 0)) AS dt, d, p01, dl
    FROM (SELECT pool, a_us AS t, 1 AS d, p01, false AS dl FROM lw
          UNION ALL SELECT pool, e_us, -1, p01, false FROM lw
          UNION ALL SELECT pool, a_us, 1, p01, true FROM delayed
          UNION ALL SELECT pool, e_us, -1, p01, true FROM delayed)
),
w_min AS (
    SELECT pool, m,
           coalesce(sum(d) FILTER (WHERE NOT dl), 0) AS q,
           coalesce(sum(d) FILTER (WHERE NOT dl AND p01), 0) AS q01,
           coalesce(sum(dt) FILTER (WHERE NOT dl), 0) AS qt,
           coalesce(sum(dt) FILTER (WHERE NOT dl AND p01), 0) AS q01t,
           count(*) FILTER (WHERE d > 0 AND NOT dl) AS n_in,
           count(*) FILTER (WHERE d < 0 AND NOT dl) AS n_out,
           count(*) FILTER (WHERE d > 0 AND NOT dl AND p01) AS n01_in,
           count(*) FILTER (WHERE d < 0 AND NOT dl AND p01) AS n01_out,
           count(*) FILTER (WHERE d > 0 AND dl) AS nd_in,
           count(*) FILTER (WHERE d < 0 AND dl) AS nd_out,
           count(*) FILTER (WHERE d > 0 AND dl AND p01) AS nd01_in,
           count(*) FILTER (WHERE d < 0 AND dl AND p01) AS nd01_out
    FROM w_ev GROUP BY pool, m
),
-- every minute from the pool's first event to its last event or job time, so that the
-- running values before a minute are one equi-join away (Spark has no ASOF JOIN)
w_grid AS (
    SELECT pool, unnest(range(min(m), max(m) + 1)) AS m
    FROM (SELECT pool, m FROM w_min
          UNION ALL SELECT pool, greatest(js, je) // 60000000 FROM jb
          WHERE pool IN (SELECT pool FROM w_min))
    GROUP BY pool
),
w_cum AS (
    SELECT g.pool, g.m,
           sum(coalesce(x.q, 0)) OVER w AS q, sum(coalesce(x.q01, 0)) OVER w AS q01,
           sum(coalesce(x.qt, 0)) OVER w AS qt, sum(coalesce(x.q01t, 0)) OVER w AS q01t,
           sum(coalesce(x.n_in, 0)) OVER w AS n_in, sum(coalesce(x.n_out, 0)) OVER w AS n_out,
           sum(coalesce(x.n01_in, 0)) OVER w AS n01_in,
           sum(coalesce(x.n01_out, 0)) OVER w AS n01_out,
           sum(coalesce(x.nd_in, 0)) OVER w AS nd_in, sum(coalesce(x.nd_out, 0)) OVER w AS nd_out,
           sum(coalesce(x.nd01_in, 0)) OVER w AS nd01_in,
           sum(coalesce(x.nd01_out, 0)) OVER w AS nd01_out
    FROM w_grid g
    LEFT JOIN w_min x ON x.pool = g.pool AND x.m = g.m
    WINDOW w AS (PARTITION BY g.pool ORDER BY g.m ROWS UNBOUNDED PRECEDING)
),
-- a job's start counts the events at or before it (k = 1), its end those before it (k = -1)
jq AS (
    SELECT job_id, pool, js AS t, 1 AS k FROM jb
    UNION ALL SELECT job_id, pool, je, -1 FROM jb
),
jq_at AS (
    SELECT job_id, k, any_value(t) AS t,
           sum(q) AS q, sum(q01) AS q01, sum(qt) AS qt, sum(q01t) AS q01t,
           sum(n_in) AS n_in, sum(n_out) AS n_out, sum(n01_in) AS n01_in,
           sum(n01_out) AS n01_out, sum(nd_in) AS nd_in, sum(nd_out) AS nd_out,
           sum(nd01_in) AS nd01_in, sum(nd01_out) AS nd01_out
    FROM (
        SELECT q.job_id, q.k, q.t, c.q, c.q01, c.qt, c.q01t, c.n_in, c.n_out, c.n01_in,
               c.n01_out, c.nd_in, c.nd_out, c.nd01_in, c.nd01_out
        FROM jq q JOIN w_cum c ON c.pool = q.pool AND c.m = q.t // 60000000 - 1
        UNION ALL
        SELECT q.job_id, q.k, q.t,
               coalesce(sum(e.d) FILTER (WHERE NOT e.dl), 0),
               coalesce(sum(e.d) FILTER (WHERE NOT e.dl AND e.p01), 0),
               coalesce(sum(e.dt) FILTER (WHERE NOT e.dl), 0),
               coalesce(sum(e.dt) FILTER (WHERE NOT e.dl AND e.p01), 0),
               count(*) FILTER (WHERE e.d > 0 AND NOT e.dl),
               count(*) FILTER (WHERE e.d < 0 AND NOT e.dl),
               count(*) FILTER (WHERE e.d > 0 AND NOT e.dl AND e.p01),
               count(*) FILTER (WHERE e.d < 0 AND NOT e.dl AND e.p01),
               count(*) FILTER (WHERE e.d > 0 AND e.dl),
               count(*) FILTER (WHERE e.d < 0 AND e.dl),
               count(*) FILTER (WHERE e.d > 0 AND e.dl AND e.p01),
               count(*) FILTER (WHERE e.d < 0 AND e.dl AND e.p01)
        FROM jq q
        JOIN w_ev e
          ON e.pool = q.pool AND e.m = q.t // 60000000
         AND (e.t < q.t OR (q.k > 0 AND e.t = q.t))
        GROUP BY q.job_id, q.k, q.t
    )
    GROUP BY job_id, k
),
job_hits AS (
    SELECT job_id,
           sum(CASE WHEN k < 0 THEN n_in ELSE -n_out END)         AS attempts_hit,
           sum(CASE WHEN k < 0 THEN n01_in ELSE -n01_out END)     AS p01_hit,
           sum(CASE WHEN k < 0 THEN nd_in ELSE -nd_out END)       AS attempts_delayed,
           sum(CASE WHEN k < 0 THEN nd01_in ELSE -nd01_out END)   AS p01_delayed,
           sum(k * (qt - t * q)) / 1e6                            AS wait_overlap_s,
           sum(k * (q01t - t * q01)) / 1e6                        AS p01_wait_overlap_s
    FROM jq_at
    GROUP BY job_id
    HAVING sum(CASE WHEN k < 0 THEN n_in ELSE -n_out END) > 0
)
SELECT $pilot AS pilot, j.job_id, j.pool, h.attempts_hit, h.p01_hit, h.attempts_delayed,
       h.p01_delayed, h.wait_overlap_s, h.p01_wait_overlap_s
FROM job_hits h
JOIN jb j USING (job_id)
