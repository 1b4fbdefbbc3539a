-- Latency quantiles from Prometheus histograms (vLLM e2e / queue time / TTFT / time per
-- output token `_bucket` counters in `samples`), for pilots that have histograms but no
-- per-request rows (METRICS.md: "from histograms when only histograms exist, Prometheus
-- histogram_quantile semantics, bucket-interpolated, labelled approximate"). Declared
-- approximate: the value is only known to lie inside its bucket. A server counts each
-- request it sees, so a retry is an observation of its own (per-request rows join retries to
-- their logical request).
-- Per phase x segment x (overall | pool) x family x q (0.50, 0.95, 0.99):
--   0. one value per bucket, instance and time: labels the adapters drop (model_name, ...)
--      can split one histogram into several at the same instant; their counts add;
--   1. each bucket counter's increase over the phase: the sum of its rises between
--      consecutive samples of the phase, a drop counting as a reset (Prometheus `increase`
--      without extrapolation, so the rise before a phase's first sample is not counted);
--   2. increases summed over instances per bucket bound `le` (cumulative, as exported);
--   3. histogram_quantile: rank = q x count(+Inf); the first bucket whose cumulative count
--      reaches the rank; linear interpolation between its lower bound (the previous `le`, 0
--      for the first bucket) and its `le`; a rank in the +Inf bucket returns the highest
--      finite bound; no observations, no value.
WITH qs AS (SELECT * FROM (VALUES (0.50), (0.95), (0.99)) v(q)),
scope AS (SELECT * FROM pilot_scope WHERE pilot = $pilot),
b AS (
    SELECT p.phase, s.pool, s.node, s.gpu, s.le, epoch_us(s.ts) AS ts_us, sum(s.value) AS value,
           replace(s.series, '_bucket', '') AS family
    FROM samples s
    JOIN phases p
      ON p.pilot = $pilot AND s.ts >= p.start_ts AND s.ts < p.end_ts
    WHERE s.pilot = $pilot AND s.le IS NOT NULL
      AND s.series IN ('e2e_latency_s_bucket', 'queue_time_s_bucket', 'ttft_s_bucket',
                       'tpot_s_bucket')
    GROUP BY p.phase, s.pool, s.node, s.gpu, s.le, epoch_us(s.ts), s.series
),
rises AS (
    SELECT family, phase, pool, node, gpu, le,
           CASE WHEN prev IS NULL THEN 0.0
                WHEN value >= prev THEN value - prev
                ELSE value END AS rise  -- below the previous sample: the counter was reset
    FROM (
        SELECT *, lag(value) OVER (PARTITION BY family, phase, pool, node, gpu, le
                                   ORDER BY ts_us) AS prev
        FROM b
    )
),
per_pool AS (
    SELECT family, phase, pool, le, sum(rise) AS cum
    FROM rises
    GROUP BY family, phase, pool, le
),
segmented AS (
    -- pools belong to a segment only when the scope is drawn by pools (or is everything)
    SELECT pp.*,
           CASE WHEN sc.kind = 'all' THEN 'treatment'
                WHEN sc.kind = 'pools' THEN
                    CASE WHEN list_contains(sc.pools, pp.pool) THEN 'treatment' ELSE 'control' END
           END AS segment
    FROM per_pool pp CROSS JOIN scope sc
),
scoped AS (
    SELECT family, phase, 'all' AS segment, 'overall' AS breakdown,
           CAST(NULL AS VARCHAR) AS breakdown_value, le, sum(cum) AS cum
    FROM segmented GROUP BY family, phase, le
    UNION ALL
    SELECT family, phase, segment, 'overall', NULL, le, sum(cum)
    FROM segmented WHERE segment IS NOT NULL GROUP BY family, phase, segment, le
    UNION ALL
    SELECT family, phase, 'all', 'pool', pool, le, cum FROM segmented
),
bounds AS (
    SELECT *,
           lag(le) OVER w  AS lower_le,
           lag(cum) OVER w AS lower_cum,
           max(CASE WHEN le = 'Infinity'::DOUBLE THEN cum END) OVER (
               PARTITION BY family, phase, segment, breakdown, breakdown_value) AS total,
           max(CASE WHEN le < 'Infinity'::DOUBLE THEN le END) OVER (
               PARTITION BY family, phase, segment, breakdown, breakdown_value) AS top_finite,
           count(*) OVER (
               PARTITION BY family, phase, segment, breakdown, breakdown_value) AS buckets
    FROM scoped
    WINDOW w AS (PARTITION BY family, phase, segment, breakdown, breakdown_value ORDER BY le)
),
hit AS (
    -- per quantile, the first bucket whose cumulative count reaches q x total
    SELECT b.family, b.phase, b.segment, b.breakdown, b.breakdown_value, qs.q,
           any_value(b.total) AS total, any_value(b.buckets) AS buckets,
           any_value(b.top_finite) AS top_finite,
           min(b.le) AS le
    FROM bounds b CROSS JOIN qs
    WHERE b.total > 0 AND b.cum >= qs.q * b.total
    GROUP BY b.family, b.phase, b.segment, b.breakdown, b.breakdown_value, qs.q
)
SELECT
    $pilot AS pilot,
    h.phase,
    h.segment,
    h.breakdown,
    h.breakdown_value,
    h.family,
    CAST(h.q AS DOUBLE) AS q,
    CASE
        WHEN h.le = 'Infinity'::DOUBLE THEN h.top_finite
        ELSE coalesce(b.lower_le, least(0.0, h.le))
             + (h.le - coalesce(b.lower_le, least(0.0, h.le)))
               * (h.q * h.total - coalesce(b.lower_cum, 0.0))
               / nullif(b.cum - coalesce(b.lower_cum, 0.0), 0)
    END AS value_s,
    h.total AS observations,
    h.buckets,
    'approximate: interpolated inside a histogram bucket (Prometheus histogram_quantile)'
        AS note
FROM hit h
JOIN bounds b
  ON b.family = h.family AND b.phase = h.phase AND b.segment = h.segment
 AND b.breakdown = h.breakdown
 AND b.breakdown_value IS NOT DISTINCT FROM h.breakdown_value AND b.le = h.le
