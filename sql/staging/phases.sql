CREATE TABLE IF NOT EXISTS phases (
    pilot     VARCHAR   NOT NULL,
    phase     VARCHAR   NOT NULL,
    start_ts  TIMESTAMP NOT NULL,
    end_ts    TIMESTAMP NOT NULL
);
