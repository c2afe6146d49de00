// Package record holds the data types every notionsync sink stores (Page,
// Block, Database), the per-object State a sink keeps, and the ordering rule
// that decides which of two versions of an object wins.
//
// It exists as its own small package so that package sink (which opens a
// backend by URL), the backends (filesink, pgsink) and package markdown can
// all share the types without an import cycle. Callers normally use the
// aliases re-exported by package sink (sink.Page, sink.Block, ...) and never
// import record directly.
//
// # Ordering rule
//
// Every change a sink applies carries a Version: the pair (EditedAt,
// ObservedAt), compared lexicographically.
//
//   - PutPage / PutDatabase: (LastEditedTime, SyncedAt). SyncedAt must be the
//     time the object was fetched from Notion (the start of the fetch).
//   - DeletePage / DeleteDatabase at T: (T truncated to the minute, T). A
//     deletion is an edit made at T, and Notion would report it with a
//     last_edited_time of T rounded down to the minute.
//
// A change is applied when its Version is >= the Version of the last applied
// change, and rejected when it is strictly older. Consequences:
//
//   - A strictly older last_edited_time never overwrites a newer one.
//   - Equal last_edited_time (Notion rounds it down to the minute, so two
//     versions of one minute share it): the later fetch wins; a slower worker
//     holding an earlier fetch of the same minute cannot overwrite it.
//     Re-applying the very same change is accepted (idempotent).
//   - A tombstone at T is overwritten (the page "resurrects") only by a page
//     with last_edited_time after T's minute, or with last_edited_time in T's
//     minute fetched at or after T. A copy fetched before the deletion never
//     resurrects it. If Notion does not move last_edited_time when a page is
//     restored from the trash, a restored page stays a tombstone until its
//     next edit (its last content is kept either way).
//
// Unshared (Notion answered 404: the integration lost access) is not a
// content change and does not take part in the Version order. MarkUnshared at
// U applies when U >= the SyncedAt of the stored content (a 404 older than the
// last successful fetch is stale) and keeps the earliest U. Any later write
// whose SyncedAt is after U clears it, even if its content loses to the stored
// Version: a successful fetch after the 404 proves access is back.
//
// All times are normalized to UTC and truncated to microseconds (the
// precision of PostgreSQL's timestamptz), so every backend compares the same
// values.
package record
