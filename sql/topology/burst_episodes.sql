-- Adjacent burst windows of a pool merged into one burst episode (gaps-and-islands).
WITH th AS (
    SELECT CAST(burst_window_s * 1e6 AS BIGINT) AS win_us
    FROM int_thresholds WHERE pilot = $pilot
),
bursts AS (
    SELECT pool, w, phase, arrivals, rate_rps, trailing_median_rps,
           w - row_number() OVER (PARTITION BY pool ORDER BY w) AS island
    FROM burst_windows
    WHERE pilot = $pilot AND is_burst
)
SELECT
    $pilot AS pilot,
    b.pool,
    b.pool || ':' || CAST(min(b.w) AS VARCHAR)    AS episode_id,
    arg_min(b.phase, b.w)                          AS phase,
    make_timestamp(min(b.w) * th.win_us)           AS start_ts,
    make_timestamp((max(b.w) + 1) * th.win_us)     AS end_ts,
    count(*)                                       AS windows,
    sum(b.arrivals)                                AS arrivals,
    max(b.rate_rps)                                AS peak_rate_rps,
    arg_min(b.trailing_median_rps, b.w)            AS trailing_median_rps
FROM bursts b
CROSS JOIN th
GROUP BY b.pool, b.island, th.win_us
