-- Difference-in-differences point estimate (Vtreat - Btreat) - (Vctrl - Bctrl) per metric.
WITH ba AS (
    SELECT segment, metric, abs_change FROM metrics_before_after WHERE pilot = $pilot
)
SELECT
    $pilot AS pilot,
    t.metric,
    t.abs_change AS treatment_change,
    c.abs_change AS control_change,
    t.abs_change - c.abs_change AS did
FROM ba t
JOIN ba c ON c.metric = t.metric AND c.segment = 'control'
WHERE t.segment = 'treatment'
