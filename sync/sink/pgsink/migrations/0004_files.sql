-- Notion-hosted files (issue 12): the bytes live in a blob store
-- (Options.BlobURL), content-addressed; these tables hold their metadata and
-- which objects reference them.

-- One row per stored file content of a connection.
CREATE TABLE files (
    connection_id text        NOT NULL,
    sha256        text        NOT NULL,              -- hex sha-256 of the bytes
    ext           text        NOT NULL DEFAULT '',   -- ".png" or ''
    size          bigint      NOT NULL,
    content_type  text        NOT NULL DEFAULT '',
    blob_key      text        NOT NULL,              -- key in the blob store
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, sha256, ext)
);

-- Which object references which file, by the reference's stable key (the
-- URL without its signed query). A key names one content; several keys (and
-- objects) may name the same one.
CREATE TABLE file_refs (
    connection_id text        NOT NULL,
    ref_key       text        NOT NULL,
    object_id     uuid        NOT NULL,
    sha256        text        NOT NULL,
    ext           text        NOT NULL DEFAULT '',
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, ref_key, object_id),
    FOREIGN KEY (connection_id, sha256, ext) REFERENCES files (connection_id, sha256, ext)
);

CREATE INDEX file_refs_object_idx ON file_refs (connection_id, object_id);
