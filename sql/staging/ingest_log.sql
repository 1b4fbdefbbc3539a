-- One row per ingested file: provenance and the reconciliation rows_in = stored + quarantined.
-- `warnings`: notes about the file as a whole, not about a row (a duplicate `# TYPE` line,
-- Prometheus API warnings, which pilot.yaml option to set); a note is given once per source.
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
    ingested_at       TIMESTAMP NOT NULL,
    warnings          VARCHAR[]
);
-- warehouses made before `warnings` existed
ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS warnings VARCHAR[];
