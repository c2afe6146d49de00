package config

import (
	"errors"
	"os"
	"reflect"
	"time"

	"github.com/caarlos0/env/v11"
)

// Every field below carries its variable in `env` (after the group's
// envPrefix and Prefix), its default in `envDefault` and a one-line
// description in `doc`; Reference is built from those tags. An empty value
// counts as unset: the default applies.

// Redis says how to reach Redis, which holds the task queue, the token store,
// the locks and the scheduler's state. UniversalOptions turns it into go-redis
// options.
type Redis struct {
	// URL is the Redis server: redis://[user:password@]host:port/db, or
	// rediss:// for TLS. go-redis URL options (dial_timeout, pool_size,
	// skip_verify, ...) may follow as query parameters. With Sentinel or a
	// cluster only its scheme, credentials, db and options apply (to the
	// master, or to every cluster node); its host is ignored.
	// Default: redis://localhost:6379/0.
	URL URL `env:"URL" envDefault:"redis://localhost:6379/0" doc:"Redis server: redis://[user:password@]host:port/db, or rediss:// for TLS; go-redis options (dial_timeout, pool_size, skip_verify, ...) may follow as query parameters. With Sentinel or a cluster, only its scheme, credentials, db and options apply (to the master, or to every cluster node)."`

	// SentinelAddrs are the host:port addresses of Redis Sentinels. When set,
	// the master is found through them.
	// Default: unset (no Sentinel).
	SentinelAddrs []string `env:"SENTINEL_ADDRS" envSeparator:"," doc:"Comma-separated host:port list of Redis Sentinels. When set, the master named by NOTIONSYNC_REDIS_SENTINEL_MASTER is found through them."`

	// SentinelMaster is the name the Sentinels monitor the master under.
	// Required with SentinelAddrs.
	// Default: unset.
	SentinelMaster string `env:"SENTINEL_MASTER" doc:"Name the Sentinels monitor the master under. Required with NOTIONSYNC_REDIS_SENTINEL_ADDRS."`

	// SentinelPassword authenticates to the Sentinels themselves; the
	// master's password goes in URL.
	// Default: unset.
	SentinelPassword Secret `env:"SENTINEL_PASSWORD" doc:"Password of the Sentinels themselves (requirepass in sentinel.conf), if they have one. The master's password goes in NOTIONSYNC_REDIS_URL."`

	// ClusterAddrs are seed host:port addresses of a Redis Cluster. When
	// set, the client discovers the cluster's nodes from them and routes
	// each key to the master of its slot; credentials, TLS and options come
	// from URL, whose host is ignored and whose db must be 0.
	// Default: unset (no cluster).
	ClusterAddrs []string `env:"CLUSTER_ADDRS" envSeparator:"," doc:"Comma-separated host:port seeds of a Redis Cluster (a few of its nodes; the rest are discovered). When set, notionsync runs in cluster mode: credentials, TLS (rediss://) and go-redis options still come from NOTIONSYNC_REDIS_URL, whose host is ignored and whose db must be 0. Not with NOTIONSYNC_REDIS_SENTINEL_ADDRS."`

	// KeyPrefix starts every Redis key notionsync itself writes.
	// Default: notionsync:.
	KeyPrefix string `env:"KEY_PREFIX" envDefault:"notionsync:" doc:"Prefix of the Redis keys notionsync itself writes (token store, locks, leader lease). asynq's own keys are not prefixed: give each deployment its own database (its own cluster with NOTIONSYNC_REDIS_CLUSTER_ADDRS: a cluster has database 0 only)."`
}

