-- Idle-overload state map: per pool and 1-minute window, state idle (nominal utilisation
-- < idle_util and no queue: queue-wait P95 < 0.1 s or no arrivals), overload (queue-wait P95
-- > SLA/2, taken per attempt as P95 of wait / own class's SLA target > 0.5) or balanced;
-- `flip` marks an idle <-> overload change within flip_window_s of the opposite state.
-- Without gpu_util telemetry idle cannot be told apart: state is NULL there (not measured).
-- Without per-request rows the queue wait is unknown, so overload cannot be tested: the
-- states are only idle / busy (busy = not idle), `overload_tested` is false and `note` says
-- what would unlock it; such a map never reads as "no overload".
WITH th AS (SELECT * FROM int_thresholds WHERE pilot = $pilot),
have AS (
    SELECT coalesce(sum(arrivals), 0) > 0 AS req FROM int_pool_minutes WHERE pilot = $pilot
),
s AS (
    SELECT pm.pool, pm.m, pm.window_start, pm.phase, pm.segment, pm.arrivals,
           pm.nominal_util, pm.queue_wait_p95_s, pm.wait_sla_ratio_p95,
           CASE
               WHEN coalesce(pm.wait_sla_ratio_p95, 0) > 0.5 THEN 'overload'
               WHEN pm.nominal_util IS NULL THEN NULL
               WHEN pm.nominal_util < th.idle_util AND coalesce(pm.queue_wait_p95_s, 0) < 0.1
                   THEN 'idle'
               WHEN NOT have.req THEN 'busy'
               ELSE 'balanced'
           END AS state,
           have.req AS overload_tested
    FROM int_pool_minutes pm CROSS JOIN th CROSS JOIN have
    WHERE pm.pilot = $pilot
),
extremes AS (
    SELECT pool, m, state,
           lag(state) OVER (PARTITION BY pool ORDER BY m) AS prev_state,
           lag(m) OVER (PARTITION BY pool ORDER BY m)     AS prev_m
    FROM s
    WHERE state IN ('idle', 'overload')
)
SELECT
    $pilot AS pilot,
    s.pool,
    s.window_start,
    s.phase,
    s.segment,
    s.arrivals,
    s.nominal_util,
    s.queue_wait_p95_s,
    s.wait_sla_ratio_p95,
    s.state,
    coalesce(x.state <> x.prev_state AND (s.m - x.prev_m) * 60 <= th.flip_window_s, false)
        AS flip,
    CASE WHEN x.state <> x.prev_state AND (s.m - x.prev_m) * 60 <= th.flip_window_s
         THEN x.prev_state || '->' || x.state END AS flip_kind,
    s.overload_tested,
    CASE
        WHEN s.nominal_util IS NULL AND NOT s.overload_tested
            THEN 'not measured: needs gpu_util samples (idle) and per-request rows (overload)'
        WHEN s.nominal_util IS NULL
            THEN 'idle not measured: needs gpu_util samples for this pool'
        WHEN NOT s.overload_tested
            THEN 'idle / busy only: overload not tested, needs per-request rows (queue wait)'
    END AS note
FROM s
CROSS JOIN th
LEFT JOIN extremes x ON x.pool = s.pool AND x.m = s.m
