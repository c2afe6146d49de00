// Package notionclient is the one way sync jobs talk to Notion: an
// http.RoundTripper per connection that authenticates, rate-limits (shared
// by every worker process through Redis), retries what is safe to retry and
// turns every failure into a typed error; on top of it a
// github.com/jomei/notionapi client (Client.For) and a raw-JSON call
// (Client.Do) for what notionapi cannot express or would lose.
//
// # What a request goes through
//
//  1. Its scheme and host are replaced by Config.BaseURL's (whose path, if
//     any, is prefixed); path and query are kept.
//  2. Admission: one Lua script (one Redis round trip) checks the
//     connection's shared backoff and takes a slot of its GCRA budget
//     (Config.RatePerMinute, Config.Burst). A request that must wait at most
//     what remains of Config.MaxWait reserves its slot and sleeps; a longer
//     wait returns *RateLimitError (Reason ReasonLocalBudget or
//     ReasonBackoff) without sending anything, so the job is rescheduled
//     instead of holding a worker.
//  3. The token comes from TokenSource.Token for every attempt (before
//     admission, so a connection that has none spends no budget) and
//     replaces whatever Authorization header the request had (notionapi's is
//     a placeholder). Notion-Version is set when absent. The body was read
//     once into memory, so every attempt sends it whole.
//  4. 2xx: the response is returned. Anything else is an error, never a
//     response, so the error's type survives notionapi (which would decode
//     the body into its own Error and drop request_id and additional_data):
//     net/http wraps it in *url.Error, and errors.As still finds it.
//     - 401: TokenSource.Invalidate(ctx, connID, failedToken) once, then one
//     more attempt with the token it returns; a second 401 is an *APIError.
//     An Invalidate error (tokens.ErrReauthRequired, tokens.ErrPaused,
//     tokens.ErrTransient...) is returned wrapped.
//     - 429 and 529: the Retry-After (header or additional_data.retry_after;
//     1s if absent) is stored in Redis as the connection's backoff (the
//     longer of the stored one and the new one wins), so every process holds
//     off, not only this one. If it fits in what remains of MaxWait the
//     request waits and tries again, else it returns *RateLimitError (Reason
//     ReasonRetryAfter, wrapping the *APIError). A 429 whose
//     rate_limit_reason is "public_api_request_blocked" is never retried: it
//     is returned as an *APIError.
//     - 409: retried up to Config.MaxRetries times with exponential backoff
//     and jitter, for writes too (Notion rejected the transaction).
//     - 500, 502, 503, 504 and network errors: retried likewise, but only for
//     reads: GET, HEAD, and POST /v1/search, /v1/databases/{id}/query and
//     /v1/data_sources/{id}/query. A write is never repeated after an
//     outcome that may have been applied.
//     - Other statuses: *APIError at once.
//
// # Notion-Version
//
// The default is 2025-09-03 (Config.NotionVersion; the service's
// NOTIONSYNC_NOTION_VERSION). It is the first version that can read every
// database: a database is a container of data sources, each with its own
// schema (GET /v1/data_sources/{id}) and rows (POST
// /v1/data_sources/{id}/query); search lists data sources instead of
// databases (filter value "data_source"); a row's parent is
// {"type":"data_source_id","data_source_id":..,"database_id":..}. Under
// 2022-06-28 a database with a second data source cannot be queried at
// all. It is also the default of the official SDK, @notionhq/client 5.26.0
// (Client.defaultNotionVersion, checked December 2026).
//
// Not 2026-03-11, the only later version that SDK knows: its README lists
// what it changes, and for reads that is "archived" replaced by "in_trash"
// on pages, blocks, databases and data sources, and the "transcription"
// block type renamed "meeting_notes" (the third change, block positioning,
// is a write). 2025-09-03 sends in_trash and archived both, which the sinks
// already read (record: Archived = archived || in_trash), and jobs keeps
// block types it does not know as raw JSON, so 2026-03-11 would gain no
// data and would rename a block type under the Markdown renderer. Moving to
// it is a configuration change once the renderer knows meeting_notes.
//
// 2022-06-28 can still be configured: the jobs recognise a database object
// without "data_sources" and query the database itself, as before, and
// report a database with several data sources as a per-object error.
//
// # What github.com/jomei/notionapi cannot express
//
// notionapi v1.13.3 stays the request-building layer (Client.For) where it
// loses nothing: pages, blocks, users. The sync jobs read through Client.Do
// (raw JSON), because under 2025-09-03 notionapi loses data
// (TestNotionapiLosesTheDataSourceAPI measures each against the fake):
//
//   - Search: its SearchResponse decoder accepts only "page" and "database"
//     results and fails the whole page on the first data source
//     ("unsupported object type data_source").
//   - Databases: notionapi.Database has no data_sources member, so the
//     container decodes without error and without its data source ids;
//     its Properties are empty (the schema moved to the data source).
//   - Parents: notionapi.Parent has no data_source_id, so a row's data
//     source is dropped (Type still says "data_source_id").
//   - Data sources: no type and no endpoint (GET /v1/data_sources/{id},
//     POST /v1/data_sources/{id}/query).
//   - Version: WithVersion sets the header, but the types stay those of
//     2022-06-28; Client.For passes Config.NotionVersion as it is.
//
// # Why a Lua script of our own instead of redis_rate
//
// github.com/go-redis/redis_rate is a well-kept GCRA as a single Lua script,
// and its algorithm is the one used here. Used as a library it costs a
// second round trip per request, because the shared backoff (which must be
// checked before every request) would be a separate GET, and pipelining
// cannot help since redis_rate reads the result of its EVALSHA at once. Its
// Allow also only answers "no, retry in X", so a request willing to wait
// would need another round trip after sleeping and could lose its turn to
// a newcomer. admitScript (limiter.go) is that GCRA plus the backoff check
// plus reservation: one EVALSHA per request on the hot path (the benchmark
// reports redis-cmds/op), waits served in arrival order. Time comes from
// Redis (TIME) in integer microseconds, so worker clocks do not matter.
// Needs Redis 5 or later (scripts replicated by effects). The two keys of a
// connection sit under its shard's hash tag (internal/keyspace), so the
// script names one Redis Cluster slot.
//
// Redis keys, under keyspace.Conn(Config.KeyPrefix, connID), e.g.
// "notionsync:{s7.113}:": "notion:<connID>:gcra" (the connection's
// theoretical arrival time) and "notion:<connID>:backoff" (present while
// the connection backs off; its TTL is the backoff). When
// Redis fails, requests fail: sending without a budget could get the
// integration blocked.
//
// # Errors
//
// *APIError carries Notion's status, code, message, request id, Retry-After
// and additional_data; a body that is not JSON (Cloudflare's HTML 403) gives
// Code CodeNonJSON and a message with the status and size, not the body.
// *RateLimitError matches ErrRateLimited. IsNotFound, IsUnauthorized and
// RetryAfter answer the questions jobs ask. Tokens never appear in errors or
// logs: requests are logged at debug (method, path, status, duration,
// request id, connection id), 429s at warn.
//
// # Concurrency
//
// Client, the RoundTrippers from Client.Transport and the notionapi clients
// from Client.For are safe for concurrent use and hold no per-connection
// state in memory. Config.Observer and the TokenSource are called
// concurrently from request goroutines.
package notionclient