// Tokens configures the OAuth token lifecycle: encryption at rest, expiry,
// early refresh and the refresh lock.
type Tokens struct {
	// Keys encrypt tokens at rest (AES-256-GCM). The first key encrypts; the
	// others only decrypt, for rotation.
	// Required.
	Keys KeyRing `env:"TOKEN_KEYS,required,notEmpty" doc:"Token encryption keys: comma-separated keyid:base64key pairs, each key 32 bytes (AES-256, e.g. from openssl rand -base64 32). The first key encrypts; the others only decrypt, for rotation. Ids are 1 to 32 characters of A-Z, a-z, 0-9, _ and -."`

	// AccessTokenLifetime is assumed when a token response has no expires_in
	// (Notion sends none).
	// Default: 1h.
	AccessTokenLifetime time.Duration `env:"ACCESS_TOKEN_LIFETIME" envDefault:"1h" doc:"Access-token lifetime assumed when a token response has no expires_in (Notion sends none)."`

	// RefreshMargin: tokens are refreshed this long before they expire.
	// Default: 10m.
	RefreshMargin time.Duration `env:"REFRESH_MARGIN" envDefault:"10m" doc:"Tokens are refreshed this long before they expire. Less than NOTIONSYNC_ACCESS_TOKEN_LIFETIME."`

	// RefreshJitter: up to this much random extra is taken off each token's
	// refresh time, so tokens issued together are not refreshed in lockstep.
	// Default: 2m.
	RefreshJitter time.Duration `env:"REFRESH_JITTER" envDefault:"2m" doc:"Up to this much random extra is taken off each token's refresh time, so tokens issued together are not refreshed in lockstep. 0 turns it off."`

	// CallTimeout is the deadline of one call to the token endpoint.
	// Default: 10s.
	CallTimeout time.Duration `env:"TOKEN_CALL_TIMEOUT" envDefault:"10s" doc:"Deadline of one call to Notion's token endpoint."`

	// RefreshLockTTL is the lifetime of the per-connection refresh lock; it
	// must be more than twice CallTimeout.
	// Default: 30s.
	RefreshLockTTL time.Duration `env:"REFRESH_LOCK_TTL" envDefault:"30s" doc:"Lifetime of the per-connection refresh lock (extended while a refresh runs). More than twice NOTIONSYNC_TOKEN_CALL_TIMEOUT, so the lock outlives the call."`

	// Cache keeps decrypted access tokens in process memory until they are
	// due for refresh.
	// Default: true.
	Cache bool `env:"TOKEN_CACHE" envDefault:"true" doc:"Keep access tokens in process memory until they are due for refresh; false reads Redis on every use."`
}

// Notion configures the Notion public integration and the API client.
type Notion struct {
	// ClientID is the OAuth client id of the Notion public integration.
	// Required.
	ClientID string `env:"CLIENT_ID,required,notEmpty" doc:"OAuth client id of the Notion public integration."`

	// ClientSecret is its OAuth client secret.
	// Required.
	ClientSecret Secret `env:"CLIENT_SECRET,required,notEmpty" doc:"OAuth client secret of the Notion public integration."`

	// RedirectURI is the OAuth redirect URI registered with Notion, sent byte
	// for byte in the authorize URL and the code exchange. Absolute http(s)
	// URL without a fragment.
	// Default: unset.
	RedirectURI string `env:"REDIRECT_URI" doc:"OAuth redirect URI registered with Notion, sent byte for byte in the authorize URL and the code exchange. Absolute http(s) URL without a fragment."`

	// APIURL is the base URL of the Notion API (a trailing slash is removed).
	// Default: https://api.notion.com.
	APIURL string `env:"API_URL" envDefault:"https://api.notion.com" doc:"Base URL of the Notion API; change it only to point at a test server."`

	// Version is the Notion-Version header.
	// Default: 2025-09-03.
	Version string `env:"VERSION" envDefault:"2025-09-03" doc:"Notion-Version header (YYYY-MM-DD). 2025-09-03 (default) reads databases as containers of data sources; 2022-06-28 is still handled, but cannot read a database with several data sources."`

	// RateLimit is the number of requests per minute allowed per connection.
	// Default: 180.
	RateLimit int `env:"RATE_LIMIT" envDefault:"180" doc:"Requests per minute allowed per connection (Notion: 180 on most plans, 600 on Business and Enterprise)."`

	// RateBurst is how many requests a connection may send at once before the
	// per-minute rate applies; at most RateLimit. Notion lets a connection
	// spend its whole minute in a burst, but the per-workspace limit is shared
	// by every connection of the workspace and a 429 can ask for a wait of
	// minutes, so the default keeps a burst to 10 seconds' worth of the
	// default budget.
	// Default: 30.
	RateBurst int `env:"RATE_BURST" envDefault:"30" doc:"Requests a connection may send at once before the per-minute rate applies; at most NOTIONSYNC_NOTION_RATE_LIMIT. Notion allows spending the whole minute in a burst, but the per-workspace limit is shared by all of a workspace's connections and a 429 can ask for a wait of minutes: 30 keeps a burst to 10 seconds of budget."`
}

