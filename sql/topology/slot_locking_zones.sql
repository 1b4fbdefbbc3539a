-- GPU slot-locking zones (METRICS.md, Topology tables): per GPU, the intervals during which
-- long jobs (held > long_job_s) occupied it while at least one inference attempt of the same
-- pool was queued (waited >= sched_delay_target_s, from arrival to start, or to end when it
-- never started; a dropped attempt without either is not counted). Overlapping long jobs on
-- a GPU merge into one hold and the pool's waits into queued intervals (gaps-and-islands
-- over intervals); a zone is a hold intersected with one queued interval. Per zone:
-- duration, the jobs and their kinds, attempts waiting (P0/P1 among them) and the wait they
-- accrued inside the zone (`wait_added_s`: an upper bound of what freeing the slot could
-- have saved; an attempt waiting while two GPUs were locked counts in both). A job that
-- lists no GPU is its own row with gpu NULL. No jobs or no per-request rows: zero rows (the
-- report says which input was missing). Interval joins: an equi-join on pool (holds and
-- queued intervals are few) or on the queued interval's number, plus a range filter.
WITH th AS (SELECT * FROM int_thresholds WHERE pilot = $pilot),
jg AS (
    SELECT job_id, kind, pool, js, je,
           unnest(CASE WHEN len(gpu_ids) > 0 THEN gpu_ids ELSE [NULL::VARCHAR] END) AS gpu
    FROM (
        SELECT j.job_id, j.kind, j.pool, j.gpu_ids,
               epoch_us(j.start_ts) AS js, epoch_us(j.end_ts) AS je
        FROM jobs j
        CROSS JOIN th
        WHERE j.pilot = $pilot AND j.pool IS NOT NULL
          AND j.start_ts IS NOT NULL AND j.end_ts IS NOT NULL
          AND epoch_us(j.end_ts) - epoch_us(j.start_ts) > th.long_job_s * 1e6
    )
),
-- a GPU key that never merges two jobs whose GPUs are unknown
jk AS (SELECT *, coalesce(gpu, '?' || job_id) AS gkey FROM jg),
hold_start AS (
    SELECT *,
           CASE WHEN js > coalesce(max(je) OVER (
                    PARTITION BY pool, gkey ORDER BY js, je, job_id
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), js - 1)
                THEN 1 ELSE 0 END AS new_hold
    FROM jk
),
hold_no AS (
    SELECT *, sum(new_hold) OVER (PARTITION BY pool, gkey ORDER BY js, je, job_id
                                  ROWS UNBOUNDED PRECEDING) AS hold
    FROM hold_start
),
holds AS (
    SELECT pool, gkey, any_value(gpu) AS gpu, hold, min(js) AS hs, max(je) AS he
    FROM hold_no
    GROUP BY pool, gkey, hold
),
-- pools with a hold, numbered: the sorts below are keyed by integers only
hold_pools AS (
    SELECT pool, CAST(row_number() OVER (ORDER BY pool) AS INTEGER) AS pid
    FROM (SELECT DISTINCT pool FROM holds)
),
waits AS (
    SELECT a.pool, hp.pid, a.priority, a.arrival_us,
           coalesce(epoch_us(a.start_ts), epoch_us(a.end_ts)) AS wait_end_us
    FROM int_attempts a
    CROSS JOIN th
    JOIN hold_pools hp ON hp.pool = a.pool
    WHERE a.pilot = $pilot
      AND coalesce(epoch_us(a.start_ts), epoch_us(a.end_ts)) - a.arrival_us
          >= th.sched_delay_target_s * 1e6
),
-- the pool's queued time: its waits merged into disjoint intervals (gaps-and-islands: a wait
-- opens an interval when it arrives after every earlier wait of the pool has ended)
wait_start AS (
    SELECT *,
           CASE WHEN arrival_us > coalesce(max(wait_end_us) OVER (
                    PARTITION BY pid ORDER BY arrival_us, wait_end_us
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), arrival_us - 1)
                THEN 1 ELSE 0 END AS new_q
    FROM waits
),
-- each wait's interval number q from the intervals' first waits, not from a second window
-- over every wait (a sort of them all): an interval holds the waits arriving from its first
-- wait to the next interval's (at an interval's first wait every earlier wait has ended, so
-- none arrives at the same time), found through the arrival's minute (a hash join)
q_starts AS (
    SELECT pid, arrival_us AS qs,
           row_number() OVER (PARTITION BY pid ORDER BY arrival_us) AS q,
           lead(arrival_us) OVER (PARTITION BY pid ORDER BY arrival_us) AS next_qs
    FROM wait_start
    WHERE new_q = 1
),
last_arrival AS (SELECT pid, max(arrival_us) AS la FROM wait_start GROUP BY pid),
q_keys AS (
    SELECT s.pid, s.q, s.qs, coalesce(s.next_qs, 9223372036854775807) AS qn,
           unnest(range(s.qs // 60000000,
                        coalesce(s.next_qs - 1, l.la) // 60000000 + 1)) AS m
    FROM q_starts s JOIN last_arrival l ON l.pid = s.pid
),
wq AS (
    SELECT w.*, k.q
    FROM wait_start w
    JOIN q_keys k
      ON k.pid = w.pid AND k.m = w.arrival_us // 60000000
     AND w.arrival_us >= k.qs AND w.arrival_us < k.qn
),
queued AS (
    SELECT pool, q, min(arrival_us) AS qs, max(wait_end_us) AS qe FROM wq GROUP BY pool, q
),
-- a job holding several GPUs gives the same hold on each: intersect each distinct hold
-- interval with the queued intervals once, then fan the zones out to the GPUs
uh AS (SELECT DISTINCT pool, hs, he FROM holds),
uz0 AS (
    SELECT h.pool, h.hs, h.he, q.q, greatest(q.qs, h.hs) AS zs, least(q.qe, h.he) AS ze
    FROM uh h JOIN queued q ON q.pool = h.pool AND q.qs < h.he AND q.qe > h.hs
),
uz AS (
    SELECT z.pool, z.hs, z.he, z.zs, z.ze,
           count(*)                                              AS attempts_waiting,
           count(*) FILTER (WHERE w.priority IN ('P0', 'P1'))    AS p0_p1_attempts_waiting,
           sum(least(w.wait_end_us, z.ze) - greatest(w.arrival_us, z.zs)) / 1e6
                                                                 AS wait_added_s
    FROM uz0 z
    JOIN wq w
      ON w.pool = z.pool AND w.q = z.q AND w.arrival_us < z.ze AND w.wait_end_us > z.zs
    GROUP BY z.pool, z.hs, z.he, z.zs, z.ze
),
zones AS (
    SELECT h.gkey, h.gpu, z.*
    FROM uz z JOIN holds h ON h.pool = z.pool AND h.hs = z.hs AND h.he = z.he
),
zone_jobs AS (
    SELECT z.pool, z.gkey, z.zs,
           count(*)                        AS jobs,
           list_sort(list(DISTINCT j.kind)) AS job_kinds,
           max(j.je - j.js) / 1e6          AS longest_job_s
    FROM zones z
    JOIN jk j ON j.pool = z.pool AND j.gkey = z.gkey AND j.js < z.ze AND j.je > z.zs
    GROUP BY z.pool, z.gkey, z.zs
)
SELECT
    $pilot AS pilot,
    z.pool,
    z.gpu,
    z.pool || ':' || coalesce(z.gpu, z.gkey) || ':' || CAST(z.zs AS VARCHAR) AS zone_id,
    p.phase,
    make_timestamp(z.zs)                 AS start_ts,
    make_timestamp(z.ze)                 AS end_ts,
    (z.ze - z.zs) / 1e6                  AS duration_s,
    zj.jobs,
    zj.job_kinds,
    zj.longest_job_s,
    z.attempts_waiting,
    z.p0_p1_attempts_waiting,
    z.wait_added_s,
    (z.ze - z.zs) / 3.6e9                AS gpu_hours_locked,
    CAST(json_object('long_job_s', th.long_job_s,
                     'sched_delay_target_s', th.sched_delay_target_s) AS VARCHAR)
        AS thresholds_json
FROM zones z
JOIN zone_jobs zj ON zj.pool = z.pool AND zj.gkey = z.gkey AND zj.zs = z.zs
CROSS JOIN th
LEFT JOIN phases p
  ON p.pilot = $pilot AND make_timestamp(z.zs) >= p.start_ts AND make_timestamp(z.zs) < p.end_ts
