-- Canonical table: every time series in long form; `le` only for histogram buckets.
CREATE TABLE IF NOT EXISTS samples (
    pilot   VARCHAR   NOT NULL,
    ts      TIMESTAMP NOT NULL,
    series  VARCHAR   NOT NULL,
    pool    VARCHAR,
    node    VARCHAR,
    gpu     VARCHAR,
    value   DOUBLE    NOT NULL,
    le      DOUBLE
);