// Sync configures the sync of Notion content to the sink.
type Sync struct {
	// SinkURL is where synced content goes: file://DIR or postgres://...
	// (postgresql:// too). SinkKind and SinkFilePath read it.
	// Default: file://./data.
	SinkURL URL `env:"SINK_URL" envDefault:"file://./data" doc:"Where synced content goes: file://DIR (file://./data is ./data relative to the working directory, file:///var/lib/notionsync is absolute) or postgres://user:password@host:port/db (postgresql:// too)."`

	// Interval is how often each connection's incremental sync runs.
	// Default: 5m.
	Interval time.Duration `env:"SYNC_INTERVAL" envDefault:"5m" doc:"How often each connection's incremental sync runs."`

	// ReconcileInterval is how often each connection gets a reconciliation
	// pass (jobs/reconcile.go); connections are spread over it. 0 disables
	// the passes.
	// Default: 24h.
	ReconcileInterval time.Duration `env:"RECONCILE_INTERVAL" envDefault:"24h" doc:"How often each connection gets a reconciliation pass: a full comparison of the sink with what Notion shows, which finds pages search missed or shared late, and stores trashed and unshared pages as tombstones after a direct GET confirms them. Connections are spread over the interval by a hash of their id. The pass runs on the backfill queue, after incremental work. 0 disables it (not recommended: deletions are then mirrored only when a webhook names them)."`

	// Overlap: each incremental sync re-reads this much before its cursor,
	// because Notion rounds last_edited_time down to the minute. At least 1m.
	// Default: 2m.
	Overlap time.Duration `env:"SYNC_OVERLAP" envDefault:"2m" doc:"Each incremental sync re-reads this much before its cursor, because Notion rounds last_edited_time down to the minute. At least 1m."`

	// UsersInterval is how often each connection's users (GET /v1/users)
	// are listed into the sink, so that people values and mentions render
	// as names; the incremental sync lists them when this much time has
	// passed. 0 turns user listing off.
	// Default: 1h.
	UsersInterval time.Duration `env:"USERS_INTERVAL" envDefault:"1h" doc:"How often each connection's users (GET /v1/users) are listed into the sink, so that people values, created_by / last_edited_by and user mentions render as names (Markdown; the users table and page_people view in PostgreSQL). The incremental sync lists them once this much time has passed: one request per 100 users. 0 turns user listing off."`

	// MaxBlockDepth is the deepest level of nested blocks fetched below a
	// page; 1 to 100.
	// Default: 20.
	MaxBlockDepth int `env:"MAX_BLOCK_DEPTH" envDefault:"20" doc:"Deepest level of nested blocks fetched below a page; 1 to 100. Deeper blocks are not fetched and the page's status shows a note naming them."`

	// MaxObjectBlocks caps the blocks of one page's walk.
	// Default: 50000.
	MaxObjectBlocks int `env:"MAX_OBJECT_BLOCKS" envDefault:"50000" doc:"Most blocks fetched for one page. A page with more is not stored: it shows as a per-object error naming this cap and is walked again only after it is edited."`

	// MaxObjectRequests caps the listing requests of one page's walk, and
	// of one search or database query.
	// Default: 5000.
	MaxObjectRequests int `env:"MAX_OBJECT_REQUESTS" envDefault:"5000" doc:"Most listing requests for one page's blocks (and, apart, for its property values cut at 25 items), and for one search or database query. A page that needs more is a per-object error naming this cap (walked again after an edit); a search or query stops there, records the error and does not advance its cursor."`

	// MaxObjectBytes caps the bytes of blocks received for one page
	// (64 MiB).
	// Default: 67108864.
	MaxObjectBytes int64 `env:"MAX_OBJECT_BYTES" envDefault:"67108864" doc:"Most bytes of blocks received for one page (64 MiB by default): bounds a worker's memory and the page's checkpoint in Redis. A page with more is a per-object error naming this cap (walked again after an edit)."`

	// PagesInFlight is how many of one connection's pages are synced at
	// once (paced by its rate limit).
	// Default: 3.
	PagesInFlight int `env:"SYNC_PAGES_IN_FLIGHT" envDefault:"3" doc:"How many of one connection's pages are synced at once, paced by the connection's rate limit. More than one keeps the connection's budget busy when Notion answers slower than a third of a second; 1 to 16."`

	// DrainSlice is how long one task syncs a connection's pages before it
	// hands its worker slot to the next connection in the queue.
	// Default: 30s.
	DrainSlice time.Duration `env:"SYNC_DRAIN_SLICE" envDefault:"30s" doc:"How long one task syncs a connection's pages (NOTIONSYNC_SYNC_PAGES_IN_FLIGHT at a time, at the connection's rate limit) before it queues its continuation and hands its worker slot to the next connection. At least 1s."`

	// ClaimTTL is how long what a running task holds in Redis (its pages'
	// claims, a running drain's flag, a running sweep's or database task's
	// lease) outlives the last renewal by its worker (every ClaimTTL/3).
	// A SIGKILLed worker's connections go on after about ClaimTTL plus the
	// scheduler's tick. 1s to 1m.
	// Default: 8s.
	ClaimTTL time.Duration `env:"SYNC_CLAIM_TTL" envDefault:"8s" doc:"How long what a running task holds in Redis (its pages' claims, a running drain's flag, a sweep's or database task's lease) outlives the last renewal by its worker, which renews them every third of it. A killed worker's connections go on after about this plus NOTIONSYNC_SCHEDULER_TICK. Shorter heals faster and costs more renewals (one Redis round trip per worker per third); 1s to 1m."`

	// QueueShards spreads each asynq queue (tokens, sync, backfill) over
	// this many queues, a connection's tasks always in the same one: asynq
	// keeps a queue in one Redis Cluster slot, so with one queue a single
	// master carries all of its traffic. Set it to the number of cluster
	// masters; 1 (a single Redis or Sentinel) keeps the plain queue names.
	// The scheduler and every worker must use the same number. 1 to 64.
	// Default: 1.
	QueueShards int `env:"QUEUE_SHARDS" envDefault:"1" doc:"Spread each asynq queue (tokens, sync, backfill) over this many queues (sync.0, sync.1.3, ...), each in its own slot range, so that on a Redis Cluster every master carries a share of the task traffic; a connection's tasks always go to the same one. Set it to the number of cluster masters; 1 keeps one queue each (a single Redis or Sentinel). The scheduler and every worker must use the same number; workers serve every part with its base queue's weight from NOTIONSYNC_WORKER_QUEUES, and after a change also the parts left over from the old number. 1 to 64."`
}

