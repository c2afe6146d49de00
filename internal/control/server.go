package control

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/notionsync/notionsync/tokens"
	"github.com/notionsync/notionsync/tokens/notionauth"
)

// Defaults applied by New.
const (
	DefaultKeyPrefix          = "notionsync:"
	DefaultStateTTL           = 10 * time.Minute
	DefaultExchangeTimeout    = 30 * time.Second
	DefaultRefreshWaitTimeout = 60 * time.Second
	DefaultWebhookDedupWindow = 5 * time.Second
	// DefaultWebhookEventMaxAge covers Notion's retries (up to 8 attempts
	// over some hours) with room to spare.
	DefaultWebhookEventMaxAge = 24 * time.Hour
)

// Paths the Server serves.
const (
	StartPath    = "/oauth/start"
	CallbackPath = "/oauth/callback"
	// AsynqmonPath is where Config.Asynqmon is mounted. Build the asynqmon
	// handler with asynqmon.Options{RootPath: "/admin/asynqmon"} (no trailing
	// slash): it is served the full request path.
	AsynqmonPath      = "/admin/asynqmon/"
	NotionWebhookPath = "/webhooks/notion"
)

// minAdminTokenLen matches what config enforces for the admin token.
const minAdminTokenLen = 16

// Enqueuer puts work on the job queue. It is implemented by package jobs.
// Both methods must be safe for concurrent use and return quickly (they
// enqueue; they do not run the work).
type Enqueuer interface {
	// SyncNow enqueues a sweep of the connection now.
	SyncNow(ctx context.Context, connID string) error
	// RefreshNow enqueues a forced token refresh of the connection now: it
	// refreshes even a token that is not due, unless the token version
	// moved past version (the one the caller read) before it runs.
	RefreshNow(ctx context.Context, connID string, version int64) error
}

// Reconciler is an optional extension of Enqueuer. When the Enqueuer
// implements it, POST /api/v1/connections/{id}/reconcile starts a
// reconciliation pass of the connection now, besides its daily one.
type Reconciler interface {
	ReconcileNow(ctx context.Context, connID string) error
}

// EntitySyncer is an optional extension of Enqueuer. When the Enqueuer
// implements it, Notion webhook events enqueue a sync of the one page,
// database or data source they name instead of a sweep of the connection.
type EntitySyncer interface {
	SyncEntity(ctx context.Context, connID, entityType, entityID string) error
}

// Hooks observe a Server; attach metrics here (the package imports no
// metrics library). Every field is optional. Hooks are called synchronously
// from request goroutines (or delivery goroutines), so they must be fast and
// safe for concurrent use.
type Hooks struct {
	// OnRequest reports every request: the matched route pattern ("" when
	// none matched), the response status and the handling time.
	OnRequest func(route string, status int, took time.Duration)
	// OnOAuth reports the outcome of every OAuth callback.
	OnOAuth func(outcome OAuthOutcome)
	// OnNotionWebhook reports the outcome of every inbound Notion webhook.
	OnNotionWebhook func(outcome WebhookOutcome)
	// OnReauthNotification reports the end of every outbound needs_reauth
	// notification: delivered, failed (attempts exhausted or a permanent
	// answer), or dropped (the Server was shut down first).
	OnReauthNotification func(connID string, outcome NotificationOutcome, attempts int)
}

// OAuthOutcome is how an OAuth callback ended.
type OAuthOutcome string

const (
	OAuthConnected         OAuthOutcome = "connected"
	OAuthReauthorized      OAuthOutcome = "reauthorized"
	OAuthBadRequest        OAuthOutcome = "bad_request"        // malformed or missing parameters
	OAuthBadState          OAuthOutcome = "bad_state"          // missing, unknown, reused, expired or unbound state
	OAuthDenied            OAuthOutcome = "denied"             // the user cancelled at Notion
	OAuthProviderError     OAuthOutcome = "provider_error"     // Notion redirected back with another error
	OAuthExchangeFailed    OAuthOutcome = "exchange_failed"    // the code exchange failed
	OAuthWorkspaceMismatch OAuthOutcome = "workspace_mismatch" // re-authorization with another workspace
	OAuthStoreFailed       OAuthOutcome = "store_failed"       // the grant could not be stored
	OAuthRateLimited       OAuthOutcome = "rate_limited"       // refused by a rate limit
	// OAuthSyncNotEnqueued is reported in addition to OAuthConnected or
	// OAuthReauthorized when the first sync could not be enqueued (the
	// scheduler's sweep still picks the connection up).
	OAuthSyncNotEnqueued OAuthOutcome = "sync_not_enqueued"
)

