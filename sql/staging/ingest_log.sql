-- One row per ingested file: provenance and the reconciliation rows_in = stored + quarantined.
CREATE TABLE IF NOT EXISTS ingest_log (
    pilot             VARCHAR   NOT NULL,
    source_index      INTEGER   NOT NULL,
    source_kind       VARCHAR   NOT NULL,
    target_table      VARCHAR,
    file              VARCHAR   NOT NULL,
    sha256            VARCHAR   NOT NULL,
    bytes             BIGINT    NOT NULL,
    rows_in           BIGINT    NOT NULL,
    rows_stored       BIGINT    NOT NULL,
    rows_quarantined  BIGINT    NOT NULL,
    ingested_at       TIMESTAMP NOT NULL
);