// Log configures the logger.
type Log struct {
	// Level is debug, info, warn or error (normalised to lower case).
	// Default: info.
	Level string `env:"LEVEL" envDefault:"info" doc:"Log level: debug, info, warn or error."`

	// Format is json or console (normalised to lower case).
	// Default: json.
	Format string `env:"FORMAT" envDefault:"json" doc:"Log format: json or console."`
}

// Pool configures the worker's task processing (asynq server).
type Pool struct {
	// Concurrency is the number of tasks a worker process runs at once.
	// A connection with pages to sync occupies one slot while it syncs.
	// Default: 50.
	Concurrency int `env:"WORKER_CONCURRENCY" envDefault:"50" doc:"Tasks a worker process runs at once. A connection with pages to sync holds one slot while it syncs, mostly waiting for its rate limit, so slots are cheap: size the fleet's total (workers x concurrency) to the number of connections that sync at the same time, or connections take turns (NOTIONSYNC_SYNC_DRAIN_SLICE each)."`

	// Queues are the asynq queues served, with their priority weights.
	// Default: tokens=6,sync=3,backfill=1.
	Queues QueueWeights `env:"WORKER_QUEUES" envDefault:"tokens=6,sync=3,backfill=1" doc:"asynq queues served and their priority weights (1 to 100) as name=weight, comma-separated. A queue not listed is not served."`

	// ShutdownTimeout is how long running tasks get to finish on SIGTERM;
	// more than Tokens.CallTimeout.
	// Default: 30s.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s" doc:"On SIGTERM, how long running tasks get to finish. More than NOTIONSYNC_TOKEN_CALL_TIMEOUT, so a token refresh in flight completes."`

	// PollInterval is how long an idle worker waits between looks for new
	// tasks (asynq's TaskCheckInterval; each wait is half to one and a half
	// of it). A look asks every queue served in turn, one Redis round trip
	// each, so an idle fleet pays workers x queues / PollInterval round
	// trips per second; a worker that finds a task looks again at once.
	// With several workers, a new task waits for the first of them to
	// look: about PollInterval / (workers + 1). Longer saves an idle
	// fleet's round trips, but tasks that chain (drain continuations) and
	// retries of a fleet with work wait for a look too. 3s rather than
	// asynq's 1s: BenchmarkIdlePickup (internal/app) measured 4 idle
	// workers at 18.9 round trips/s and a mean pickup of 0.18 s with 1s,
	// 10.4/s and 0.79 s (p90 1.7 s) with 3s and a 10s delayed check; a
	// worker with work does not wait (docs/runbook.md, "Idle Redis round
	// trips"). 100ms to 1m.
	// Default: 3s.
	PollInterval time.Duration `env:"WORKER_POLL_INTERVAL" envDefault:"3s" doc:"How long an idle worker waits between looks for new tasks (asynq's TaskCheckInterval; each wait is half to one and a half of it). Each look costs one Redis round trip per queue served, so an idle fleet pays workers x queues / interval round trips per second; a busy worker does not wait. A new task waits for the first idle worker to look, about interval / (workers + 1), and so do chained tasks and retries of a fleet with work: longer saves round trips when idle but slows syncing. 100ms to 1m."`

	// DelayedCheckInterval is how often a worker moves the scheduled and
	// retry tasks that are due into their queues (asynq's
	// DelayedTaskCheckInterval): two round trips per queue. A token
	// refresh (scheduled for its due time, NOTIONSYNC_REFRESH_MARGIN before
	// expiry) or a retry runs up to this much late: rate-limited and busy
	// tasks retry after a second or two, so longer slows a fleet with
	// work. 10s rather than asynq's 5s halves the forwarder's share of an
	// idle fleet's round trips (6 per worker per check with 3 queues); a
	// refresh is due minutes before expiry, so 10 s late is harmless.
	// 1s to 1m.
	// Default: 10s.
	DelayedCheckInterval time.Duration `env:"WORKER_DELAYED_CHECK_INTERVAL" envDefault:"10s" doc:"How often a worker moves due scheduled and retry tasks into their queues (asynq's DelayedTaskCheckInterval), two Redis round trips per queue; with several workers each does it. A token refresh (scheduled for its due time, NOTIONSYNC_REFRESH_MARGIN before expiry) or a task's retry runs up to this much late; rate-limited and busy tasks retry after a second or two, so longer slows syncing. 1s to 1m."`

	// JanitorInterval is how often a worker deletes expired completed
	// tasks (asynq's JanitorInterval): one round trip per queue. Longer
	// only keeps finished tasks' records a little longer. 1s to 1h.
	// Default: 1m.
	JanitorInterval time.Duration `env:"WORKER_JANITOR_INTERVAL" envDefault:"1m" doc:"How often a worker deletes the records of completed tasks whose retention expired (asynq's JanitorInterval), one Redis round trip per queue. Longer only keeps those records a little longer. 1s to 1h."`

	// HTTPAddr is the listen address of the worker's health and metrics
	// endpoints. Loopback by default: nothing in it is for browsers, and
	// /metrics is not authenticated. Bind a reachable address (":8081")
	// only for probes or a Prometheus on another host.
	// Default: 127.0.0.1:8081.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:"127.0.0.1:8081" doc:"Listen address (host:port) of the worker's health (/healthz, /readyz) and Prometheus (/metrics) endpoints. Loopback by default, since /metrics has no authentication: set :8081 (every interface) only where probes or Prometheus reach it from another host or container, and keep that port off the public network."`
}

