-- Whether the what-if could be modeled for a pilot, and on what basis: one row per pilot,
-- replaced with whatif_results / whatif_model_error by the whatif asset. `not_modeled`
-- rows say in `reason` what telemetry (or pilot.yaml `whatif:` block) the what-if needs.
CREATE TABLE IF NOT EXISTS whatif_status (
    pilot          VARCHAR   NOT NULL,
    status         VARCHAR   NOT NULL,  -- modeled | not_modeled
    basis          VARCHAR,             -- per-request replay | arrival trace + declared service model
    reason         VARCHAR,             -- not_modeled: what is needed
    window_start   TIMESTAMP,           -- the replay window (NULL when not modeled)
    window_end     TIMESTAMP,
    service_model  VARCHAR              -- the declared service model in words, or NULL
);
