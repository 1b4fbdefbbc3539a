-- Synchronization map per phase x segment (METRICS.md): layer health in % (scheduler =
-- share of attempts with scheduling delay <= target; compute = effective / nominal
-- utilisation; data = not measured without I/O telemetry; serving = SLA adherence), link
-- alignment = Spearman rho of two layers' per-minute series (rank() then corr()) mapped to
-- 0-100 % as (rho + 1) / 2, and overall = geometric mean of the measured layers.
WITH th AS (SELECT * FROM int_thresholds WHERE pilot = $pilot),
seg AS (SELECT * FROM (VALUES ('all'), ('treatment'), ('control')) v(segment)),
pm AS (
    SELECT pm.*, g.segment AS seg
    FROM int_pool_minutes pm
    JOIN seg g ON g.segment = 'all' OR g.segment = pm.segment
    WHERE pm.pilot = $pilot AND pm.phase IS NOT NULL
),
h AS (
    SELECT phase, segment,
           max(value) FILTER (WHERE metric = 'effective_util')  AS eff,
           max(value) FILTER (WHERE metric = 'nominal_util')    AS nom,
           max(value) FILTER (WHERE metric = 'sla_adherence')   AS sla,
           max(note) FILTER (WHERE metric = 'effective_util')   AS eff_src
    FROM metrics_headline
    WHERE pilot = $pilot AND breakdown = 'overall'
    GROUP BY phase, segment
),
sched AS (
    SELECT phase, seg AS segment,
           sum(sched_ok_share * dispatched) / nullif(sum(dispatched), 0) AS sched_ok
    FROM pm GROUP BY ALL
),
-- per-minute series of the segment (pools summed / GPU-weighted)
minute AS (
    SELECT phase, seg AS segment, m,
           sum(sched_ok_share * dispatched) / nullif(sum(dispatched), 0)  AS sched_s,
           sum(nominal_util * gpus) / nullif(sum(gpus), 0)                AS compute_s,
           sum(sla_adherence * first_arrivals) / nullif(sum(first_arrivals), 0) AS serving_s,
           sum(starts)                                                    AS dispatch_s
    FROM pm GROUP BY ALL
),
pairs AS (
    SELECT * FROM (VALUES
        ('scheduler~compute', 'dispatch rate vs GPU busy (nominal utilisation)'),
        ('compute~serving', 'GPU busy vs SLA adherence'),
        ('scheduler~serving', 'on-time dispatch share vs SLA adherence')
    ) v(link, series)
),
ranked AS (
    SELECT phase, segment,
           rank() OVER (PARTITION BY phase, segment ORDER BY dispatch_s) AS r_disp,
           rank() OVER (PARTITION BY phase, segment ORDER BY compute_s)  AS r_comp,
           rank() OVER (PARTITION BY phase, segment ORDER BY serving_s)  AS r_serv,
           rank() OVER (PARTITION BY phase, segment ORDER BY sched_s)    AS r_sched
    FROM minute
    WHERE compute_s IS NOT NULL AND serving_s IS NOT NULL AND sched_s IS NOT NULL
),
rho AS (
    SELECT phase, segment,
           corr(r_disp, r_comp)  AS sc,
           corr(r_comp, r_serv)  AS cs,
           corr(r_sched, r_serv) AS ss
    FROM ranked GROUP BY ALL
),
layers AS (
    SELECT h.phase, h.segment, 'layer' AS kind, 'scheduler' AS name,
           100 * s.sched_ok AS value,
           CASE WHEN s.sched_ok IS NULL
                THEN 'not measured: needs per-request rows with dispatch_ts'
                ELSE 'share of attempts with scheduling delay <= target' END AS note
    FROM h LEFT JOIN sched s USING (phase, segment)
    UNION ALL
    SELECT phase, segment, 'layer', 'compute', 100 * eff / nullif(nom, 0),
           CASE WHEN nom IS NULL THEN 'not measured: needs gpu_util samples'
                WHEN eff IS NULL THEN 'not measured: needs sm_active or per-request rows'
                ELSE 'effective (' || coalesce(eff_src, '?') || ') / nominal utilisation' END
    FROM h
    UNION ALL
    SELECT phase, segment, 'layer', 'data', NULL,
           'not measured: no I/O-wait telemetry in the canonical tables'
    FROM h
    UNION ALL
    SELECT phase, segment, 'layer', 'serving', 100 * sla,
           CASE WHEN sla IS NULL THEN 'not measured: needs per-request rows (requests)'
                ELSE 'SLA adherence' END
    FROM h
),
links AS (
    SELECT h.phase, h.segment, 'link' AS kind, p.link AS name,
           100 * (CASE p.link WHEN 'scheduler~compute' THEN r.sc
                              WHEN 'compute~serving' THEN r.cs ELSE r.ss END + 1) / 2 AS value,
           CASE WHEN (CASE p.link WHEN 'scheduler~compute' THEN r.sc
                                  WHEN 'compute~serving' THEN r.cs ELSE r.ss END) IS NULL
                THEN 'not measured: a series is missing or constant'
                ELSE 'Spearman rho of ' || p.series || ', (rho+1)/2' END AS note
    FROM h CROSS JOIN pairs p LEFT JOIN rho r USING (phase, segment)
),
overall AS (
    SELECT phase, segment, 'overall' AS kind, 'overall' AS name,
           exp(avg(ln(greatest(value, 1e-9)))) AS value,
           'geometric mean of ' || CAST(count(value) AS VARCHAR) || ' measured layers' AS note
    FROM layers WHERE value IS NOT NULL GROUP BY phase, segment
)
SELECT $pilot AS pilot, l.phase, l.segment, l.kind, l.name, CAST(l.value AS DOUBLE) AS value,
       '%' AS unit,
       CAST(json_object('sched_delay_target_s', th.sched_delay_target_s) AS VARCHAR)
           AS thresholds_json,
       l.note
FROM (SELECT * FROM layers UNION ALL SELECT * FROM links UNION ALL SELECT * FROM overall) l
CROSS JOIN th
