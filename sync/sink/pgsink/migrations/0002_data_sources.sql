-- Data sources (Notion-Version 2025-09-03 and later): a database is a
-- container of data sources; each data source has its own schema and rows.
-- Columns as in databases, plus database_id (the container).
CREATE TABLE data_sources (
    connection_id       text        NOT NULL,
    data_source_id      uuid        NOT NULL,
    database_id         uuid,                 -- NULL for a bare tombstone
    title               text        NOT NULL DEFAULT '',
    last_edited_time    timestamptz,
    schema              jsonb,                -- object->'properties'
    object              jsonb,
    synced_at           timestamptz,
    deleted_at          timestamptz,
    unshared_at         timestamptz,
    version_edited_at   timestamptz NOT NULL,
    version_observed_at timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, data_source_id)
);

CREATE INDEX data_sources_database_idx ON data_sources (connection_id, database_id) WHERE database_id IS NOT NULL;

-- The data source a row belongs to. Rows stored before this migration
-- keep NULL until they are synced again, or until the sole data source of
-- their database is stored (pgsink.PutDataSource with SoleSource): no row
-- is rewritten or dropped here.
ALTER TABLE pages ADD COLUMN data_source_id uuid;

CREATE INDEX pages_data_source_idx ON pages (connection_id, data_source_id) WHERE data_source_id IS NOT NULL;
