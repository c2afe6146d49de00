-- Garbage collection of orphaned files (CollectFiles): when a pass first
-- found the file referenced by no live object. NULL: referenced (or not
-- looked at yet). A put of the same content clears it.
ALTER TABLE files ADD COLUMN unreferenced_since timestamptz;
CREATE INDEX files_unreferenced_idx ON files (connection_id, unreferenced_since) WHERE unreferenced_since IS NOT NULL;
