-- Per scheduler job of the pilot: the waiting attempts (queue wait >= sched_delay_target_s)
-- its run overlapped and how many of them its held GPUs plausibly delayed (METRICS.md 5,
-- patterns 1 and 3: batch scheduling conflict, priority inversion). Read by findings.
-- A table of its own: inlined into findings' plan, these CTEs made Spark's analyser run out
-- of memory, and a job's counts are one fact, whatever the patterns read from them.
WITH th AS (SELECT * FROM int_thresholds WHERE pilot = $pilot),
jb AS (
    SELECT job_id, pool, epoch_us(start_ts) AS js, epoch_us(end_ts) AS je
    FROM jobs
    WHERE pilot = $pilot AND start_ts IS NOT NULL AND end_ts IS NOT NULL AND pool IS NOT NULL
),
-- the waiting attempts, and those of them the jobs plausibly delayed (int_delayed_waits)
lw AS (
    SELECT pool, priority IN ('P0', 'P1') AS p01, arrival_us AS a_us,
           arrival_us + CAST(round(queue_wait_s * 1e6) AS BIGINT) AS e_us
    FROM int_attempts a CROSS JOIN th
    WHERE a.pilot = $pilot AND a.queue_wait_s >= th.sched_delay_target_s
),
delayed AS (
    SELECT pool, priority IN ('P0', 'P1') AS p01, arrival_us AS a_us, wait_end_us AS e_us
    FROM int_delayed_waits WHERE pilot = $pilot
),
-- per job, the waiting attempts whose wait [a, e) overlaps its run [js, je): #{a < je} -
-- #{e <= js}, and their total overlap, the integral of the number waiting over [js, je): at
-- t, I(t) = t * Q(t) - sum(d * t_event), d = +1 at an arrival, -1 when it leaves the queue.
-- Running values at a time = those of the whole seconds before it (a cumulative sum over
-- the pool's seconds) + those of the events of its own second before it (at it too, for a
-- job's start): no job x waits join. Event columns: all waits, P0/P1, delayed, delayed P0/P1.
-- Seconds, not minutes: the events of a job's own bucket are joined to it, and at 100 M
-- attempts a minute held thousands per pool. sum(d * t) of a second m is
-- m * 1e6 * sum(d) + sum(d * r), r = t - m * 1e6: integers, so the wide DECIMAL product is
-- made once per second, not once per event.
w_ev AS (
    SELECT pool, t, t // 1000000 AS m, d * (t % 1000000) AS dr, d, p01, dl
    FROM (SELECT pool, a_us AS t, 1 AS d, p01, false AS dl FROM lw
          UNION ALL SELECT pool, e_us, -1, p01, false FROM lw
          UNION ALL SELECT pool, a_us, 1, p01, true FROM delayed
          UNION ALL SELECT pool, e_us, -1, p01, true FROM delayed)
),
w_min AS (
    SELECT pool, m,
           coalesce(sum(d) FILTER (WHERE NOT dl), 0) AS q,
           coalesce(sum(d) FILTER (WHERE NOT dl AND p01), 0) AS q01,
           coalesce(CAST(m * 1000000 AS DECIMAL(38, 0)) * sum(d) FILTER (WHERE NOT dl)
                    + sum(dr) FILTER (WHERE NOT dl), 0) AS qt,
           coalesce(CAST(m * 1000000 AS DECIMAL(38, 0)) * sum(d) FILTER (WHERE NOT dl AND p01)
                    + sum(dr) FILTER (WHERE NOT dl AND p01), 0) AS q01t,
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
-- the seconds with events and those of the jobs' times: the running values of the seconds
-- before a job time are one equi-join away (Spark has no ASOF JOIN), without a dense grid
w_grid AS (
    SELECT pool, m FROM w_min
    UNION
    SELECT pool, t // 1000000
    FROM (SELECT pool, js AS t FROM jb UNION ALL SELECT pool, je FROM jb)
    WHERE pool IN (SELECT pool FROM w_min)
),
w_cum AS (
    -- the seconds before m (none: 0)
    SELECT g.pool, g.m,
           coalesce(sum(coalesce(x.q, 0)) OVER w, 0) AS q,
           coalesce(sum(coalesce(x.q01, 0)) OVER w, 0) AS q01,
           coalesce(sum(coalesce(x.qt, 0)) OVER w, 0) AS qt,
           coalesce(sum(coalesce(x.q01t, 0)) OVER w, 0) AS q01t,
           coalesce(sum(coalesce(x.n_in, 0)) OVER w, 0) AS n_in,
           coalesce(sum(coalesce(x.n_out, 0)) OVER w, 0) AS n_out,
           coalesce(sum(coalesce(x.n01_in, 0)) OVER w, 0) AS n01_in,
           coalesce(sum(coalesce(x.n01_out, 0)) OVER w, 0) AS n01_out,
           coalesce(sum(coalesce(x.nd_in, 0)) OVER w, 0) AS nd_in,
           coalesce(sum(coalesce(x.nd_out, 0)) OVER w, 0) AS nd_out,
           coalesce(sum(coalesce(x.nd01_in, 0)) OVER w, 0) AS nd01_in,
           coalesce(sum(coalesce(x.nd01_out, 0)) OVER w, 0) AS nd01_out
    FROM w_grid g
    LEFT JOIN w_min x ON x.pool = g.pool AND x.m = g.m
    WINDOW w AS (PARTITION BY g.pool ORDER BY g.m
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
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
        FROM jq q JOIN w_cum c ON c.pool = q.pool AND c.m = q.t // 1000000
        UNION ALL
        SELECT q.job_id, q.k, q.t,
               coalesce(sum(e.d) FILTER (WHERE NOT e.dl), 0),
               coalesce(sum(e.d) FILTER (WHERE NOT e.dl AND e.p01), 0),
               coalesce(CAST(q.t // 1000000 * 1000000 AS DECIMAL(38, 0))
                        * sum(e.d) FILTER (WHERE NOT e.dl)
                        + sum(e.dr) FILTER (WHERE NOT e.dl), 0),
               coalesce(CAST(q.t // 1000000 * 1000000 AS DECIMAL(38, 0))
                        * sum(e.d) FILTER (WHERE NOT e.dl AND e.p01)
                        + sum(e.dr) FILTER (WHERE NOT e.dl AND e.p01), 0),
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
          ON e.pool = q.pool AND e.m = q.t // 1000000
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
