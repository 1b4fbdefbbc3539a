-- Per pool and 1-minute window over the whole pilot span (empty minutes included): load,
-- retries, timeouts, queue wait (exact P95, and P95 of wait / the attempt's SLA target),
-- latency, SLA adherence, scheduling-delay health, GPU utilisation, power and queue depth.
-- The one pass over int_attempts that every analytics table reuses.
WITH span AS (
    SELECT min(epoch_us(start_ts)) // 60000000 AS m0, max(epoch_us(end_ts)) // 60000000 AS m1
    FROM phases WHERE pilot = $pilot
),
th AS (SELECT * FROM int_thresholds WHERE pilot = $pilot),
a AS (
    SELECT a.pool, a.arrival_us // 60000000 AS m, a.attempt, a.status, a.segment,
           a.queue_wait_s, a.sched_delay_s, a.e2e_s, a.logical_met_sla
    FROM int_attempts a
    WHERE a.pilot = $pilot
),
-- Two of the three exact P95s in aggregates of their own, each over its own read:
-- quantile_cont keeps every value of every pool x minute in memory until its aggregate is
-- done, so one aggregate at a time holds a third of them (one in am below). In one aggregate
-- they made this model the 100 M run's peak RSS (built alone: 5.8 -> 3.3 GiB; two more reads
-- of int_attempts: +7 % CPU at 10 M; P95s bit for bit).
q_ratio AS (
    SELECT a.pool, a.arrival_us // 60000000 AS m,
           quantile_cont(a.queue_wait_s / s.sla_s, 0.95) AS p95
    FROM int_attempts a
    -- the target in seconds computed on the few target rows, not once per attempt
    LEFT JOIN (SELECT priority, nullif(e2e_ms / 1e3, 0) AS sla_s
               FROM sla_targets WHERE pilot = $pilot) s ON s.priority = a.priority
    WHERE a.pilot = $pilot
    GROUP BY ALL
),
q_lat AS (
    SELECT pool, arrival_us // 60000000 AS m, quantile_cont(e2e_s, 0.95) AS p95
    FROM int_attempts
    WHERE pilot = $pilot AND status = 'ok'
    GROUP BY ALL
),
am AS (
    -- count_if instead of FILTER or count(CASE): one selection-free pass, no CASE per row
    -- (-20 % CPU for these counts at 10 M); ::BIGINT as count() (count_if gives a HUGEINT).
    -- A share of 0/1 values is its count of 1s / its count of values: the avg it replaces,
    -- bit for bit (a sum of 1.0s is exact), NULL when there are none.
    SELECT
        pool, m,
        count(*)                                                     AS arrivals,
        count_if(attempt = 0)::BIGINT                                AS first_arrivals,
        count_if(attempt > 0)::BIGINT                                AS retries,
        count_if(status IN ('timeout', 'dropped'))::BIGINT           AS timeouts,
        quantile_cont(queue_wait_s, 0.95)                            AS queue_wait_p95_s,
        count_if(attempt = 0 AND logical_met_sla)::BIGINT
            / nullif(count_if(attempt = 0)::BIGINT, 0)
                                                                     AS sla_adherence,
        count(sched_delay_s)                                         AS dispatched,
        count_if(sched_delay_s <= th.sched_delay_target_s)::BIGINT
            / nullif(count(sched_delay_s), 0)
                                                                     AS sched_ok_share,
        sum(CASE WHEN status = 'ok' THEN queue_wait_s END)           AS ok_wait_s,
        sum(CASE WHEN status = 'ok' THEN e2e_s END)                  AS ok_e2e_s,
        -- one segment or 'mixed' (min = max: the same answer as count(DISTINCT) = 1)
        CASE WHEN min(segment) = max(segment) THEN min(segment) ELSE 'mixed' END AS segment
    FROM a CROSS JOIN th
    GROUP BY pool, m
),
starts AS (
    SELECT pool, epoch_us(start_ts) // 60000000 AS m, count(*) AS starts
    FROM int_attempts
    WHERE pilot = $pilot AND start_ts IS NOT NULL
    GROUP BY ALL
),
gm AS (
    SELECT
        pool, ts_us // 60000000 AS m,
        sum(value * dt_s) FILTER (WHERE series = 'gpu_util')
            / nullif(sum(dt_s) FILTER (WHERE series = 'gpu_util'), 0)   AS nominal_util,
        sum(value * dt_s) FILTER (WHERE series = 'sm_active')
            / nullif(sum(dt_s) FILTER (WHERE series = 'sm_active'), 0)  AS sm_active_util,
        -- the pool's power: energy in the minute / 60 s (the sum of each GPU's mean power,
        -- whatever the scrape interval)
        sum(value * dt_s) FILTER (WHERE series = 'power_w') / 60.0       AS power_w,
        count(DISTINCT gpu)                                              AS gpus
    FROM int_gpu_samples
    WHERE pilot = $pilot
    GROUP BY ALL
),
qd AS (
    SELECT pool, epoch_us(ts) // 60000000 AS m, avg(value) AS queue_depth
    FROM samples
    WHERE pilot = $pilot AND series = 'queue_waiting' AND pool IS NOT NULL
    GROUP BY ALL
),
pools AS (
    SELECT pool FROM am UNION SELECT pool FROM gm
),
grid AS (
    SELECT pools.pool, g.m
    FROM pools
    CROSS JOIN (SELECT unnest(range(m0, m1)) AS m FROM span) g
)
SELECT
    $pilot AS pilot,
    g.pool,
    g.m,
    make_timestamp(g.m * 60000000) AS window_start,
    p.phase,
    am.segment,
    coalesce(am.arrivals, 0)        AS arrivals,
    coalesce(am.first_arrivals, 0)  AS first_arrivals,
    coalesce(am.retries, 0)         AS retries,
    coalesce(am.timeouts, 0)        AS timeouts,
    coalesce(st.starts, 0)          AS starts,
    am.queue_wait_p95_s,
    q2.p95                          AS wait_sla_ratio_p95,
    q3.p95                          AS latency_p95_s,
    am.sla_adherence,
    am.dispatched,
    am.sched_ok_share,
    am.ok_wait_s,
    am.ok_e2e_s,
    gm.nominal_util,
    gm.sm_active_util,
    gm.power_w,
    gm.gpus,
    qd.queue_depth
FROM grid g
LEFT JOIN am ON am.pool = g.pool AND am.m = g.m
LEFT JOIN q_ratio q2 ON q2.pool = g.pool AND q2.m = g.m
LEFT JOIN q_lat q3 ON q3.pool = g.pool AND q3.m = g.m
LEFT JOIN starts st ON st.pool = g.pool AND st.m = g.m
LEFT JOIN gm ON gm.pool = g.pool AND gm.m = g.m
LEFT JOIN qd ON qd.pool = g.pool AND qd.m = g.m
LEFT JOIN phases p
  ON p.pilot = $pilot
 AND make_timestamp(g.m * 60000000) >= p.start_ts
 AND make_timestamp(g.m * 60000000) <  p.end_ts
