// Package jobs holds notionsync's asynq task types and their handlers: the
// proactive token refresh, the connection sweep, the page sync and the
// database sync.
//
// # What each task does
//
//   - token:refresh (queue "tokens"): tokens.Source.Refresh for one
//     connection; enqueued by the scheduler, one task per token version.
//   - sync:sweep (queue "sync"): one search sorted by last_edited_time,
//     newest first, paged until results are older than the connection's
//     cursor minus the overlap (an unchanged workspace costs one request).
//     Changed pages go on the connection's to-do list; each changed
//     database becomes its own task.
//   - sync:sweeps (queue "sync"): the sweeps of several connections that
//     fell due in one scheduler tick, side by side in one task, their tokens
//     read in one round trip (tokens.Source.Warm); a sweep of a batch hands
//     the pages it finds to a drain task, and one that fails is retried as
//     a sync:sweep of its own.
//   - sync:drain: syncs the pages on one connection's to-do list, a few
//     at a time (Config.PagesInFlight), paced by the connection's rate
//     limit, for up to Config.DrainSlice; then it queues its continuation
//     at the tail of the queue, so connections take turns for worker slots.
//     One drain per connection exists at a time: a flag in Redis, taken by
//     whoever adds pages to an empty list and dropped, atomically with a
//     check of the list, when it is empty. The flag names its owner, so a
//     task that asynq runs again after its worker died owns it again. A
//     sweep task that takes the flag drains the list itself, in the slot it
//     holds (no queue round trip); a batch entry or a database task that
//     takes it enqueues a drain.
//   - sync:page: one page (a webhook event, a child page found in a block
//     tree), synced like a drain syncs each of its pages: the page object
//     and, unless the sink already holds that version, its whole block tree
//     (every level paginated, breadth first, each block listed once, bounded
//     by per-object caps; child pages and child databases become their own
//     tasks), written to the sink. Archived
//     pages are stored as deleted; a 404 is stored as unshared.
//   - sync:reconcile (queue "backfill"): a slice of one connection's
//     reconciliation pass, once per the scheduler's ReconcileInterval
//     (default a day, spread by connection): retry of
//     permanent per-object errors, the whole search, a walk through the
//     stored trees' child pages and child databases and every database's
//     rows, then one direct GET for each live object the sink holds that
//     the pass did not see; only archived/in_trash, 404 or 403 answers make
//     tombstones (sink.Sink.Tombstone, with a reason), a transient failure
//     leaves the object alone (unreachable). Resumable from Redis, paced by
//     the rate limiter, yielding after DrainSlice. See reconcile.go.
//   - sync:database: the database object. Under Notion-Version 2025-09-03
//     (the default) it is a container of data sources: each becomes a
//     sync:data_source task. Under 2022-06-28 (configured) the database is
//     queried itself as a data source task queries its rows; a database
//     that version cannot query (several data sources) is recorded as a
//     per-object error; the rest goes on.
//   - sync:data_source: the data source's schema (GET
//     /v1/data_sources/{id}), then a query of rows edited on or after the
//     data source's own cursor minus the overlap (POST
//     /v1/data_sources/{id}/query); changed rows go on the to-do list. A
//     sweep's search lists data sources, not databases: each found syncs
//     its database (container, then all of its data sources), so a second
//     data source that search misses is still read. A data_source.*
//     webhook runs the one data source's task.
//
// Payloads carry ids, never tokens. Sweep, page and database task ids are
// deterministic (object, last_edited_time, the version already stored), and
// completed tasks keep their id for an hour, so an object discovered by
// several sweeps is synced once; a page on the to-do list is one hash field.
//
// # Why a drain per connection
//
// Notion's rate limit is per connection (3 requests/s), so one walk with a
// few pages in flight uses a connection's whole budget. A task per page put dozens of one
// connection's tasks at the head of the queue: they filled the worker slots
// and waited for the same budget while other connections' budgets went
// unused (23% of the aggregate budget used at 10 slots per worker). A drain
// holds one slot per connection with work, and one asynq task covers a
// slice's worth of requests instead of one or two.
//
// # Per-object errors
//
// A page that fails on its own (malformed JSON, an HTML error page, a
// Notion error for that object, the sink refusing it) is recorded in the
// connection's sync state under the page's id, waits with exponential
// backoff (2 s doubling, at most a minute) and stays pending, so the cursor
// does not pass it; the drain goes on with the other pages. A stored
// pagination cursor that Notion refuses (400 validation_error) makes the
// walk, search or query start over once.
//
// What Notion answers is not trusted to end (see walk.go). A page's walk
// lists each block once (a block listed again, say in a cycle, is skipped
// and noted), refuses a cursor it was given before in the same listing,
// and stops at Config.MaxObjectBlocks, MaxObjectRequests or MaxObjectBytes
// with a *CapError naming the cap. Such a page is done with its error: it
// does not hold the cursor (retrying would cost the same for the same
// answer), and the version that stopped is not walked again until the page
// is edited, or until the next reconciliation pass retries it. Notes
// (repeats skipped, blocks below MaxBlockDepth) are kept
// as the error of a page that was stored. A search result or database row
// that is not an object with a Notion id is skipped with an error of its
// own; the others sync and the cursor moves. A search or query that
// repeats a cursor or passes MaxObjectRequests stops early with an error
// and does not move its cursor.
//
// # Cursor discipline
//
// A connection's cursor moves only after everything discovered up to it is
// in the sink: objects handed out are added to a pending set before their
// tasks exist, tasks remove them after the sink write, and one script moves
// the cursor to the newest discovered last_edited_time when the set is
// empty. Because Notion rounds last_edited_time down to the minute, the
// next sweep starts an overlap (default 2 minutes) before the cursor, and a
// page whose stored copy was fetched within its own last-edited minute is
// fetched again: an edit made later in that minute is not lost.
//
// Large block trees and queries checkpoint their pagination in Redis (every
// few requests, and always when a task stops early), so a retry resumes. A
// block walk's checkpoint is a hash that grows by one field per listing
// request, appended, never rewritten.
//
// # Retries and fairness
//
// Every Notion call goes through sync/notionclient, which waits for rate
// budget at most a moment (a drain's next request normally waits a third
// of a second) and otherwise returns a RateLimitError, e.g. during a 429's
// Retry-After. The task then ends and asynq runs it again after the delay
// (RetryDelay); such waits, and transient token trouble, do not count
// against the task's retries (IsFailure), and no worker slot is held
// through a long wait. When a connection needs re-authorization or is
// paused, its tasks stop without any Notion call and are not retried: they
// complete with a result naming the verdict (Verdict), so asynqmon does not
// count them as failures; its to-do list stays, and the first sweep after it
// resumes starts a new drain. Handlers.Stop makes running drains hand their
// connections on at once (pages in flight stop and give back their claims),
// for a quick worker shutdown. A worker that dies without that (SIGKILL,
// OOM) gives nothing back: what its tasks held lives Config.ClaimTTL
// after its last renewal, and Reaper, run by the scheduler every tick,
// hands the work to new tasks (lease.go).
//
// # Concurrency
//
// Handlers are safe for concurrent use by any number of goroutines and
// worker processes sharing one Redis and one sink.
//
// # Redis Cluster
//
// The same code runs on a single Redis, Sentinel or a Redis Cluster. Every
// key of a connection sits under its shard's hash tag
// (internal/keyspace.Conn: "<prefix>{<tag>}:sync:<conn>", ...), and the
// two indexes that span connections, the lease index and the errored
// index, are split into keyspace.Shards shards that each hold the
// connections of one shard (keyspace.Shard), so each Lua script and MULTI
// names keys of one slot (see the key list in state.go). The readers that
// span shards (Reaper.Reap, StateReader.ErroredPage, the worker's lease
// renewal) send one plain pipeline of per-shard commands, which a cluster
// client splits per node. SyncKey, DrainKey, PageClaimKey and ErroredKey
// name keys for tools that read them directly.
package jobs
