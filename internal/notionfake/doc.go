// Package notionfake is an in-process fake of Notion's API for tests, served
// over httptest. It behaves as the project's Notion notes (notion-facts.md)
// describe Notion, and where Notion's behaviour is unknown it lets the test
// choose.
//
// # What it owns
//
// Server holds the state of every workspace and connection behind one mutex.
// The OAuth part (files oauth*.go) serves:
//
//   - POST /v1/oauth/token: authorization_code and refresh_token grants, with
//     client Basic authentication and a required Notion-Version header.
//     Refresh rotates: each success issues a new access token (ntn_...) and a
//     new refresh token (nrt_...) and kills the spent one (reuse answers 400
//     invalid_grant). Codes are single-use and bound to their redirect_uri.
//   - GET /v1/oauth/authorize: auto-approves and redirects with code and state.
//   - POST /v1/oauth/revoke and POST /v1/oauth/introspect.
//
// Error bodies come in OAuth shape or Notion shape (Options.ErrorStyle,
// SetErrorStyle). Test-control methods seed connections (SeedConnection),
// issue codes (IssueCode), revoke (Revoke), count (Stats, RefreshGrantsFor)
// and inject faults into the next token requests: FailNext (5xx, nothing
// rotated), RateLimitNext (429 with Retry-After, nothing rotated),
// RotateThenDropNext (rotation committed, connection closed without a
// response), SetLatency (response delayed after the rotation) and
// BlockRefresh/BlockRefreshWith (requests parked at a Gate, before or after
// the rotation, until the test releases or aborts them).
//
// # Extending: the data API
//
// Other files of this package (data*.go) add Notion's data endpoints to the
// same Server. They register their routes in registerRoutes (fake.go) or,
// from a test, on Mux(); authenticate requests with Authenticate (or
// CheckAccessToken, whose ErrUnknownToken, ErrTokenExpired and
// ErrTokenRevoked all mean 401); write errors with writeNotionError; and keep
// their per-Server state under s.mu through extLocked, keyed by a private type.
//
// # Bad input
//
// The data API can misbehave the way Notion (and Cloudflare in front of it)
// does, so that clients can be tested against it: queued one-shot faults
// for the next requests (MalformedNext, HTMLErrorNext, FailDataNext, ...);
// poisoned objects, whose page GET or block-children GET answer truncated
// JSON, an HTML 403 or a 500 on every request until cleared (Poison,
// PoisonPages, PoisonRandomPages, ClearPoison); hostile poisons, whose
// answers are valid but not to be trusted: block cycles, listings that
// never end, huge bodies, wrong JSON types, search results and database
// rows whose id is not a Notion id (data_hostile.go, PoisonSearchResults);
// refused cursors, both
// unknown or malformed ones and, on demand, valid ones (InvalidCursorNext);
// huge pages with thousands of blocks and 100 KB of rich text
// (SeedSpec.HugePages); and block types clients do not know
// (SeedSpec.UnknownBlocks).
//
// # As imperfect as Notion
//
// Notion's documented imperfections, each off by default so that a client
// can be shown failing on each (data_sources.go, data_imperfect.go):
//
//   - Data sources: a request with Notion-Version 2025-09-03 or later gets
//     the data-source API (databases as containers with data_sources,
//     GET /v1/data_sources/{id}, POST /v1/data_sources/{id}/query, search
//     filter "data_source", rows' parent data_source_id); 2022-06-28 keeps
//     today's shapes. Databases with two data sources
//     (AddMultiSourceDatabase, SeedSpec.MultiSourceDatabases,
//     AddRowToDataSource) cannot be queried under 2022-06-28.
//   - SetImperfections(Imperfections{...}): MultiSourceReadFails (the 2022
//     database GET fails too), TruncateReferences (relation, people,
//     rich_text and title values cut at 25 with has_more; the whole list
//     from GET /v1/pages/{id}/properties/{property_id}; rows with 30
//     references from SeedSpec.ManyReferenceRows), ResultLimit (queries
//     stop at 10,000 or ResultLimitSize rows with request_status
//     incomplete), SearchOmitShare (a deterministic share of pages never
//     in search; of data sources too with SearchOmitsDataSources) and SearchLag (search shows edits and new pages late, on
//     the fake's clock).
//   - Late sharing, unsharing and trash: SharePage after UnsharePage keeps
//     the old last_edited_time; unshared objects answer 404; ArchivePage
//     trashes (in_trash true on GET, gone from search and queries).
//   - Expired cursors: Imperfections.CursorExpiry refuses a start_cursor
//     issued that long ago on the fake's clock (400 validation_error).
//   - Users: GET /v1/users and /v1/users/{id} (data_users.go); AddUser and
//     SeedSpec.Users add people and bots that pages reference.
//   - Every type: SeedSpec.EveryType seeds one block of every block type
//     and one value of every property value type the SDK lists
//     (data_everytype.go).
//   - Permanent per-object errors: poison kinds PoisonRestricted (403
//     restricted_resource), PoisonNotFound (404 object_not_found) and
//     PoisonValidation (400 validation_error) for a page or database GET, a
//     children listing or a query.
//
// # Ground truth
//
// GroundTruth (data_truth.go) lists every page, row, database and data
// source of a workspace from the fake's state, not through its imperfect
// API: last_edited_time, in_trash, unshared, full property values, whether
// search omits it and which poisons break it. internal/fidelity compares a
// sink with it; the sandbox serves it at GET /_sandbox/ground-truth.
//
// # Contract
//
// contract_test.go validates the fake against Notion's official API
// description, so that the fake cannot drift from Notion. make deps
// (scripts/notion-contract.sh) fetches it, pinned by version and integrity
// hash (scripts/notion-contract/package-lock.json), into .cache/notion-contract
// (or $NOTION_CONTRACT_DIR):
//
//   - the OpenAPI file of @notionhq/notion-mcp-server 2.5.2 (Notion API
//     2025-09-03). It lists paths, methods, query parameters and request
//     bodies, but types most responses only as "object": the test checks
//     each request against it (path and method exist, query parameters are
//     declared, the body matches) and the answer against the response
//     schema where there is one (errors: object, status, code, message).
//   - JSON Schema generated from the response types of @notionhq/client
//     (build/src/api-endpoints.d.ts) by ts-json-schema-generator: 4.0.2, the
//     last release for Notion-Version 2022-06-28, and 5.26.0 for 2025-09-03.
//     Every 200 answer is validated against its type, objects closed
//     (additionalProperties false): a field the fake invents fails as much
//     as one it forgets. withoutExtras lists the fields Notion sends that the
//     SDK omits (request_id, has_more on property values, request_status on
//     2022 queries).
//
// contractCases is the table of requests, one line per request, each under
// both versions with every imperfection on; TestContractCoversEveryRoute
// reads the routes registered in this package's source (Handle and
// HandleFunc on "METHOD /v1/...") and fails for one without a line (or an
// entry in contractExempt saying why). Without the files the test is
// skipped, and fails under CI=true.
//
// # Concurrency
//
// Every exported method of Server and Gate is safe for concurrent use, also
// while requests are served. Handlers never hold the mutex while waiting
// (latency, gates), so a parked request does not stall others. Close (called
// by NewTest's cleanup) aborts parked and delayed requests, so the httptest
// server can shut down.
//
// Tokens are generated with crypto/rand; they exist only in tests.
package notionfake