// Control configures the scheduler: leader election, the control server and
// its webhooks.
type Control struct {
	// Tick is how often the leader looks for due refreshes and syncs.
	// Default: 5s.
	Tick time.Duration `env:"SCHEDULER_TICK" envDefault:"5s" doc:"How often the scheduler leader looks for due token refreshes and syncs."`

	// LeaderLease is the lifetime of the leader lease; more than twice Tick.
	// Default: 15s.
	LeaderLease time.Duration `env:"LEADER_LEASE" envDefault:"15s" doc:"Lifetime of the scheduler leader lease: another replica takes over at most this long after the leader stops renewing it. More than twice NOTIONSYNC_SCHEDULER_TICK."`

	// ControlAddr is the listen address of the control server.
	// Default: :8080.
	ControlAddr string `env:"CONTROL_ADDR" envDefault:":8080" doc:"Listen address (host:port) of the control server: OAuth start and callback, admin API, asynqmon, inbound webhooks."`

	// MetricsAddr is the listen address of the scheduler's Prometheus
	// endpoint (GET /metrics), kept off the control server: the control
	// server faces browsers, and metrics carry no credential check.
	// Default: 127.0.0.1:9090.
	MetricsAddr string `env:"METRICS_ADDR" envDefault:"127.0.0.1:9090" doc:"Listen address (host:port) of the scheduler's Prometheus endpoint (GET /metrics, no authentication), apart from the browser-facing control server. Loopback by default: point Prometheus here, and bind a reachable address (e.g. :9090) only on a network browsers cannot reach. Must differ from NOTIONSYNC_CONTROL_ADDR."`

	// MetricsConnectionLabels adds per-connection series
	// (notionsync_sync_lag_seconds{connection}) for up to 1000 active
	// connections.
	// Default: false.
	MetricsConnectionLabels bool `env:"METRICS_CONNECTION_LABELS" envDefault:"false" doc:"Export notionsync_sync_lag_seconds{connection} for up to 1000 active connections. Off by default: each connection is a time series (cardinality), and the labels reveal every connection id to whoever can read the metrics. The aggregate lag series are always exported."`

	// AdminToken is the bearer token of the admin API; at least 16
	// characters.
	// Required.
	AdminToken Secret `env:"ADMIN_TOKEN,required,notEmpty" doc:"Bearer token of the admin API; at least 16 characters."`

	// PublicURL is the base URL of the control server as browsers reach it
	// (a trailing slash is removed).
	// Default: unset.
	PublicURL string `env:"PUBLIC_URL" doc:"Base URL of the control server as users' browsers reach it, for OAuth start and callback links. Absolute http(s) URL without query or fragment."`

	// AsynqmonReadOnly serves the asynqmon dashboard read-only.
	// Default: true.
	AsynqmonReadOnly bool `env:"ASYNQMON_READONLY" envDefault:"true" doc:"Serve the asynqmon queue dashboard read-only."`

	// WebhookURL receives a POST when a connection needs re-authorization.
	// A secret, as such URLs often embed a token.
	// Default: unset (no webhook).
	WebhookURL Secret `env:"WEBHOOK_URL" doc:"URL that gets a POST when a connection needs re-authorization (needs_reauth); unset sends none. Kept secret, as such URLs often embed a token. Absolute http(s) URL."`

	// WebhookSecret keys the HMAC-SHA256 signature of outbound webhooks.
	// Required with WebhookURL; at least 16 characters.
	// Default: unset.
	WebhookSecret Secret `env:"WEBHOOK_SECRET" doc:"Key of the HMAC-SHA256 signature of outbound webhook bodies. Required with NOTIONSYNC_WEBHOOK_URL; at least 16 characters."`

	// TrustedProxies are the reverse proxies (CIDRs or single addresses)
	// whose X-Forwarded-For names the client, for per-client rate limits
	// and logs. Parsed by TrustedProxyPrefixes.
	// Default: unset (the TCP peer is the client).
	TrustedProxies []string `env:"CONTROL_TRUSTED_PROXIES" envSeparator:"," doc:"Comma-separated CIDRs (or addresses) of the reverse proxies in front of the control server. Only when a request's TCP peer is one of them is X-Forwarded-For believed (its rightmost untrusted entry is the client), for the per-client OAuth rate limit, admin-failure throttling and logs. Unset: the TCP peer is the client."`

	// ReconnectLinkTTL is the lifetime of reconnect links the server mints
	// on its own (needs_reauth webhooks, the API's reconnect_url); at most
	// 30 days.
	// Default: 168h.
	ReconnectLinkTTL time.Duration `env:"RECONNECT_LINK_TTL" envDefault:"168h" doc:"How long a reconnect link works when no lifetime is asked for (needs_reauth webhooks, reconnect_url in the admin API); a link also stops working at its first successful use. At most 720h."`

	// OAuthMaxStates caps the OAuth flows in progress (states in Redis).
	// Default: 10000.
	OAuthMaxStates int `env:"OAUTH_MAX_STATES" envDefault:"10000" doc:"Most OAuth sign-ins in progress at once (each holds a state in Redis for up to 10 minutes); beyond it /oauth/start answers 503. Bounds what anonymous visitors can store in Redis."`

	// NotionWebhookToken verifies inbound Notion webhooks
	// (X-Notion-Signature). Unset disables the inbound webhook endpoint.
	// Default: unset.
	NotionWebhookToken Secret `env:"NOTION_WEBHOOK_TOKEN" doc:"Verification token of the Notion webhook subscription, which signs inbound Notion webhooks. Unset disables the inbound webhook endpoint."`

	// NotionWebhookSetup mounts POST /webhooks/notion without a
	// NotionWebhookToken, so Notion's one-time verification request can be
	// received while a subscription is created. Default: false.
	NotionWebhookSetup bool `env:"NOTION_WEBHOOK_SETUP" envDefault:"false" doc:"Set to true while creating a Notion webhook subscription and NOTIONSYNC_NOTION_WEBHOOK_TOKEN is still unset: POST /webhooks/notion then accepts Notion's one-time verification request, which an operator reveals once through POST /api/v1/webhooks/notion/verification-token. Events are refused until the token is configured; once it is, verification requests are refused (409), so nobody can replace it."`
}

