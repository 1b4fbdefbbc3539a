-- Latency targets per priority class from pilot.yaml `sla`.
CREATE TABLE IF NOT EXISTS sla_targets (
    pilot     VARCHAR NOT NULL,
    priority  VARCHAR NOT NULL,
    e2e_ms    DOUBLE  NOT NULL,
    ttft_ms   DOUBLE
);