// Config configures a Server. Fields marked required make New fail when
// unset; every other field documents its default.
type Config struct {
	// Source hands out access tokens (disconnect revokes the current one)
	// and refreshes on demand. Required.
	Source *tokens.Source
	// Store holds the connections. Default: Source.Store().
	Store *tokens.Store
	// OAuth exchanges codes, revokes tokens and builds the authorize URL.
	// Required.
	OAuth *notionauth.Client
	// Redis keeps OAuth states, webhook de-duplication keys and the captured
	// Notion verification token. Required.
	Redis redis.UniversalClient
	// Enqueuer enqueues syncs and refreshes. Required.
	Enqueuer Enqueuer

	// PublicURL is the base URL of this server as browsers reach it
	// (absolute http(s), no query or fragment; a trailing slash is removed).
	// Required unless RedirectURI is set; also required for ReauthWebhook
	// (the reconnect link). An https URL makes the state cookie Secure.
	PublicURL string
	// RedirectURI is exactly the redirect URI registered with Notion; it is
	// sent byte for byte in the authorize URL and the code exchange. It must
	// reach this server's /oauth/callback (possibly through a proxy that
	// rewrites the path) on the same host as /oauth/start, since the state
	// cookie set by the start is checked by the callback. Default: PublicURL
	// + "/oauth/callback".
	RedirectURI string
	// AdminToken is the admin credential (at least 16 characters): accepted
	// as "Authorization: Bearer <token>" or as the password of HTTP Basic
	// authentication (any user name). Required.
	AdminToken string
	// KeyPrefix prefixes this package's Redis keys. Default "notionsync:".
	KeyPrefix string
	// StateTTL bounds how long an OAuth flow may take between start and
	// callback. Default 10m.
	StateTTL time.Duration
	// ExchangeTimeout bounds the code exchange. It runs detached from the
	// browser's request, so a closed tab does not lose a grant Notion has
	// issued. Default 30s.
	ExchangeTimeout time.Duration
	// RefreshWaitTimeout bounds POST .../refresh?wait=1. Default 60s.
	RefreshWaitTimeout time.Duration
	// Timing decides the expiry and refresh time of connected and imported
	// tokens; use the Source's Timing.
	Timing tokens.Timing

	// Asynqmon, when set, is served under /admin/asynqmon/ behind the admin
	// check, and the console's pages link to it. Default: not mounted.
	Asynqmon http.Handler
	// Console is what the connections console (/admin/connections) reads
	// from the sync side: sync progress, the errored index and running
	// tasks. Default: none (the console shows token state only).
	Console ConsoleSync

	// NotionWebhookToken is the verification token of the Notion webhook
	// subscription. When set, POST /webhooks/notion verifies
	// X-Notion-Signature with it and turns events into syncs.
	// Default: unset (endpoint not mounted unless NotionWebhookSetup).
	NotionWebhookToken string
	// NotionWebhookSetup mounts POST /webhooks/notion even without a
	// NotionWebhookToken, so that Notion's one-time verification request can
	// be received while a subscription is being created (see doc.go).
	// Without a token, events are refused. Default false.
	NotionWebhookSetup bool
	// WebhookDedupWindow: webhook events for the same connection and entity
	// within this window enqueue one sync. Default 5s.
	WebhookDedupWindow time.Duration
	// WebhookEventMaxAge: signed events whose timestamp is older are
	// refused, and each event id is handled once within it (Redis keeps
	// one small key per event id for WebhookEventMaxAge plus 5 minutes of
	// clock skew; only signed events create them, so their number is
	// bounded by Notion's event rate). It must cover Notion's retry
	// horizon. Default 24h.
	WebhookEventMaxAge time.Duration

	// ReauthWebhook configures the outbound needs_reauth notification.
	// Default: none sent.
	ReauthWebhook ReauthWebhookConfig

	// SyncInfo, when set, is called for every connection the API returns;
	// its result is shown as the connection's "sync" field (for example the
	// last sync time and cursor). Errors are logged and the field omitted.
	SyncInfo func(ctx context.Context, connID string) (any, error)
	// SyncInfos, when set, is what the list (GET /api/v1/connections) asks
	// instead of SyncInfo: once per page, for all of its connections (in
	// their order; a nil entry omits that connection's field). A page of
	// 1,000 connections is then one pipelined Redis round trip instead of
	// 1,000 sequential ones, which on a loaded host, or while the fleet
	// catches up after a Redis failover, took longer than a client's 15 s
	// timeout. An error is logged and the page's sync fields omitted.
	SyncInfos func(ctx context.Context, connIDs []string) ([]any, error)

	// LinkKey keys the HMAC of reconnect links (at least 32 bytes).
	// Default: derived from AdminToken with HKDF-SHA256 (see link.go), so
	// rotating the admin token also kills outstanding links.
	LinkKey []byte
	// LinkTTL is the lifetime of a reconnect link minted without an explicit
	// one (needs_reauth webhooks, the API's reconnect_url), at most
	// MaxLinkTTL. Default DefaultLinkTTL (7 days).
	LinkTTL time.Duration

	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed: a request whose TCP peer is in one of them is attributed to
	// the rightmost untrusted address of that header. Default: none (the
	// TCP peer is the client; the header is ignored).
	TrustedProxies []netip.Prefix
	// OAuthClientLimit limits /oauth/start and /oauth/callback per client
	// address (IPv6: per /64); beyond it they answer 429 with Retry-After.
	// Default DefaultOAuthClientLimit. Limits are per process.
	OAuthClientLimit RateLimit
	// ExchangeLimit bounds the code exchanges of all callbacks together
	// (each spends a token-endpoint call with the client secret); beyond
	// it a callback answers 503. Default DefaultExchangeLimit.
	ExchangeLimit RateLimit
	// MaxOAuthStates caps the OAuth flows in progress (states in Redis);
	// beyond it /oauth/start answers 503. Default DefaultMaxOAuthStates.
	MaxOAuthStates int
	// AdminFailureLimit throttles failed admin authentications per client
	// address; beyond it admin routes answer 429 with Retry-After.
	// Default DefaultAdminFailureLimit.
	AdminFailureLimit RateLimit

	// Hooks observe the Server.
	Hooks Hooks
	// Logger receives structured logs; never a token, code or secret.
	// Default: no logs.
	Logger *zap.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Server is the control plane: OAuth connect and reconnect, the admin JSON
// API, asynqmon, inbound Notion webhooks, outbound needs_reauth
// notifications, and health endpoints.
//
// Handler and NotifyNeedsReauth are safe for concurrent use. Shutdown and
// Close wait for outbound notifications in flight.
type Server struct {
	cfg         Config
	store       *tokens.Store
	log         *zap.Logger
	now         func() time.Time
	redirectURI string
	publicURL   string
	secure      bool // cookies get Secure (PublicURL or RedirectURI is https)
	adminSum    [32]byte
	hooks       Hooks
	csrf        *http.CrossOriginProtection
	handler     http.Handler
	linkKey     []byte
	csrfKey     []byte // console CSRF tokens (console.go)

	oauthLimiter  *clientLimiter
	adminFailures *clientLimiter
	exchanges     *rate.Limiter
	reauth        reauthSender

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
	// deliveries is the context of outbound notifications; Shutdown cancels
	// it when its context ends before they do.
	deliveries context.Context
	abandon    context.CancelFunc
}

// New validates cfg, applies its defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	var errs []error
	if cfg.Source == nil {
		errs = append(errs, errors.New("Source is required"))
	} else if cfg.Store == nil {
		cfg.Store = cfg.Source.Store()
	}
	if cfg.OAuth == nil {
		errs = append(errs, errors.New("OAuth is required"))
	}
	if cfg.Redis == nil {
		errs = append(errs, errors.New("Redis is required"))
	}
	if cfg.Enqueuer == nil {
		errs = append(errs, errors.New("Enqueuer is required"))
	}
	if len(cfg.AdminToken) < minAdminTokenLen {
		// The value is never quoted: it is a secret.
		errs = append(errs, fmt.Errorf("AdminToken must be at least %d characters", minAdminTokenLen))
	}
	public := strings.TrimRight(cfg.PublicURL, "/")
	if public != "" {
		if err := checkBaseURL(public); err != nil {
			errs = append(errs, fmt.Errorf("PublicURL: %w", err))
		}
	}
	redirect := cfg.RedirectURI
	switch {
	case redirect != "":
		u, err := url.Parse(redirect)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" || u.User != nil {
			errs = append(errs, errors.New("RedirectURI must be an absolute http(s) URL without user info or fragment"))
		}
	case public != "":
		redirect = public + CallbackPath
	default:
		errs = append(errs, errors.New("PublicURL or RedirectURI is required"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"StateTTL", cfg.StateTTL}, {"ExchangeTimeout", cfg.ExchangeTimeout},
		{"RefreshWaitTimeout", cfg.RefreshWaitTimeout}, {"WebhookDedupWindow", cfg.WebhookDedupWindow},
		{"WebhookEventMaxAge", cfg.WebhookEventMaxAge}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", d.name))
		}
	}
	if cfg.LinkKey != nil && len(cfg.LinkKey) < minLinkKeyLen {
		errs = append(errs, fmt.Errorf("LinkKey must be at least %d bytes", minLinkKeyLen))
	}
	if cfg.LinkTTL < 0 || cfg.LinkTTL > MaxLinkTTL {
		errs = append(errs, fmt.Errorf("LinkTTL must be from 0 to %s", MaxLinkTTL))
	}
	for _, l := range []struct {
		name string
		v    RateLimit
	}{{"OAuthClientLimit", cfg.OAuthClientLimit}, {"ExchangeLimit", cfg.ExchangeLimit}, {"AdminFailureLimit", cfg.AdminFailureLimit}} {
		if l.v.Every < 0 || l.v.Burst < 0 || (l.v != RateLimit{} && (l.v.Every == 0 || l.v.Burst == 0)) {
			errs = append(errs, fmt.Errorf("%s needs both Every and Burst more than 0 (or neither, for the default)", l.name))
		}
	}
	if cfg.MaxOAuthStates < 0 {
		errs = append(errs, errors.New("MaxOAuthStates must not be negative"))
	}
	for _, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			errs = append(errs, errors.New("TrustedProxies holds an invalid prefix"))
			break
		}
	}
	rs, err := newReauthSender(cfg.ReauthWebhook)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.ReauthWebhook.URL != "" && public == "" {
		errs = append(errs, errors.New("PublicURL is required with ReauthWebhook (the reconnect link)"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(append([]error{errors.New("control: invalid Config")}, errs...)...)
	}

	cfg.KeyPrefix = cmp.Or(cfg.KeyPrefix, DefaultKeyPrefix)
	cfg.StateTTL = cmp.Or(cfg.StateTTL, DefaultStateTTL)
	cfg.ExchangeTimeout = cmp.Or(cfg.ExchangeTimeout, DefaultExchangeTimeout)
	cfg.RefreshWaitTimeout = cmp.Or(cfg.RefreshWaitTimeout, DefaultRefreshWaitTimeout)
	cfg.WebhookDedupWindow = cmp.Or(cfg.WebhookDedupWindow, DefaultWebhookDedupWindow)
	cfg.LinkTTL = cmp.Or(cfg.LinkTTL, DefaultLinkTTL)
	cfg.OAuthClientLimit = cmp.Or(cfg.OAuthClientLimit, DefaultOAuthClientLimit)
	cfg.ExchangeLimit = cmp.Or(cfg.ExchangeLimit, DefaultExchangeLimit)
	cfg.AdminFailureLimit = cmp.Or(cfg.AdminFailureLimit, DefaultAdminFailureLimit)
	cfg.MaxOAuthStates = cmp.Or(cfg.MaxOAuthStates, DefaultMaxOAuthStates)
	if cfg.LinkKey == nil {
		cfg.LinkKey = deriveLinkKey(cfg.AdminToken)
	}
	cfg.TrustedProxies = slices.Clone(cfg.TrustedProxies)
	for i, p := range cfg.TrustedProxies {
		cfg.TrustedProxies[i] = p.Masked()
	}
	cfg.WebhookEventMaxAge = cmp.Or(cfg.WebhookEventMaxAge, DefaultWebhookEventMaxAge)
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg:         cfg,
		store:       cfg.Store,
		log:         cfg.Logger,
		now:         cfg.Now,
		redirectURI: redirect,
		publicURL:   public,
		secure:      strings.HasPrefix(redirect, "https://") || strings.HasPrefix(public, "https://"),
		adminSum:    sha256.Sum256([]byte(cfg.AdminToken)),
		hooks:       cfg.Hooks,
		csrf:        newCrossOriginProtection(),
		reauth:      rs,
		linkKey:     cfg.LinkKey,
		csrfKey:     deriveCSRFKey(cfg.AdminToken),

		oauthLimiter:  newClientLimiter(cfg.OAuthClientLimit, cfg.Now),
		adminFailures: newClientLimiter(cfg.AdminFailureLimit, cfg.Now),
		exchanges:     rate.NewLimiter(cfg.ExchangeLimit.limit(), cfg.ExchangeLimit.Burst),
	}
	s.deliveries, s.abandon = context.WithCancel(context.Background())
	s.handler = s.middleware(s.routes())
	return s, nil
}

