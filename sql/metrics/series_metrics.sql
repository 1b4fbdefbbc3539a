-- Series metrics for pilots with time series instead of (or beside) per-request rows:
-- vLLM / Prometheus counters, gauges and histograms, aggregated per-interval exports, and
-- arrival traces. Same columns as metrics_headline (which appends these rows), per phase x
-- segment x (overall | pool). A row exists only where its series exist in the phase: an
-- absent series gives no row (never a 0).
--   request_rate_rps: per phase, the first source present, in this order:
--     the vLLM success counter, a latency histogram's _count (e2e, queue time, TTFT), the
--     arrival trace (measured); the per-interval `arrival_rate` series (aggregate).
--     Counter rate per series = increase over the phase (sum of rises between consecutive
--     samples, a drop counting as a reset, as in latency_histogram_quantiles) / seconds
--     between the series' first and last sample in the phase; scopes add their series.
--   preemptions_per_min: the same for vllm:num_preemptions_total, x 60.
--   queue_depth_mean|p95|max, running_requests_mean: over the queue_waiting / queue_running
--     samples of the scope (one series per pool x node x gpu: a serving instance); each
--     sample stands for the gap to its series' next sample (the last takes the previous
--     gap), capped at 5 min so outages are not time (as int_gpu_samples). P95 and max are
--     over the samples as exported. Labelled aggregate when the pilot's samples are a
--     per-interval export (it carries arrival_rate or a <quantity>_<stat>_s series).
--   <quantity>_agg_<stat>_s: time-weighted mean of a per-interval series
--     <quantity>_<stat>_s (stat: mean | p50 | p95 | p99), e.g. queue_time_agg_mean_s:
--     "mean of per-interval means"; never a per-request quantile.
--   ttft_p50_s ... tpot_p95_s: histogram quantiles from latency_histogram_quantiles.
WITH scope AS (SELECT * FROM pilot_scope WHERE pilot = $pilot),
ph AS (
    SELECT phase, start_ts, end_ts, (epoch_us(end_ts) - epoch_us(start_ts)) / 1e6 AS phase_s
    FROM phases WHERE pilot = $pilot
),
picked AS (
    SELECT
        CASE series WHEN 'vllm:request_success_total' THEN 'request_success_total'
                    WHEN 'vllm:num_preemptions_total' THEN 'preemptions_total'
                    ELSE series END AS series,
        pool, node, gpu, ts, value
    FROM samples
    WHERE pilot = $pilot AND le IS NULL
      AND (series IN ('request_success_total', 'vllm:request_success_total',
                      'preemptions_total', 'vllm:num_preemptions_total',
                      'e2e_latency_s_count', 'queue_time_s_count', 'ttft_s_count',
                      'queue_waiting', 'queue_running', 'arrival_rate')
           OR regexp_matches(series, '^.+_(mean|p50|p95|p99)_s$'))
),
-- one value per series, instance and time: labels the adapters drop (vLLM's finished_reason,
-- model_name) can split one series into several at the same instant. Counts and rates add;
-- per-interval latency statistics are averaged.
keyed AS (
    SELECT series, pool, node, gpu, epoch_us(ts) AS ts_us, any_value(ts) AS ts,
           CASE WHEN regexp_matches(series, '^.+_(mean|p50|p95|p99)_s$') THEN avg(value)
                ELSE sum(value) END AS value
    FROM picked
    GROUP BY series, pool, node, gpu, epoch_us(ts)
),
in_phase AS (
    SELECT k.*, p.phase
    FROM keyed k
    JOIN ph p ON k.ts >= p.start_ts AND k.ts < p.end_ts
),
-- counters: rises between consecutive samples of a series inside the phase
rises AS (
    SELECT series, phase, pool, node, gpu, ts_us,
           CASE WHEN prev IS NULL THEN 0.0
                WHEN value >= prev THEN value - prev
                ELSE value END AS rise  -- below the previous sample: the counter was reset
    FROM (
        SELECT *, lag(value) OVER (PARTITION BY series, phase, pool, node, gpu
                                   ORDER BY ts_us) AS prev
        FROM in_phase
        WHERE series IN ('request_success_total', 'preemptions_total', 'e2e_latency_s_count',
                         'queue_time_s_count', 'ttft_s_count')
    )
),
counter_rates AS (
    SELECT series, phase, pool, node, gpu,
           sum(rise) / ((max(ts_us) - min(ts_us)) / 1e6) AS rate
    FROM rises
    GROUP BY series, phase, pool, node, gpu
    HAVING max(ts_us) > min(ts_us)
),
-- gauges and per-interval series: the time each sample stands for
weighted AS (
    SELECT i.*,
           least(coalesce(i.gap_next_us, i.gap_prev_us, 60000000), 300000000) / 1e6 AS dt_s
    FROM (
        SELECT k.series, k.pool, k.node, k.gpu, k.ts_us, k.value, p.phase,
               lead(k.ts_us) OVER (PARTITION BY k.series, k.pool, k.node, k.gpu
                                   ORDER BY k.ts_us) - k.ts_us AS gap_next_us,
               k.ts_us - lag(k.ts_us) OVER (PARTITION BY k.series, k.pool, k.node, k.gpu
                                            ORDER BY k.ts_us) AS gap_prev_us,
               k.ts >= p.start_ts AND k.ts < p.end_ts AS inside
        FROM keyed k
        LEFT JOIN ph p ON k.ts >= p.start_ts AND k.ts < p.end_ts
        WHERE k.series NOT IN ('request_success_total', 'preemptions_total',
                               'e2e_latency_s_count', 'queue_time_s_count', 'ttft_s_count')
    ) i
    WHERE i.inside
),
agg_export AS (
    SELECT count(*) > 0 AS yes FROM weighted WHERE series <> 'queue_waiting'
      AND series <> 'queue_running'
),
-- request rate: per series, then the best source per phase
rate_src AS (
    SELECT 'request_rate_rps' AS metric, phase, pool, node, gpu, rate,
           CASE series WHEN 'request_success_total' THEN 1 WHEN 'e2e_latency_s_count' THEN 2
                       WHEN 'queue_time_s_count' THEN 3 ELSE 4 END AS rnk,
           'measured' AS basis,
           CASE series
               WHEN 'request_success_total'
                   THEN 'increase of the vLLM request_success_total counter (resets handled) '
                        || 'per second between its first and last sample in the phase'
               ELSE 'requests counted by the ' || replace(series, '_count', '')
                    || ' histogram (_count increase, resets handled) per second between its '
                    || 'first and last sample in the phase'
           END AS note
    FROM counter_rates WHERE series <> 'preemptions_total'
    UNION ALL
    SELECT 'request_rate_rps', a.phase, CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR),
           CAST(NULL AS VARCHAR), count(*) / any_value(a.phase_s), 5, 'measured',
           'arrival trace: arrivals per second of phase time'
    FROM (SELECT p.phase, p.phase_s
          FROM arrivals r JOIN ph p ON r.ts >= p.start_ts AND r.ts < p.end_ts
          WHERE r.pilot = $pilot) a
    GROUP BY a.phase
    UNION ALL
    SELECT 'request_rate_rps', phase, pool, node, gpu, sum(value * dt_s) / sum(dt_s), 6,
           'aggregate',
           'aggregate: time-weighted mean of the per-interval arrival_rate series'
    FROM weighted WHERE series = 'arrival_rate'
    GROUP BY phase, pool, node, gpu
    UNION ALL
    SELECT 'preemptions_per_min', phase, pool, node, gpu, 60 * rate, 1, 'measured',
           'increase of the vLLM num_preemptions_total counter (resets handled) per minute '
           || 'between its first and last sample in the phase'
    FROM counter_rates WHERE series = 'preemptions_total'
),
rate_best AS (
    SELECT * FROM rate_src
    QUALIFY rnk = min(rnk) OVER (PARTITION BY metric, phase)
),
-- pools -> the scopes they count in: all, their segment (pools drawn by the scope, or
-- everything), and their own pool breakdown
pool_seg AS (
    SELECT u.pool,
           CASE WHEN sc.kind = 'all' THEN 'treatment'
                WHEN sc.kind = 'pools' AND u.pool IS NOT NULL THEN
                    CASE WHEN list_contains(sc.pools, u.pool) THEN 'treatment' ELSE 'control' END
           END AS segment
    FROM (SELECT DISTINCT pool FROM rate_src UNION SELECT DISTINCT pool FROM weighted) u
    CROSS JOIN scope sc
),
pool_scopes AS (
    SELECT pool, 'all' AS segment, 'overall' AS breakdown,
           CAST(NULL AS VARCHAR) AS breakdown_value
    FROM pool_seg
    UNION ALL
    SELECT pool, segment, 'overall', CAST(NULL AS VARCHAR) FROM pool_seg
    WHERE segment IS NOT NULL
    UNION ALL
    SELECT pool, 'all', 'pool', pool FROM pool_seg WHERE pool IS NOT NULL
),
rate_m AS (
    SELECT r.metric, r.phase, s.segment, s.breakdown, s.breakdown_value,
           sum(r.rate) AS value, any_value(r.basis) AS basis, any_value(r.note) AS note
    FROM rate_best r
    JOIN pool_scopes s ON s.pool IS NOT DISTINCT FROM r.pool
    GROUP BY r.metric, r.phase, s.segment, s.breakdown, s.breakdown_value
),
gauge_m AS (
    SELECT w.phase, s.segment, s.breakdown, s.breakdown_value, w.series,
           sum(w.value * w.dt_s) / sum(w.dt_s) AS tw_mean,
           quantile_cont(w.value, 0.95) AS p95,
           max(w.value) AS mx
    FROM weighted w
    JOIN pool_scopes s ON s.pool IS NOT DISTINCT FROM w.pool
    WHERE w.series <> 'arrival_rate'
    GROUP BY w.phase, s.segment, s.breakdown, s.breakdown_value, w.series
),
gauge_long AS (
    SELECT g.phase, g.segment, g.breakdown, g.breakdown_value, v.metric,
           CASE v.stat WHEN 'mean' THEN g.tw_mean WHEN 'p95' THEN g.p95 ELSE g.mx END AS value,
           CASE WHEN x.yes THEN 'aggregate' ELSE 'measured' END AS basis,
           CASE WHEN x.yes THEN 'aggregate: over the values of a per-interval export of '
                                || g.series || ' (time-weighted; not instantaneous depth)'
                ELSE v.how || ' of ' || g.series || ' samples'
           END AS note
    FROM gauge_m g
    CROSS JOIN agg_export x
    JOIN (VALUES ('queue_waiting', 'queue_depth_mean', 'mean', 'time-weighted mean'),
                 ('queue_waiting', 'queue_depth_p95', 'p95', '95th percentile'),
                 ('queue_waiting', 'queue_depth_max', 'max', 'largest'),
                 ('queue_running', 'running_requests_mean', 'mean', 'time-weighted mean'))
         v(series, metric, stat, how)
      ON v.series = g.series
),
agg_long AS (
    SELECT phase, segment, breakdown, breakdown_value,
           regexp_extract(series, '^(.+)_(mean|p50|p95|p99)_s$', 1) || '_agg_'
               || regexp_extract(series, '^(.+)_(mean|p50|p95|p99)_s$', 2) || '_s' AS metric,
           tw_mean AS value, 'aggregate' AS basis,
           'aggregate: time-weighted mean of the per-interval series ' || series
               || ' (not a per-request quantile)' AS note
    FROM gauge_m
    WHERE regexp_matches(series, '^.+_(mean|p50|p95|p99)_s$')
),
hist_long AS (
    SELECT phase, segment, breakdown, breakdown_value,
           CASE family WHEN 'ttft_s' THEN 'ttft' ELSE 'tpot' END
               || CASE WHEN round(q * 100) = 50 THEN '_p50_s' ELSE '_p95_s' END AS metric,
           value_s AS value, 'approximate' AS basis,
           'approximate: from ' || family || ' histogram buckets (Prometheus '
               || 'histogram_quantile), per server request' AS note
    FROM latency_histogram_quantiles
    WHERE pilot = $pilot AND family IN ('ttft_s', 'tpot_s') AND round(q * 100) IN (50, 95)
      AND NOT (breakdown = 'pool' AND breakdown_value IS NULL)
),
long AS (
    SELECT phase, segment, breakdown, breakdown_value, metric, value, basis, note FROM rate_m
    UNION ALL
    SELECT phase, segment, breakdown, breakdown_value, metric, value, basis, note
    FROM gauge_long
    UNION ALL
    SELECT phase, segment, breakdown, breakdown_value, metric, value, basis, note FROM agg_long
    UNION ALL
    SELECT phase, segment, breakdown, breakdown_value, metric, value, basis, note
    FROM hist_long
)
SELECT
    $pilot AS pilot,
    l.phase,
    l.segment,
    l.breakdown,
    l.breakdown_value,
    l.metric,
    CAST(l.value AS DOUBLE) AS value,
    coalesce(c.unit, 's') AS unit,  -- every name outside the catalog is a <quantity>_agg_*_s
    l.basis,
    l.note
FROM long l
LEFT JOIN metric_catalog c ON c.name = l.metric
WHERE l.value IS NOT NULL
