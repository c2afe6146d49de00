-- Why a tombstone is one (issue 11, deletions mirrored): 'trashed' (Notion
-- reports archived or in_trash), 'unshared' (a direct GET answered 404),
-- 'restricted' (a direct GET answered 403). NULL for live rows, and for
-- tombstones written before reasons existed or by DeletePage.
-- (Numbered 0003: 0002 is left to the data source migration being written
-- in parallel; versions need not be contiguous.)
ALTER TABLE pages ADD COLUMN deleted_reason text;
ALTER TABLE databases ADD COLUMN deleted_reason text;
