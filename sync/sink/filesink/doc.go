// Package filesink stores Notion pages, databases and data sources as
// files, one JSON document (and one Markdown rendering) per object:
//
//	<root>/<connection_id>/pages/<page_id>.json               page object + "blocks" + "_notionsync"
//	<root>/<connection_id>/pages/<page_id>.md                 Markdown rendering (live pages only)
//	<root>/<connection_id>/databases/<database_id>.json       database object + "_notionsync"
//	<root>/<connection_id>/databases/<database_id>.md         title, description, schema, rows (live databases)
//	<root>/<connection_id>/data_sources/<data_source_id>.json data source object + "_notionsync"
//	<root>/<connection_id>/users.json                         the connection's users (PutUsers; users.go)
//	<root>/<connection_id>/data_sources/<data_source_id>.md   its live rows as a Markdown table (live data sources)
//	<root>/<connection_id>/data_sources/<data_source_id>.csv  the same rows as CSV (RFC 4180, header = property names)
//	<root>/<connection_id>/index.md                           the page tree by title
//	<root>/<connection_id>/manifest.json                      id -> kind, title, path, parent, last_edited_time, tombstoned
//	<root>/<connection_id>/.locks/<kind>-<id>.lock            per-object lock files (never removed)
//	<root>/<connection_id>/.locks/index.lock                  the connection's index lock
//
// Under Notion-Version 2025-09-03 a database is a container: its document
// is the database object as Notion returned it, whose "data_sources" member
// lists its data sources ({id, name}); each data source's document holds
// its schema ("properties") and its metadata names the database
// (database_id, parent_type "database_id"). A row's metadata carries
// database_id and data_source_id; rows stored by an older release (Notion-
// Version 2022-06-28) have no data_source_id until they are synced again.
// A data source's Markdown is a table of its live rows (the title links
// the row's page, then one column per property in schema order, values as
// on the row's page), its CSV the same rows in plain text; the database's
// Markdown links both. They are written by the index flush (tables.go);
// a tombstoned row leaves them, a deleted or archived data source loses
// them (its deletion is a tombstone as for databases).
//
// Paths are by id, never by title: a rename or a move in Notion changes
// one document, never a path, so links between files, a reader's
// bookmarks and an rsync of the folder survive it, and two pages with one
// title cannot collide. To find a page by title, read index.md or query
// manifest.json. Links between Markdown files are relative paths to files
// the folder holds; a link to an object it does not hold (not shared,
// deleted, not yet synced) is plain text. index.go says how the index
// files stay current without rescanning the folder on every write.
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