func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must be an absolute http(s) URL without user info, query or fragment")
	}
	return nil
}

// Handler returns the HTTP handler serving every route (see doc.go).
func (s *Server) Handler() http.Handler { return s.handler }

// RedirectURI returns the redirect URI sent to Notion.
func (s *Server) RedirectURI() string { return s.redirectURI }

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()

	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	// No /metrics: this server faces browsers, and metrics answer anyone
	// who can reach them; the process serves them on a listener of its own.

	mux.HandleFunc("GET "+StartPath, s.limitOAuth(s.handleStart))
	mux.HandleFunc("GET "+CallbackPath, s.limitOAuth(s.handleCallback))

	api := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.requireAdmin(h)) }
	api("GET /api/v1/connections", s.handleList)
	api("POST /api/v1/connections/import", s.handleImport)
	api("GET /api/v1/connections/{id}", s.handleGet)
	api("GET /api/v1/connections/{id}/events", s.handleEvents)
	api("POST /api/v1/connections/{id}/pause", s.handlePause)
	api("POST /api/v1/connections/{id}/resume", s.handleResume)
	api("POST /api/v1/connections/{id}/sync", s.handleSync)
	api("POST /api/v1/connections/{id}/reconcile", s.handleReconcile)
	api("POST /api/v1/connections/{id}/refresh", s.handleRefresh)
	api("POST /api/v1/connections/{id}/disconnect", s.handleDisconnect)
	api("POST /api/v1/connections/{id}/reconnect-link", s.handleReconnectLink)
	api("POST /api/v1/webhooks/notion/verification-token", s.handleVerificationToken)
	api("POST /api/v1/rekey", s.handleRekey)
	// Anything else under the admin prefixes answers only after the admin
	// check, so unauthenticated callers learn nothing about the routes.
	api("/api/", s.handleAPINotFound)
	if s.cfg.Asynqmon != nil {
		mux.Handle(AsynqmonPath, s.requireAdmin(s.cfg.Asynqmon))
	}
	s.consoleRoutes(api)
	api("/admin/", s.handleAPINotFound)

	if s.cfg.NotionWebhookToken != "" || s.cfg.NotionWebhookSetup {
		mux.HandleFunc("POST "+NotionWebhookPath, s.handleNotionWebhook)
	}
	return mux
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "ok\n")
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		writeText(w, http.StatusServiceUnavailable, "shutting down\n")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := s.cfg.Redis.Ping(ctx).Err(); err != nil {
		s.log.Warn("readiness check: redis unreachable", zap.Error(err))
		writeText(w, http.StatusServiceUnavailable, "redis unavailable\n")
		return
	}
	writeText(w, http.StatusOK, "ok\n")
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// middleware adds security headers, recovers panics, logs each request (its
// path, never its query: the OAuth callback's query holds the code) and
// reports it to Hooks.OnRequest.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("control: panic while serving a request",
					zap.String("route", r.Pattern), zap.String("panic_type", fmt.Sprintf("%T", p)), zap.StackSkip("stack", 1))
				if !rec.wrote {
					writeJSONError(rec, http.StatusInternalServerError, "internal", "internal error")
				}
			}
			took := time.Since(start)
			status := cmp.Or(rec.status, http.StatusOK)
			s.log.Debug("control: request", zap.String("method", r.Method), zap.String("route", r.Pattern),
				zap.String("path", r.URL.Path), zap.Int("status", status), zap.Duration("took", took))
			if f := s.hooks.OnRequest; f != nil {
				f(r.Pattern, status, took)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// statusRecorder remembers the response status.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.status, r.wrote = http.StatusOK, true
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush supports streaming handlers that type-assert http.Flusher.
func (r *statusRecorder) Flush() {
	if !r.wrote {
		r.status, r.wrote = http.StatusOK, true
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Shutdown stops accepting outbound notifications, makes /readyz answer
// 503, and waits for notifications in flight (with their retries). If ctx
// ends first, the remaining deliveries are abandoned (each is logged) and
// ctx's error is returned. It does not stop the HTTP listener: that is the
// http.Server's job.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.abandon()
		return nil
	case <-ctx.Done():
		select {
		case <-done: // finished just in time
			s.abandon()
			return nil
		default:
		}
		s.abandon()
		<-done
		return ctx.Err()
	}
}

// Close is Shutdown without a deadline.
func (s *Server) Close() error { return s.Shutdown(context.Background()) }

// track registers an outbound delivery goroutine; false after Shutdown.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.inflight.Add(1)
	return true
}
