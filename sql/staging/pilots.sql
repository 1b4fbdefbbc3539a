-- The validated pilot.yaml, flattened: one row per pilot (config as JSON) and per phase.
CREATE TABLE IF NOT EXISTS pilots (
    pilot        VARCHAR   NOT NULL,
    title        VARCHAR,
    timezone     VARCHAR,
    config_json  VARCHAR   NOT NULL,
    loaded_at    TIMESTAMP NOT NULL
);
