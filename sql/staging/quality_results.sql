-- Data-quality gates per pilot (assets/checks.py): one row per expectation on a table, for
-- the report's data-quality appendix. Replaced per (pilot, table_name) on every check run.
CREATE TABLE IF NOT EXISTS quality_results (
    pilot       VARCHAR   NOT NULL,
    table_name  VARCHAR   NOT NULL,
    "check"     VARCHAR   NOT NULL,
    passed      BOOLEAN   NOT NULL,
    observed    VARCHAR,
    expected    VARCHAR,
    checked_at  TIMESTAMP NOT NULL
);
