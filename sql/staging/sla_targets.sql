-- Latency targets per priority class from pilot.yaml `sla`.
CREATE TABLE IF NOT EXISTS sla_targets (
    pilot     VARCHAR NOT NULL,
    -- the type of requests.priority: joins to the attempts compare one-byte codes, not text
    priority  ENUM('P0', 'P1', 'P2', 'P3') NOT NULL,
    e2e_ms    DOUBLE  NOT NULL,
    ttft_ms   DOUBLE
);
