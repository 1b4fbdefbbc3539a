-- GPU samples of the series the headline metrics need, each with the time it stands for:
-- the gap to the unit's next sample of that series (the last one takes the previous gap),
-- capped at 5 minutes so telemetry outages are not counted as time. A unit is a GPU; a
-- sample without a GPU id (an aggregated per-pool series, e.g. a dashboard's GPU duty cycle)
-- is its own unit per node or pool, and `per_gpu` says so (its metrics are aggregates).
-- energy_j is a counter: its increase is read in metrics_headline, never its level.
WITH s AS (
    SELECT pool, node, gpu, series, ts, value, epoch_us(ts) AS ts_us,
           coalesce('gpu:' || gpu, 'node:' || node, 'pool:' || pool) AS unit
    FROM samples
    WHERE pilot = $pilot
      AND series IN ('gpu_util', 'sm_active', 'power_w', 'energy_j', 'mem_used_bytes')
      AND (gpu IS NOT NULL OR node IS NOT NULL OR pool IS NOT NULL)
),
d AS (
    SELECT *,
        lead(ts_us) OVER (PARTITION BY unit, series ORDER BY ts_us) - ts_us AS gap_next_us,
        ts_us - lag(ts_us) OVER (PARTITION BY unit, series ORDER BY ts_us) AS gap_prev_us
    FROM s
),
scope AS (SELECT * FROM pilot_scope WHERE pilot = $pilot)
SELECT
    $pilot AS pilot,
    d.pool,
    d.node,
    d.gpu,
    d.series,
    d.ts,
    d.ts_us,
    d.value,
    least(coalesce(d.gap_next_us, d.gap_prev_us, 60000000), 300000000) / 1e6 AS dt_s,
    p.phase,
    -- GPUs belong to a segment only when the scope is drawn by pools (or is everything)
    CASE
        WHEN sc.kind = 'all' THEN 'treatment'
        WHEN sc.kind = 'pools' THEN
            CASE WHEN list_contains(sc.pools, d.pool) THEN 'treatment' ELSE 'control' END
    END AS segment,
    d.unit,
    d.gpu IS NOT NULL AS per_gpu
FROM d
CROSS JOIN scope sc
JOIN phases p
  ON p.pilot = $pilot
 AND d.ts >= p.start_ts
 AND d.ts <  p.end_ts
