// Package filesink stores Notion pages and databases as files, one JSON
// document (and one Markdown rendering) per object:
//
//	<root>/<connection_id>/pages/<page_id>.json       page object + "blocks" + "_notionsync"
//	<root>/<connection_id>/pages/<page_id>.md         Markdown rendering (live pages only)
//	<root>/<connection_id>/databases/<database_id>.json database object + "_notionsync"
//	<root>/<connection_id>/.locks/<kind>-<id>.lock    per-object lock files (never removed)
//
// A page document is the page object exactly as Notion returned it (same
// members, same order, same values; indentation added), preceded by the
// member "_notionsync" (sync metadata: synced_at, last_edited_time, deleted,
// unshared, the applied version, ...) and followed by "blocks", the full block
// tree, each block being Notion's block object plus a "children" array. Ids
// used as file names are validated (page and database ids must be UUIDs and
// are stored lowercase and dashed; connection ids [A-Za-z0-9_-]), so no
// input can escape the root.
//
// Versioning follows package record: a write whose (last_edited_time,
// synced_at) is older than the stored one is rejected (PutPage returns
// written=false); deletions are tombstones (the JSON document stays, marked
// deleted, its Markdown file is removed); MarkUnshared marks the document.
// Tombstone (a deletion a direct GET confirmed) does the same and records
// "deleted_reason" in "_notionsync": trashed, unshared or restricted (an
// archived page written by PutPage says trashed).
//
// # Atomicity and durability
//
// Every file is written to a temporary file in the same directory
// (".<name>.tmp-*"), fsynced, renamed over the old one, and the directory is
// fsynced: a reader sees the old or the new document, never a partial one.
// The Markdown file is replaced before the JSON document, which is the
// commit point; after a crash between the two, re-applying the same write
// (accepted: equal versions win) repairs the pair. Temporary files of a
// process killed mid-write are left behind and are safe to delete.
//
// # Concurrency
//
// All methods of Sink are safe for concurrent use by any number of
// goroutines, and by any number of processes sharing one root on one
// machine: each read-compare-write of an object runs under an in-process
// per-object lock plus flock(2) on the object's lock file, so the
// monotonicity rule holds across processes. Locks of different objects are
// independent. Waiting for another goroutine honours the context; waiting
// for another process (a single file write) does not. flock is advisory and
// unreliable on some network file systems: use a local file system.
// Readers (Stat, GetPage, GetDatabase) take no lock. Close waits for calls
// in progress and makes later calls fail with record.ErrClosed.
package filesink
