-- Canonical table: scheduler jobs sharing the GPUs (batch, training, serving replicas).
-- `pool` is an extension of the contract: the GPU pool the job ran in, when known.
CREATE TABLE IF NOT EXISTS jobs (
    pilot        VARCHAR   NOT NULL,
    job_id       VARCHAR   NOT NULL,
    kind         VARCHAR   NOT NULL,
    queue        VARCHAR,
    priority     DOUBLE,
    submit_ts    TIMESTAMP,
    eligible_ts  TIMESTAMP,
    start_ts     TIMESTAMP,
    end_ts       TIMESTAMP,
    node         VARCHAR,
    pool         VARCHAR,
    gpus         INTEGER,
    gpu_ids      VARCHAR[],
    state        VARCHAR   NOT NULL
);
