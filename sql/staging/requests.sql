-- Canonical table: one row per request attempt (TELEMETRY.md). Times are UTC.
-- `pilot` scopes every row so a pilot can be replaced atomically (delete-then-insert).
CREATE TABLE IF NOT EXISTS requests (
    pilot              VARCHAR   NOT NULL,
    -- random tokens: DuckDB's dictionary/FSST analysis of them was the costliest part of the
    -- insert (2.1 of ~10.5 CPU s at 10 M attempts) and found nothing to compress
    request_id         VARCHAR   USING COMPRESSION uncompressed NOT NULL,
    parent_request_id  VARCHAR,
    attempt            INTEGER   NOT NULL,
    pool               VARCHAR   NOT NULL,
    node               VARCHAR,
    gpu                VARCHAR,
    -- fixed vocabularies (schemas/common.py, config.PRIORITIES; the adapters quarantine any
    -- other value) as ENUMs: one byte per row, no string statistics or dictionary to build
    -- (storing strings was ~30 % of the ingest's CPU at 10 M attempts); int_attempts
    -- inherits the type. A warehouse made before keeps VARCHAR: the SQL reads both alike.
    model_class        ENUM('llm', 'vision', 'multimodal', 'prediction', 'other') NOT NULL,
    priority           ENUM('P0', 'P1', 'P2', 'P3') NOT NULL,
    arrival_ts         TIMESTAMP NOT NULL,
    dispatch_ts        TIMESTAMP,
    start_ts           TIMESTAMP,
    first_token_ts     TIMESTAMP,
    end_ts             TIMESTAMP,
    status             ENUM('ok', 'timeout', 'dropped', 'error', 'cancelled') NOT NULL,
    input_tokens       INTEGER,
    output_tokens      INTEGER
);