// Files configures the download of Notion-hosted files (images, PDFs,
// attachments, icons, covers, files properties) into the sink. Downloads
// are not Notion API requests: they do not spend a connection's rate limit
// but have their own concurrency bound. See package sync/files for what the
// downloader connects to.
type Files struct {
	// Enabled turns file downloads on.
	// Default: true.
	Enabled bool `env:"FILES" envDefault:"true" doc:"Download the Notion-hosted files pages reference (file, image, pdf, video and audio blocks, icons, covers, files properties) into the sink, so the mirror keeps them after Notion's signed URLs expire (one hour). false stores Notion's URLs only. External files stay links either way."`

	// MaxBytes caps one file.
	// 1 GiB.
	// Default: 1073741824.
	MaxBytes int64 `env:"FILE_MAX_BYTES" envDefault:"1073741824" doc:"Largest file downloaded (1 GiB by default). A larger file is not stored: its page is stored with a per-object error naming this cap, until the page is edited."`

	// QuotaBytes caps the stored files of one connection.
	// 50 GiB.
	// Default: 53687091200.
	QuotaBytes int64 `env:"FILE_QUOTA_BYTES" envDefault:"53687091200" doc:"Most bytes of files stored per connection (50 GiB by default). Files past it are not stored: their pages show a per-object error naming the quota. One counter per connection in Redis (seeded from the stored usage, re-read daily) is reserved before each download and settled after, so all workers together stay within it."`

	// DownloadConcurrency bounds the downloads in flight of one worker process.
	// Default: 4.
	DownloadConcurrency int `env:"FILE_CONCURRENCY" envDefault:"4" doc:"Downloads in flight per worker process, all connections together; 1 to 256."`

	// Hosts are the hosts files are fetched from.
	// Notion's S3 buckets and file domains.
	// Default: .s3.us-west-2.amazonaws.com,s3.us-west-2.amazonaws.com,file.notion.so,.notion-static.com,.notion.so.
	Hosts []string `env:"FILE_HOSTS" envSeparator:"," envDefault:".s3.us-west-2.amazonaws.com,s3.us-west-2.amazonaws.com,file.notion.so,.notion-static.com,.notion.so" doc:"Comma-separated hosts file URLs may point at (and redirect to): host, host:port, or .domain for its subdomains. A file elsewhere is not downloaded (per-object error). Keeps a forged answer from pointing the worker at internal services."`

	// BlobURL is the blob store of a PostgreSQL sink's files.
	// Default: unset.
	BlobURL URL `env:"BLOB_URL" doc:"Where a PostgreSQL sink (NOTIONSYNC_SINK_URL=postgres://...) keeps downloaded files' bytes, as a gocloud.dev/blob URL: file:///var/lib/notionsync/blobs, s3://bucket?region=... (S3-compatible stores with &endpoint=...), gs://bucket or azblob://container, credentials from each cloud's usual environment. The files table records their metadata and owning pages. Unset: a PostgreSQL sink stores no files. A file sink keeps files under each connection's folder and ignores it."`

	// AllowInsecure allows http URLs and private addresses (the sandbox).
	// Default: false.
	AllowInsecure bool `env:"FILE_ALLOW_INSECURE" envDefault:"false" doc:"Allow plain http file URLs and connections to loopback and private addresses. Only for the local sandbox (which serves files on 127.0.0.1 over http); never in production."`
}

