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
//     Every changed page or database becomes its own task.
//   - sync:page: the page object and, unless the sink already holds that
//     version, its whole block tree (every level paginated, recursion
//     bounded; child pages and child databases become their own tasks),
//     written to the sink. Archived pages are stored as deleted; a 404 is
//     stored as unshared.
//   - sync:database: the schema, then a query of rows edited on or after
//     the database's own cursor minus the overlap; each changed row is a
//     page task. A database the 2022-06-28 API cannot query (several data
//     sources) is recorded as a per-object error; the rest goes on.
//
// Payloads carry ids, never tokens. Task ids are deterministic (object,
// last_edited_time, the version already stored), and completed tasks keep
// their id for an hour, so a page discovered by several sweeps is synced
// once.
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
// few requests, and always when a task stops early), so a retry resumes.
//
// # Retries and fairness
//
// Every Notion call goes through sync/notionclient, which waits for rate
// budget at most a moment and otherwise returns a RateLimitError. The task
// then ends and asynq runs it again after the delay (RetryDelay); such
// waits, and transient token trouble, do not count against the task's
// retries (IsFailure), and a worker slot is never held for a connection's
// budget: other connections' tasks run meanwhile. When a connection needs
// re-authorization or is paused, its tasks stop without any Notion call
// and are not retried (asynq.SkipRetry).
//
// # Concurrency
//
// Handlers are safe for concurrent use by any number of goroutines and
// worker processes sharing one Redis and one sink.
package jobs
