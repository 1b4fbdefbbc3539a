-- Every METRICS.md threshold in force for a pilot: the defaults, overridden by pilot.yaml.
CREATE TABLE IF NOT EXISTS thresholds (
    pilot  VARCHAR NOT NULL,
    name   VARCHAR NOT NULL,
    value  DOUBLE  NOT NULL
);
