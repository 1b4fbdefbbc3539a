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
    model_class        VARCHAR   NOT NULL,
    priority           VARCHAR   NOT NULL,
    arrival_ts         TIMESTAMP NOT NULL,
    dispatch_ts        TIMESTAMP,
    start_ts           TIMESTAMP,
    first_token_ts     TIMESTAMP,
    end_ts             TIMESTAMP,
    status             VARCHAR   NOT NULL,
    input_tokens       INTEGER,
    output_tokens      INTEGER
);
