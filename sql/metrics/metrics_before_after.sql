-- Baseline vs validation for every overall headline metric and segment (point values).
WITH h AS (
    SELECT segment, metric, unit, phase, value
    FROM metrics_headline
    WHERE pilot = $pilot AND breakdown = 'overall' AND phase IN ('baseline', 'validation')
)
SELECT
    $pilot AS pilot,
    b.segment,
    b.metric,
    b.value AS baseline,
    v.value AS validation,
    v.value - b.value AS abs_change,
    (v.value - b.value) / nullif(abs(b.value), 0) AS rel_change,
    b.unit
FROM h b
JOIN h v ON v.segment = b.segment AND v.metric = b.metric AND v.phase = 'validation'
WHERE b.phase = 'baseline'
