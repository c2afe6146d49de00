// Package sink is where sync jobs hand the Notion objects they fetched: a
// Sink stores pages (with their full block tree) and databases, as the raw
// JSON Notion returned plus extracted metadata, so nothing is lost even for
// block types the Notion client cannot decode.
//
// Open picks a backend by URL: a directory (file://path, or a plain path) for
// package filesink, postgres:// or postgresql:// for package pgsink. The data
// types (Page, Block, Database, State, Version) and errors are defined in
// package record and re-exported here, so callers import only sink.
//
// # What every Sink guarantees
//
//   - Raw JSON preserved: the page/database object and every block object
//     are stored as Notion returned them (pgsink: as jsonb, i.e. the same
//     JSON value, with NUL characters replaced, see package pgsink).
//   - Idempotent: writing the same Page twice leaves the same state.
//   - Monotonic: a version older than the stored one is never written
//     (PutPage returns written=false). The order is (last_edited_time,
//     synced_at); because Notion rounds last_edited_time down to the minute,
//     equal last_edited_time is decided by the later fetch. The full rule,
//     including tombstones, is in the documentation of package record.
//   - Tombstones: archived/in_trash pages and DeletePage keep the object,
//     marked deleted; a stale copy fetched before the deletion cannot
//     resurrect it.
//   - Unshared: MarkUnshared records a 404 (the integration lost access)
//     without deleting; a later successful fetch clears it.
//   - Confirmed tombstones: Tombstone marks a stored object of any kind
//     deleted with a reason (State.DeletedReason: trashed, unshared,
//     restricted) once the reconciliation confirmed it with a direct GET;
//     its version is the stored edit time observed then, so an object
//     shared again comes back with its next fetch. List enumerates what a
//     connection holds, for that comparison.
//
// # Concurrency
//
// Every method of every Sink is safe for concurrent use by many goroutines,
// and by many processes writing the same store (filesink through per-object
// flock, pgsink through single-statement upserts), including concurrent
// writers of the same object: the newest version wins whatever the order of
// arrival. Close waits for calls in progress; later calls fail with
// ErrClosed.
package sink
