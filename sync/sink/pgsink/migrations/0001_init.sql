-- Pages (database rows included) with their full block tree.
-- Columns version_edited_at/version_observed_at hold the Version of the last
-- change applied (see package record): upserts compare against them.
CREATE TABLE pages (
    connection_id       text        NOT NULL,
    page_id             uuid        NOT NULL,
    parent_type         text,
    parent_id           text,
    database_id         uuid,
    title               text        NOT NULL DEFAULT '',
    last_edited_time    timestamptz,          -- of the stored content; NULL for a bare tombstone
    properties          jsonb,                -- object->'properties'
    object              jsonb,                -- the page object as Notion returned it
    blocks              jsonb,                -- the block tree (blocks with nested "children")
    synced_at           timestamptz,          -- when the stored content was fetched
    deleted_at          timestamptz,          -- tombstone
    unshared_at         timestamptz,          -- Notion answered 404
    version_edited_at   timestamptz NOT NULL,
    version_observed_at timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, page_id)
);

CREATE INDEX pages_database_idx ON pages (connection_id, database_id) WHERE database_id IS NOT NULL;
CREATE INDEX pages_last_edited_idx ON pages (connection_id, last_edited_time);

-- Databases: schema (object->'properties') and object; their rows are pages.
CREATE TABLE databases (
    connection_id       text        NOT NULL,
    database_id         uuid        NOT NULL,
    parent_type         text,
    parent_id           text,
    title               text        NOT NULL DEFAULT '',
    last_edited_time    timestamptz,
    schema              jsonb,
    object              jsonb,
    synced_at           timestamptz,
    deleted_at          timestamptz,
    unshared_at         timestamptz,
    version_edited_at   timestamptz NOT NULL,
    version_observed_at timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, database_id)
);
