-- Public/operator arrival traces (Azure LLM inference, Mooncake, BurstGPT): one row per
-- arrival, for workload characterization and what-if replay. Not request attempts: a trace
-- has no status, pool or latency, so it never enters `requests`.
CREATE TABLE IF NOT EXISTS arrivals (
    pilot          VARCHAR   NOT NULL,
    ts             TIMESTAMP NOT NULL,
    input_tokens   INTEGER,
    output_tokens  INTEGER,
    source         VARCHAR   NOT NULL
);
