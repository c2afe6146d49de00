// Package sandbox is the local Notion sandbox behind cmd/notion-sandbox: the
// fake the tests use (package internal/notionfake), seeded with one
// deterministic workspace, served over HTTP with an admin API to edit content
// and inject faults while a notionsync deployment runs against it.
//
// # What it owns
//
// The sandbox adds no Notion behaviour of its own: OAuth (authorize page that
// auto-approves for the seeded workspace, token endpoint with rotation), the
// data API, the emulated rate limit, latency and every injected fault are
// notionfake's. This package owns:
//
//   - Config and ParseFlags: the command line and its NOTION_SANDBOX_*
//     variables.
//   - Sandbox: builds and seeds the fake from a Config, serves it with the
//     admin API and a debug access log, and shuts down gracefully (Serve).
//   - The fail rate (-fail-rate): each data request queues, with probability
//     p, one 503 fault in the fake (FailDataNext) before it is served. The
//     fake serves queued faults in order to the next authenticated data
//     requests, so under concurrency a 503 may land on a neighbouring
//     request; over a run about p of the data requests are answered 503, and
//     the fake counts them (data stats: injected_faults, status 503).
//   - The admin API under /_sandbox/.
//
// # Admin API
//
// JSON in and out, no authentication: bind the sandbox to a loopback address
// (the default).
//
//	GET  /_sandbox/                    this list, as {"routes": [{"method", "path", "summary"}]}
//	GET  /_sandbox/health              {"status":"ok"}
//	GET  /_sandbox/stats               token and data counters, fault settings (StatsResponse)
//	GET  /_sandbox/workspace           what the seed created: counts and ids (WorkspaceResponse)
//	GET  /_sandbox/expected            per live page, rows included: its block count (ExpectedResponse);
//	                                   ?workspace=ID for another workspace than the seeded one
//	GET  /_sandbox/ground-truth        every page, row, database and data source with last_edited_time,
//	                                   in_trash, unshared and full property values (notionfake.GroundTruth);
//	                                   ?workspace=ID; internal/fidelity compares a sink with it
//	POST /_sandbox/pages               {"title", "text"?, "parent_id"? | "database_id"?} add a page (201 {"id"})
//	POST /_sandbox/pages/{id}/touch    {"text"?} edit the page's first paragraph, as a user typing
//	POST /_sandbox/pages/{id}/archive  move the page to the trash
//	POST /_sandbox/revoke?workspace=   revoke the connection (default: the seeded workspace)
//	POST /_sandbox/workspaces          seed many small workspaces, one auth code each (WorkspacesRequest);
//	                                   huge_pages adds pages of 2,500 blocks and 100 KB of text
//	POST /_sandbox/workspaces/{id}/code  {"redirect_uri"} a new auth code for workspace id (re-authorizes it)
//	GET  /_sandbox/faults              fault settings and pending faults (FaultState)
//	POST /_sandbox/faults              inject faults; answers the new FaultState
//	GET  /_sandbox/poison              the poisoned objects and how many requests each answered
//	POST /_sandbox/poison              poison objects (PoisonRequest); answers them (PoisonResponse)
//	DELETE /_sandbox/poison            lift every poison, or one (?workspace=&id=&target=)
//	GET  /_sandbox/imperfections       Notion's imperfections in force (Imperfections; all off by default)
//	POST /_sandbox/imperfections       change some (ImperfectionsRequest): multi_source_read_fails,
//	                                   truncate_references, result_limit, result_limit_size,
//	                                   search_omit_share, search_omits_data_sources, search_lag ("5m"), cursor_expiry ("1m");
//	                                   answers the new state
//	POST /_sandbox/pages/{id}/unshare  stop sharing a page or database: 404 for it and its content
//	POST /_sandbox/pages/{id}/share    share it again, last_edited_time untouched (late sharing)
//	POST /_sandbox/databases           {"title", "parent_id"?, "data_sources"?: 1|2} add a database
//	                                   (201 {"id", "data_source_ids"}); POST /_sandbox/pages takes
//	                                   "data_source_id" to add a row to one data source
//
// A faults body (every field optional, at least one besides target):
//
//	{"fail_next": N, "status": 503}          next N requests answer status (default 503)
//	{"rate_limit_next": N, "retry_after": "2s"}  next N requests answer 429 with Retry-After
//	{"unauthorized_next": N}                 next N data requests answer 401 (token stays valid)
//	{"malformed_next": N}                    next N data requests answer 200 with truncated JSON
//	{"html_error_next": N}                   next N data requests answer 403 with an HTML page
//	{"invalid_cursor_next": N}               next N data requests carrying a start_cursor answer
//	                                         400 validation_error (the cursor is refused)
//	{"rotate_then_drop_next": N}             next N refreshes rotate, then drop the connection
//	{"latency": "200ms"}                     delay every later response ("0s" removes it)
//	{"fail_rate": 0.05}                      fraction of data requests answered 503
//	{"rate_limit": 180}                      data requests per minute per connection (0: off)
//	"target": "data" | "token"               where fail_next, rate_limit_next and latency
//	                                         apply (default: data; latency: both)
//
// A poisoned object fails every request of its target until the poison is
// lifted: "page" is GET /v1/pages/{id}, "children" GET
// /v1/blocks/{id}/children (of a page or a block, every page of the
// listing); kind "malformed" answers 200 with truncated JSON, "html" the
// Cloudflare 403 page, "server_error" 500 internal_server_error; the
// permanent kinds "restricted_resource" (403), "object_not_found" (404) and
// "validation_error" (400) answer Notion's error object, for "page",
// "children", "database" (GET /v1/databases/{id}) and "query" (ids are
// databases). A poison
// request names ids, or a number of pages: the first ones of a workspace,
// or pages drawn at random (from a seed) across workspaces; the answer
// lists the objects poisoned, each with the page whose sync it breaks:
//
//	{"target": "page", "kind": "malformed", "ids": ["<id>"], "workspace": "fleet-3"}
//	{"target": "children", "kind": "html", "pages": 2, "workspace": "fleet-3"}
//	{"target": "page", "kind": "server_error", "pages": 5, "workspaces": ["fleet-1", "fleet-2"], "seed": 9}
//
// Hostile kinds answer 200 with content a client must not trust (see
// notionfake's data_hostile.go): for "children" "cycle_self" and
// "cycle_ancestor" (block trees that list themselves or an ancestor),
// "endless_same" and "endless_new" (has_more for ever, with the same or new
// cursors), "huge" (megabytes per answer), "wrong_types" (list fields of
// the wrong JSON type); "bad_id" for target "search" (a workspace's search,
// no ids) and "query" (a database's query, by database id) adds results
// whose id is not a Notion id:
//
//	{"target": "children", "kind": "endless_new", "pages": 1, "workspace": "fleet-3"}
//	{"target": "search", "kind": "bad_id", "workspace": "fleet-3"}
//
// The seed flags -multi-source-databases and -many-reference-rows add
// databases with a second data source (Notion-Version 2025-09-03 reads them;
// 2022-06-28 cannot query them) and rows with 30 relation, people and
// rich_text items; GET /_sandbox/workspace lists data_source_ids and
// rows_by_data_source.
//
// Errors are {"error": code, "message": text} with 400 (bad input) or 404
// (unknown page or admin route).
//
// Tokens never leave the fake through this package: not in logs, not in the
// admin API. The workspaces routes hand out authorization codes, as the
// authorize page does: tokens come only from exchanging them at the token
// endpoint. The client secret is printed at start only when it is
// notionfake's public default.
//
// # Concurrency
//
// Every exported method of Sandbox is safe for concurrent use, also while
// Serve runs. Serve may be called once.
package sandbox
