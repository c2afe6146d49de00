// Package control is the HTTP control plane the scheduler binary hosts: it
// connects Notion workspaces through OAuth, lets operators manage
// connections through a JSON API and asynqmon, turns Notion webhooks into
// syncs, and tells the embedding product when a connection needs its user.
//
// It owns the HTTP surface only. Connections and their tokens belong to
// package tokens (Store, Source), the token endpoints to tokens/notionauth,
// and the queue to the Enqueuer (package jobs). Server has no listener of
// its own: serve Handler with an http.Server (with read/write timeouts).
//
// # Routes
//
// Public:
//
//	GET  /healthz                  200 while the process runs
//	GET  /readyz                   200 if Redis answers PING within 1s, else 503
//	GET  /oauth/start              starts an authorization (see below)
//	GET  /oauth/callback           completes it and shows a plain HTML page
//	POST /webhooks/notion          Notion webhooks, when configured (see below)
//
// No /metrics: the server faces browsers, and a Prometheus endpoint answers
// anyone; the process serves metrics on a listener of its own.
//
// Admin (Authorization: Bearer <AdminToken>, or HTTP Basic with the admin
// token as password; 401 with WWW-Authenticate otherwise; cross-origin
// browser requests with unsafe methods are refused with 403):
//
//	GET  /api/v1/connections?after=&limit=        page through connections (oldest first)
//	GET  /api/v1/connections/{id}                 one connection
//	GET  /api/v1/connections/{id}/events          its token timeline, newest first
//	POST /api/v1/connections/{id}/pause           active -> paused
//	POST /api/v1/connections/{id}/resume          paused -> active
//	POST /api/v1/connections/{id}/sync            enqueue a sweep (active only)
//	POST /api/v1/connections/{id}/refresh         enqueue a forced refresh; ?wait=1 refreshes now
//	POST /api/v1/connections/{id}/disconnect      revoke at Notion (best effort), delete secrets
//	POST /api/v1/connections/{id}/reconnect-link  mint a reconnect link; ?ttl= (default LinkTTL)
//	POST /api/v1/connections/import               store a token pair obtained elsewhere
//	POST /api/v1/webhooks/notion/verification-token   reveal (once) Notion's verification token
//	     /admin/asynqmon/                         Config.Asynqmon
//	GET  /admin/                                  the connections console (console.go):
//	GET  /admin/connections?status=&reason=&errors=1&q=&after=   the list
//	GET  /admin/connections/{id}                  a connection
//	POST /admin/connections/{id}/{action}         pause, resume, sync, refresh, disconnect,
//	                                              reconnect-link (form field csrf required; 403 without)
//	GET  /admin/static/                           the console's CSS and JS
//
// Errors are JSON {"error": code, "message": text}: 400 bad input, 401 no or
// wrong credential, 404 unknown connection, 409 wrong status, 502 Notion
// refused, 503 temporary failure (with Retry-After where known).
//
// # OAuth
//
// /oauth/start creates a state (32 random bytes, base64url), stores a hash
// of it in Redis with the flow's details (SET NX PX StateTTL), sets a
// per-flow HttpOnly, SameSite=Lax cookie (Secure and "__Host-" over https)
// that binds the flow to the browser, and redirects to Notion's authorize
// URL with RedirectURI. The callback refuses a missing, malformed, unknown,
// reused (the state is taken with GETDEL), expired or unbound (no cookie)
// state with 400, shows a friendly page on access_denied, exchanges the code
// with exactly RedirectURI (502 on failure, detached from the browser's
// request so a closed tab does not lose a grant), stores the grant with
// Store.Connect and enqueues the first sync.
//
// The connection id is the start's connection_id, or "ws-<workspace_id>". An
// existing connection (any status) is re-authorized and made active, but only
// through a signed reconnect link (link.go: HMAC over purpose, id, expiry
// and the connection's link nonce, which every connect replaces, so a link
// works once) and only with the workspace it already belongs to (409
// otherwise; refused while the workspace is unknown). A bare connection_id
// of an existing connection starts nothing; anonymous callers get one 403
// page for unknown ids, known ids and bad links alike. A new connection with
// a chosen id needs the admin credential. Start and callback must be served
// on the same host (the cookie).
//
// Anonymous load is bounded: start and callback share a per-client token
// bucket (OAuthClientLimit; the client is the TCP peer, or the rightmost
// untrusted X-Forwarded-For entry when the peer is in TrustedProxies; 429),
// outstanding states are capped (MaxOAuthStates; 503), and code exchanges
// are rate-limited process-wide (ExchangeLimit; 503). Failed admin
// authentications are throttled per client (AdminFailureLimit; 429).
//
// Tokens, codes, states and secrets never appear in pages, logs or errors;
// request logs carry the path, never the query.
//
// # Notion webhooks
//
// With NotionWebhookToken, POST /webhooks/notion checks X-Notion-Signature
// (HMAC-SHA256 of the raw body, constant-time) and refuses a missing or bad
// one with 401; bodies are limited to 1 MiB. page.*, database.* and
// data_source.* events enqueue a sync for each active connection of the
// event's workspace ("ws-<workspace_id>" and connections authorized for it
// under other ids), at most once per connection and entity within
// WebhookDedupWindow (SET NX). If the Enqueuer implements EntitySyncer, the
// sync targets the event's entity. Unknown workspaces and inactive
// connections are answered 202 and ignored; Redis or queue failures 503 (so
// Notion retries). The periodic sweep stays the safety net.
//
// A signed event never stops being signed, so replays are bounded: an event
// needs its id and timestamp (400 otherwise); one whose timestamp is older
// than WebhookEventMaxAge (24h, beyond Notion's retries: up to 8 attempts
// over some hours) or more than 5 minutes ahead is refused (400, "stale");
// and each event id is handled once (SET NX of its hash, kept for
// WebhookEventMaxAge + 5m, so every event the age check admits is still
// remembered): a repeat answers 200 "duplicate_event" and enqueues nothing.
// A queue failure forgets the id again, so Notion's retry gets through.
//
// Notion's one-time verification request ({"verification_token": ".."}) is
// unsigned, since it comes before the token is known. It is accepted only
// while no NotionWebhookToken is configured (set NotionWebhookSetup to
// mount the endpoint then); with a token configured it is refused with 409,
// so nobody can replace a captured token with theirs. It is logged (with a
// fingerprint, never the token) and kept for an hour, sealed with a key
// derived from the admin token, for an operator to reveal through the admin
// API and paste into Notion and into the configuration.
//
// # Outbound notifications
//
// NotifyNeedsReauth POSTs {event: "connection.needs_reauth", connection_id,
// reason, detail, reconnect_url, reconnect_expires_at (or reconnect_refused),
// time, id} to ReauthWebhookConfig.URL with
// X-Notionsync-Signature: sha256=<hex HMAC of the body> (see
// VerifySignature), retrying transient failures with backoff, in goroutines
// the Server tracks.
//
// # Redis keys
//
// Under KeyPrefix ("notionsync:" by default):
//
//	{oauth}:oauth:state:<hash>                   a started flow, until StateTTL
//	{oauth}:oauth:states                         zset of outstanding state keys by expiry (the cap)
//	{<tag>}:webhook:notion:dedup:<conn>:<entity> webhook de-duplication, WebhookDedupWindow
//	webhook:notion:event:<hash of id>            an event id handled, WebhookEventMaxAge + 5m
//	webhook:notion:verification                  the sealed verification token, 1h
//	workspace:<workspace_id>:connections         set of connection ids authorized for a workspace
//
// Redis Cluster: the two OAuth keys, written by one script and deleted by
// one MULTI, share the hash tag {oauth}, so they are in one slot; a
// de-duplication key is per connection and carries the connection's shard
// tag (keyspace.Conn); the other keys are used one at a time. The OAuth
// states are short-lived (StateTTL), so renaming them from the former
// oauth:state:* costs at most the flows in progress during an upgrade.
//
// # Concurrency
//
// A Server is safe for concurrent use: Handler serves any number of
// requests, and NotifyNeedsReauth may be called from any goroutine; it never
// blocks on the network. Shutdown (or Close) stops new notifications and
// waits for those in flight; when its context ends first it abandons them.
// Hooks are called synchronously and must be fast.
package control
