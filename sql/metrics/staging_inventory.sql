-- What the pilot's staging tables hold (METRICS.md, staging_inventory; section 1 of the
-- report reads it): rows and time span per table, the distinct pools, nodes and GPUs, the
-- workload mix by model class and by priority class, and the arrival trace's sources. The
-- large tables are scanned here, once each and grouped at once to a few thousand rows, so
-- the report's time does not grow with the pilot (at 100 M attempts these scans took ~4 s
-- of the report). Long form: one row per (item, key); `key` is '*' for a whole-pilot count.
WITH req AS (
    -- one grouped pass over requests: everything below is derived from these few rows
    SELECT pool, node, gpu, model_class, priority,
           count(*) AS n,
           count(*) FILTER (WHERE attempt = 0) AS n_first,
           min(arrival_ts) AS lo, max(arrival_ts) AS hi
    FROM requests
    WHERE pilot = $pilot
    GROUP BY pool, node, gpu, model_class, priority
),
smp AS (
    SELECT pool, node, gpu, count(*) AS n, min(ts) AS lo, max(ts) AS hi
    FROM samples
    WHERE pilot = $pilot
    GROUP BY pool, node, gpu
),
jb AS (
    SELECT pool, node, count(*) AS n, min(submit_ts) AS lo,
           max(coalesce(end_ts, submit_ts)) AS hi
    FROM jobs
    WHERE pilot = $pilot
    GROUP BY pool, node
),
arr AS (
    SELECT source, count(*) AS n, min(ts) AS lo, max(ts) AS hi
    FROM arrivals
    WHERE pilot = $pilot
    GROUP BY source
),
-- pools, nodes and GPUs named by any of the three tables (jobs name no GPU)
named AS (
    SELECT pool, node, gpu FROM req
    UNION ALL SELECT pool, node, gpu FROM smp
    UNION ALL SELECT pool, node, CAST(NULL AS VARCHAR) FROM jb
),
items (item, key, n, n_first, lo, hi) AS (
    SELECT 'rows', 'requests', coalesce(sum(n), 0), coalesce(sum(n_first), 0), min(lo),
           max(hi)
    FROM req
    UNION ALL
    SELECT 'rows', 'samples', coalesce(sum(n), 0), NULL, min(lo), max(hi) FROM smp
    UNION ALL
    SELECT 'rows', 'jobs', coalesce(sum(n), 0), NULL, min(lo), max(hi) FROM jb
    UNION ALL
    SELECT 'rows', 'arrivals', coalesce(sum(n), 0), NULL, min(lo), max(hi) FROM arr
    UNION ALL
    SELECT 'arrival_source', source, n, NULL, lo, hi FROM arr
    UNION ALL
    SELECT 'pool', pool, NULL, NULL, NULL, NULL
    FROM named
    WHERE pool IS NOT NULL
    GROUP BY pool
    UNION ALL
    SELECT 'nodes', '*', count(DISTINCT node), NULL, NULL, NULL FROM named
    UNION ALL
    SELECT 'gpus', '*', count(*), NULL, NULL, NULL
    FROM (SELECT DISTINCT node, gpu FROM named WHERE gpu IS NOT NULL) g
    UNION ALL
    SELECT 'model_class', model_class, sum(n), sum(n_first), NULL, NULL
    FROM req
    GROUP BY model_class
    UNION ALL
    SELECT 'priority', priority, sum(n), sum(n_first), NULL, NULL
    FROM req
    GROUP BY priority
)
SELECT $pilot AS pilot, item, key, CAST(n AS BIGINT) AS n, CAST(n_first AS BIGINT) AS n_first,
       lo, hi
FROM items
