-- Every refused input row: where it was (file + line/record), which field, why.
-- `value` holds the offending value only when it is neither an identifier nor a payload.
CREATE TABLE IF NOT EXISTS quarantine (
    pilot        VARCHAR   NOT NULL,
    source_index INTEGER   NOT NULL,
    source_kind  VARCHAR   NOT NULL,
    target_table VARCHAR,
    file         VARCHAR   NOT NULL,
    line         BIGINT,
    field        VARCHAR,
    reason       VARCHAR   NOT NULL,
    value        VARCHAR
);
