-- Disruption episodes (METRICS.md, Topology tables): an episode starts in a 1-minute window
-- whose SLA adherence (logical requests first arriving in it, over every pool in scope) is
-- below the pilot's target, and ends once adherence has stayed at or above the target for
-- disruption_recover_s (minutes without requests count as not below). Computed for segment
-- 'all' (pilot-wide, the METRICS.md definition) and for treatment / control over the
-- pool-minutes of that segment. Per episode: impact (lowest adherence, peak 1-min P95 of any
-- pool, max queue depth = sum over pools of the mean queue_waiting samples, max timeout rate,
-- requests and SLA misses), duration (start -> recovery, the end of the last minute below
-- target), time to recover (start of the worst minute -> recovery) and the minutes at which
-- the timeline's events happened (disruption_timeline unpivots them): burst onset = earliest
-- burst episode of a pool in scope starting from wave_lag_s before the start until recovery;
-- latency spike / queue peak / timeout escalation = first minute at the episode's peak P95 /
-- queue depth (queue-wait P95 without queue_waiting samples) / timeout rate; trough = first
-- minute at the lowest adherence. `recovered` is false when the data ends first.
-- Built from int_pool_minutes (no rescan of attempts). No per-request rows: zero rows.
WITH th AS (SELECT * FROM int_thresholds WHERE pilot = $pilot),
seg AS (SELECT * FROM (VALUES ('all'), ('treatment'), ('control')) v(segment)),
pm AS (
    SELECT g.segment, p.pool, p.m, p.phase, p.first_arrivals, p.arrivals, p.timeouts,
           p.latency_p95_s, p.queue_wait_p95_s, p.queue_depth,
           round(p.sla_adherence * p.first_arrivals) AS met
    FROM int_pool_minutes p
    JOIN seg g ON g.segment = 'all' OR g.segment = p.segment
    WHERE p.pilot = $pilot
),
span AS (SELECT max(m) AS m_last FROM int_pool_minutes WHERE pilot = $pilot),
minute AS (
    SELECT segment, m,
           max(phase)                                     AS phase,
           sum(first_arrivals)                            AS requests,
           sum(met)                                       AS met,
           sum(met) / nullif(sum(first_arrivals), 0)      AS adherence,
           sum(arrivals)                                  AS attempts,
           sum(timeouts)                                  AS timeouts,
           sum(timeouts) * 1.0 / nullif(sum(arrivals), 0) AS timeout_rate,
           max(latency_p95_s)                             AS p95_s,
           arg_max(pool, latency_p95_s)                   AS p95_pool,
           sum(queue_depth)                               AS queue_depth,
           max(queue_wait_p95_s)                          AS wait_p95_s
    FROM pm
    GROUP BY segment, m
),
below AS (
    SELECT mi.segment, mi.m,
           lag(mi.m) OVER (PARTITION BY mi.segment ORDER BY mi.m) AS prev_m
    FROM minute mi CROSS JOIN th
    WHERE mi.requests > 0 AND mi.adherence < th.sla_target
),
numbered AS (
    SELECT b.segment, b.m,
           sum(CASE WHEN b.prev_m IS NULL OR (b.m - b.prev_m - 1) * 60 >= th.disruption_recover_s
                    THEN 1 ELSE 0 END)
               OVER (PARTITION BY b.segment ORDER BY b.m ROWS UNBOUNDED PRECEDING) AS ep
    FROM below b CROSS JOIN th
),
bounds AS (
    SELECT segment, ep, min(m) AS m0, max(m) AS m1, count(*) AS minutes_below
    FROM numbered GROUP BY segment, ep
),
em AS (
    SELECT b.ep, b.m0, b.m1, mi.*
    FROM bounds b
    JOIN minute mi ON mi.segment = b.segment AND mi.m >= b.m0 AND mi.m <= b.m1
),
agg AS (
    SELECT segment, ep,
           min(adherence)                  AS lowest_sla_adherence,
           max(p95_s)                      AS peak_p95_s,
           max(queue_depth)                AS max_queue_depth,
           max(wait_p95_s)                 AS max_queue_wait_p95_s,
           max(timeout_rate)               AS max_timeout_rate,
           sum(requests)                   AS requests,
           sum(requests) - sum(met)        AS requests_missed_sla,
           sum(timeouts)                   AS timeouts
    FROM em GROUP BY segment, ep
),
marks AS (
    SELECT em.segment, em.ep,
           min(em.m) FILTER (WHERE em.adherence = a.lowest_sla_adherence)  AS trough_m,
           min(em.m) FILTER (WHERE em.p95_s = a.peak_p95_s)                AS spike_m,
           arg_min(em.p95_pool, em.m) FILTER (WHERE em.p95_s = a.peak_p95_s) AS spike_pool,
           coalesce(min(em.m) FILTER (WHERE em.queue_depth = a.max_queue_depth),
                    min(em.m) FILTER (WHERE em.wait_p95_s = a.max_queue_wait_p95_s))
                                                                            AS queue_m,
           min(em.m) FILTER (WHERE em.timeout_rate = a.max_timeout_rate
                               AND a.max_timeout_rate > 0)                  AS timeout_m,
           min(em.adherence) FILTER (WHERE em.m = em.m0)                    AS first_adherence
    FROM em JOIN agg a ON a.segment = em.segment AND a.ep = em.ep
    GROUP BY em.segment, em.ep
),
pools AS (
    SELECT b.segment, b.ep, count(DISTINCT pm.pool) AS pools_below
    FROM bounds b
    CROSS JOIN th
    JOIN pm ON pm.segment = b.segment AND pm.m >= b.m0 AND pm.m <= b.m1
    WHERE pm.first_arrivals > 0 AND pm.met / pm.first_arrivals < th.sla_target
    GROUP BY b.segment, b.ep
),
-- a burst pool's segment is that of its pool-minute at the burst's start
bursts AS (
    SELECT g.segment, be.pool, epoch_us(be.start_ts) AS bs, be.peak_rate_rps
    FROM burst_episodes be
    JOIN int_pool_minutes p
      ON p.pilot = $pilot AND p.pool = be.pool AND p.m = epoch_us(be.start_ts) // 60000000
    JOIN seg g ON g.segment = 'all' OR g.segment = p.segment
    WHERE be.pilot = $pilot
),
onset AS (
    SELECT b.segment, b.ep, min(x.bs) AS burst_us, arg_min(x.pool, x.bs) AS burst_pool,
           arg_min(x.peak_rate_rps, x.bs) AS burst_peak_rate_rps, count(*) AS bursts
    FROM bounds b
    CROSS JOIN th
    JOIN bursts x
      ON x.segment = b.segment
     AND x.bs >= b.m0 * 60000000 - th.wave_lag_s * 1e6
     AND x.bs < (b.m1 + 1) * 60000000
    GROUP BY b.segment, b.ep
)
SELECT
    $pilot AS pilot,
    b.segment,
    b.segment || ':' || CAST(b.m0 AS VARCHAR)           AS episode_id,
    ph.phase,
    make_timestamp(b.m0 * 60000000)                     AS start_ts,
    make_timestamp((b.m1 + 1) * 60000000)               AS recovery_ts,
    CAST(((b.m1 + 1) - b.m0) * 60 AS DOUBLE)            AS duration_s,
    CAST(((b.m1 + 1) - mk.trough_m) * 60 AS DOUBLE)     AS time_to_recover_s,
    (b.m1 + 1) * 60 + th.disruption_recover_s <= (s.m_last + 1) * 60 AS recovered,
    b.minutes_below,
    coalesce(pl.pools_below, 0)                         AS pools_below,
    a.lowest_sla_adherence,
    mk.first_adherence                                  AS start_sla_adherence,
    th.sla_target,
    a.peak_p95_s,
    a.max_queue_depth,
    a.max_queue_wait_p95_s,
    a.max_timeout_rate,
    CAST(a.requests AS BIGINT)                          AS requests,
    CAST(a.requests_missed_sla AS BIGINT)               AS requests_missed_sla,
    CAST(a.timeouts AS BIGINT)                          AS timeouts,
    make_timestamp(mk.trough_m * 60000000)              AS trough_ts,
    make_timestamp(mk.spike_m * 60000000)               AS latency_spike_ts,
    mk.spike_pool                                       AS latency_spike_pool,
    make_timestamp(mk.queue_m * 60000000)               AS queue_peak_ts,
    CASE WHEN a.max_queue_depth IS NOT NULL THEN 'queue_waiting samples'
         WHEN a.max_queue_wait_p95_s IS NOT NULL THEN 'queue-wait P95 (no queue_waiting samples)'
    END                                                 AS queue_source,
    make_timestamp(mk.timeout_m * 60000000)             AS timeout_escalation_ts,
    make_timestamp(o.burst_us)                          AS burst_onset_ts,
    o.burst_pool,
    o.burst_peak_rate_rps,
    coalesce(o.bursts, 0)                               AS bursts,
    CAST(json_object('sla_target', th.sla_target,
                     'disruption_recover_s', th.disruption_recover_s,
                     'burst_lookback_s', th.wave_lag_s) AS VARCHAR) AS thresholds_json
FROM bounds b
CROSS JOIN th
CROSS JOIN span s
JOIN agg a ON a.segment = b.segment AND a.ep = b.ep
JOIN marks mk ON mk.segment = b.segment AND mk.ep = b.ep
LEFT JOIN pools pl ON pl.segment = b.segment AND pl.ep = b.ep
LEFT JOIN onset o ON o.segment = b.segment AND o.ep = b.ep
JOIN minute ph ON ph.segment = b.segment AND ph.m = b.m0
