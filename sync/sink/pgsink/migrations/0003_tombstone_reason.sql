-- Why a tombstone is one (issue 11, deletions mirrored): 'trashed' (Notion
-- reports archived or in_trash), 'unshared' (a direct GET answered 404),
-- 'restricted' (a direct GET answered 403). NULL for live rows, and for
-- tombstones written before reasons existed or by DeletePage.
ALTER TABLE pages ADD COLUMN deleted_reason text;
ALTER TABLE databases ADD COLUMN deleted_reason text;
ALTER TABLE data_sources ADD COLUMN deleted_reason text;