// Worker is the configuration of the worker binary.
type Worker struct {
	Redis `envPrefix:"REDIS_"`
	Tokens
	Notion `envPrefix:"NOTION_"`
	Sync
	Log `envPrefix:"LOG_"`
	Pool
	Files
}

// Scheduler is the configuration of the scheduler binary.
type Scheduler struct {
	Redis `envPrefix:"REDIS_"`
	Tokens
	Notion `envPrefix:"NOTION_"`
	Sync
	Log `envPrefix:"LOG_"`
	Control
}

// LoadWorker reads the worker's configuration from the process environment.
// See LoadWorkerFrom.
func LoadWorker() (*Worker, error) { return LoadWorkerFrom(os.LookupEnv) }

// LoadWorkerFrom reads the worker's configuration through lookup (os.LookupEnv
// or MapLookup), applies defaults and validates it. On error it returns nil
// and an error joining one *VarError per problem (see Problems).
func LoadWorkerFrom(lookup func(string) (string, bool)) (*Worker, error) {
	return load[Worker](lookup)
}

// LoadScheduler reads the scheduler's configuration from the process
// environment. See LoadSchedulerFrom.
func LoadScheduler() (*Scheduler, error) { return LoadSchedulerFrom(os.LookupEnv) }

// LoadSchedulerFrom reads the scheduler's configuration through lookup,
// applies defaults and validates it. On error it returns nil and an error
// joining one *VarError per problem (see Problems).
func LoadSchedulerFrom(lookup func(string) (string, bool)) (*Scheduler, error) {
	return load[Scheduler](lookup)
}

// load parses and validates a T (Worker or Scheduler).
func load[T any, PT interface {
	*T
	validate(*collector)
}](lookup func(string) (string, bool)) (*T, error) {
	if lookup == nil {
		return nil, errors.New("config: nil lookup function")
	}
	var binary string
	switch any(PT(nil)).(type) {
	case *Worker:
		binary = BinaryWorker
	case *Scheduler:
		binary = BinaryScheduler
	}
	vars := describe(reflect.TypeFor[T](), binary)
	// Only known variables reach env, and the map is never nil, so env never
	// falls back to the process environment.
	environ := make(map[string]string, len(vars))
	for _, v := range vars {
		if value, ok := lookup(v.Name); ok {
			environ[v.Name] = value
		}
	}
	c := newCollector(vars)
	cfg := new(T)
	if err := env.ParseWithOptions(cfg, env.Options{Environment: environ, Prefix: Prefix}); err != nil {
		c.addEnvErrors(err, vars, environ)
	}
	PT(cfg).validate(c)
	if err := c.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}
