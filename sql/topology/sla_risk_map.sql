-- SLA risk map: per pool and 1-minute window, the SLA adherence of the logical requests first
-- arriving in it (int_pool_minutes) against the pilot's target, as a risk level read off the
-- error budget (1 - target): ok (at most half of it spent), at_risk (more than half spent,
-- still >= target), breach (< target), critical (more than twice the budget spent, i.e.
-- adherence < 2 * target - 1). Compared without dividing, so a 100 % target still works.
-- A minute without first attempts has no level; without per-request rows every minute says
-- "not measured" in `note` (the map then only shows where GPUs were).
WITH th AS (SELECT * FROM int_thresholds WHERE pilot = $pilot),
pm AS (
    SELECT pool, m, window_start, phase, segment, first_arrivals, sla_adherence
    FROM int_pool_minutes
    WHERE pilot = $pilot
),
have AS (SELECT coalesce(sum(first_arrivals), 0) > 0 AS req FROM pm)
SELECT
    $pilot AS pilot,
    pm.pool,
    pm.window_start,
    pm.phase,
    pm.segment,
    pm.first_arrivals AS requests,
    -- adherence is a share of whole requests: round away the float of avg() * count
    CAST(round(pm.sla_adherence * pm.first_arrivals) AS BIGINT) AS requests_met_sla,
    pm.sla_adherence,
    th.sla_target,
    CASE
        WHEN pm.first_arrivals = 0 OR pm.sla_adherence IS NULL THEN NULL
        WHEN pm.sla_adherence < 2 * th.sla_target - 1 THEN 'critical'
        WHEN pm.sla_adherence < th.sla_target THEN 'breach'
        WHEN pm.sla_adherence < (1 + th.sla_target) / 2 THEN 'at_risk'
        ELSE 'ok'
    END AS risk_level,
    CASE
        WHEN NOT have.req THEN 'not measured: needs per-request rows (requests)'
        WHEN pm.first_arrivals = 0 THEN 'no requests first arrived in this minute'
    END AS note,
    CAST(json_object('sla_target', th.sla_target,
                     'at_risk', 'adherence < (1 + sla_target) / 2',
                     'breach', 'adherence < sla_target',
                     'critical', 'adherence < 2 * sla_target - 1') AS VARCHAR)
        AS thresholds_json
FROM pm
CROSS JOIN th
CROSS JOIN have
