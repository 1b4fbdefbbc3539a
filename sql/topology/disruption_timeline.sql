-- Disruption timeline (visual appendix 4): one row per event of each disruption episode, in
-- time order: burst onset (may precede the start), adherence drop (start), latency spike,
-- queue peak, timeout escalation, trough and recovery, each with its value and unit and the
-- offset from the episode's start. Event definitions: disruption_episodes.sql. An event
-- that did not happen (no burst, no timeout, no queue telemetry, data ended before
-- recovery) has no row.
WITH e AS (SELECT * FROM disruption_episodes WHERE pilot = $pilot),
ev AS (
    SELECT segment, episode_id, phase, start_ts, 'burst_onset' AS event, 1 AS ord,
           burst_onset_ts AS ts, burst_peak_rate_rps AS value, 'req/s' AS unit,
           burst_pool AS pool,
           'earliest of ' || CAST(bursts AS VARCHAR) || ' burst episodes (peak rate)' AS detail
    FROM e WHERE burst_onset_ts IS NOT NULL
    UNION ALL
    SELECT segment, episode_id, phase, start_ts, 'adherence_drop', 2, start_ts,
           start_sla_adherence, 'share', NULL, 'SLA adherence fell below the target'
    FROM e
    UNION ALL
    SELECT segment, episode_id, phase, start_ts, 'latency_spike', 3, latency_spike_ts,
           peak_p95_s, 's', latency_spike_pool, 'peak 1-minute P95 latency of a pool'
    FROM e WHERE latency_spike_ts IS NOT NULL
    UNION ALL
    SELECT segment, episode_id, phase, start_ts, 'queue_peak', 4, queue_peak_ts,
           coalesce(max_queue_depth, max_queue_wait_p95_s),
           CASE WHEN max_queue_depth IS NOT NULL THEN 'attempts' ELSE 's' END, NULL,
           'peak of ' || queue_source
    FROM e WHERE queue_peak_ts IS NOT NULL
    UNION ALL
    SELECT segment, episode_id, phase, start_ts, 'timeout_escalation', 5,
           timeout_escalation_ts, max_timeout_rate, 'share', NULL,
           'peak 1-minute timeout/drop rate of attempts'
    FROM e WHERE timeout_escalation_ts IS NOT NULL
    UNION ALL
    SELECT segment, episode_id, phase, start_ts, 'trough', 6, trough_ts,
           lowest_sla_adherence, 'share', NULL, 'lowest 1-minute SLA adherence'
    FROM e
    UNION ALL
    SELECT segment, episode_id, phase, start_ts, 'recovery', 7, recovery_ts, duration_s, 's',
           NULL, 'adherence at or above the target from here on (value: episode duration)'
    FROM e WHERE recovered
)
SELECT
    $pilot AS pilot,
    segment,
    episode_id,
    phase,
    event,
    ord,
    ts,
    (epoch_us(ts) - epoch_us(start_ts)) / 1e6 AS offset_s,
    CAST(value AS DOUBLE) AS value,
    unit,
    pool,
    detail
FROM ev
