-- GPU samples of the series the headline metrics need, each with the time it stands for:
-- the gap to the GPU's next sample of that series (the last one takes the previous gap),
-- capped at 5 minutes so telemetry outages are not counted as time.
WITH s AS (
    SELECT pool, node, gpu, series, ts, value, epoch_us(ts) AS ts_us
    FROM samples
    WHERE pilot = $pilot
      AND gpu IS NOT NULL
      AND series IN ('gpu_util', 'sm_active', 'power_w')
),
d AS (
    SELECT *,
        lead(ts_us) OVER (PARTITION BY gpu, series ORDER BY ts_us) - ts_us AS gap_next_us,
        ts_us - lag(ts_us) OVER (PARTITION BY gpu, series ORDER BY ts_us) AS gap_prev_us
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
    END AS segment
FROM d
CROSS JOIN scope sc
JOIN phases p
  ON p.pilot = $pilot
 AND d.ts >= p.start_ts
 AND d.ts <  p.end_ts
