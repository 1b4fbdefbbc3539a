-- Identifier audit (METRICS.md, Observer-only): per identifier column of the pilot's staging
-- rows, the values stored, how many have the keyed-token form <kind>-<16 hex digits>
-- (pipelines/anonymize.py TOKEN_RE; a test pins this copy of it) and the distinct values.
-- Every row is checked, here and not in the report, so the report's time does not grow with
-- the pilot. Request ids (one per attempt) are matched row by row and not counted distinct
-- (an exact count hashes every value, 3x the CPU; a HyperLogLog estimate differs by engine:
-- 13 % between DuckDB and Spark on the parity pilot); the other columns hold few values, so
-- they are grouped first and each distinct value is matched once (an exact count).
-- regexp_matches with ^...$ is a full match, at ~60 % of regexp_full_match's cost.
WITH ids AS (
    SELECT
        count(request_id) AS n1,
        count(request_id) FILTER (WHERE regexp_matches(request_id,
            '^(?:req|node|gpu|job|trace|host|pod|container|user|tenant)-[0-9a-f]{16}$')) AS t1,
        count(parent_request_id) AS n2,
        count(parent_request_id) FILTER (WHERE regexp_matches(parent_request_id,
            '^(?:req|node|gpu|job|trace|host|pod|container|user|tenant)-[0-9a-f]{16}$')) AS t2
    FROM requests
    WHERE pilot = $pilot
),
grouped AS (
    SELECT 'requests' AS table_name, CASE WHEN grouping(node) = 0 THEN 'node' ELSE 'gpu' END
               AS column_name, coalesce(node, gpu) AS v, count(*) AS n
    FROM requests
    WHERE pilot = $pilot
    GROUP BY GROUPING SETS ((node), (gpu))
    UNION ALL
    SELECT 'samples', CASE WHEN grouping(node) = 0 THEN 'node' ELSE 'gpu' END,
           coalesce(node, gpu), count(*)
    FROM samples
    WHERE pilot = $pilot
    GROUP BY GROUPING SETS ((node), (gpu))
    UNION ALL
    SELECT 'jobs', CASE WHEN grouping(job_id) = 0 THEN 'job_id' ELSE 'node' END,
           coalesce(job_id, node), count(*)
    FROM jobs
    WHERE pilot = $pilot
    GROUP BY GROUPING SETS ((job_id), (node))
),
few AS (
    SELECT table_name, column_name,
           sum(n) FILTER (WHERE v IS NOT NULL) AS n_values,
           sum(n) FILTER (WHERE regexp_matches(v,
               '^(?:req|node|gpu|job|trace|host|pod|container|user|tenant)-[0-9a-f]{16}$'))
               AS n_tokens,
           count(v) AS n_distinct
    FROM grouped
    GROUP BY ALL
),
audit (ord, table_name, column_name, n_values, n_tokens, n_distinct) AS (
    SELECT 1, 'requests', 'request_id', n1, t1, NULL FROM ids
    UNION ALL SELECT 2, 'requests', 'parent_request_id', n2, t2, NULL FROM ids
    UNION ALL
    SELECT CASE table_name || '.' || column_name WHEN 'requests.node' THEN 3
                WHEN 'requests.gpu' THEN 4 WHEN 'samples.node' THEN 5 WHEN 'samples.gpu' THEN 6
                WHEN 'jobs.job_id' THEN 7 ELSE 8 END,
           table_name, column_name, n_values, n_tokens, n_distinct
    FROM few
)
SELECT $pilot AS pilot, ord, table_name, column_name,
       CAST(coalesce(n_values, 0) AS BIGINT) AS n_values,
       CAST(coalesce(n_tokens, 0) AS BIGINT) AS n_tokens,
       CAST(n_distinct AS BIGINT) AS n_distinct
FROM audit
