-- The treatment-segment rule from pilot.yaml `scope`: kind is all | pools | priorities | share.
CREATE TABLE IF NOT EXISTS pilot_scope (
    pilot       VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,
    pools       VARCHAR[],
    priorities  VARCHAR[],
    share       DOUBLE
);
