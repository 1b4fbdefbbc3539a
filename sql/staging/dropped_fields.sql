-- Observer-only: payload-like and unmapped fields dropped at the adapter, counted per source
-- file and field name (values are never kept). Feeds the report's data-security appendix.
CREATE TABLE IF NOT EXISTS dropped_fields (
    pilot         VARCHAR NOT NULL,
    source_index  INTEGER NOT NULL,
    file          VARCHAR NOT NULL,
    field         VARCHAR NOT NULL,
    count         BIGINT  NOT NULL
);
