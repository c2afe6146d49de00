package notionfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// Default client credentials, used when Options leaves them empty.
const (
	DefaultClientID     = "fake-client-id"
	DefaultClientSecret = "fake-client-secret"
)

// Errors returned by CheckAccessToken. Each is matched with errors.Is; a token
// superseded by a refresh (Options.RevokeAccessTokensOnRefresh) wraps
// ErrTokenRevoked.
var (
	ErrUnknownToken = errors.New("notionfake: unknown access token")
	ErrTokenExpired = errors.New("notionfake: access token expired")
	ErrTokenRevoked = errors.New("notionfake: access token revoked")
)

// ErrorStyle selects the JSON shape of OAuth error bodies (invalid_grant,
// invalid_client, invalid_request, unsupported_grant_type).
type ErrorStyle int

const (
	// ErrorStyleOAuth answers {"error":"invalid_grant","error_description":".."}.
	ErrorStyleOAuth ErrorStyle = iota
	// ErrorStyleNotion answers {"object":"error","status":400,"code":"invalid_grant","message":".."}.
	ErrorStyleNotion
	// ErrorStyleAlternating alternates between the two, starting with OAuth.
	ErrorStyleAlternating
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// ClientID and ClientSecret are the only accepted client credentials.
	// Defaults: DefaultClientID, DefaultClientSecret.
	ClientID     string
	ClientSecret string
	// RedirectURIs, when non-empty, lists the redirect URIs the authorize
	// endpoint accepts; any other is answered 400. Empty accepts any absolute URI.
	RedirectURIs []string
	// ExpiresIn, when positive, makes token responses carry expires_in (whole
	// seconds). Notion sends none; zero (the default) sends none.
	ExpiresIn time.Duration
	// AccessTokenLifetime is how long an access token passes CheckAccessToken.
	// Zero (the default) means access tokens never expire. It is independent of
	// ExpiresIn so tests can make the fake lie about expiry.
	AccessTokenLifetime time.Duration
	// RevokeAccessTokensOnRefresh makes a refresh invalidate the connection's
	// earlier access tokens. Notion's behaviour is unknown; the default (false)
	// keeps them valid until their own expiry.
	RevokeAccessTokensOnRefresh bool
	// NullRefreshToken makes refresh responses carry "refresh_token": null and
	// keep the presented refresh token live (no rotation of the refresh token).
	NullRefreshToken bool
	// CodeLifetime bounds how long an authorization code can be exchanged.
	// Zero (the default) means codes do not expire (they stay single-use).
	CodeLifetime time.Duration
	// ErrorStyle is the initial shape of OAuth error bodies (see SetErrorStyle).
	ErrorStyle ErrorStyle
	// EchoTokensInErrors makes error messages quote the offending token or
	// code, to test that clients redact what a server echoes.
	EchoTokensInErrors bool
	// AuthorizeWorkspaceID, when set, makes the authorize endpoint (and
	// IssueCode) re-authorize that workspace (created on first use) instead of
	// creating a new workspace per authorization. See SetAuthorizeWorkspace.
	AuthorizeWorkspaceID string
	// Now is the clock for token and code expiry. Default time.Now.
	Now func() time.Time
	// Logger receives one debug line per OAuth request (never a token).
	// Default: zap.NewNop().
	Logger *zap.Logger
}

// Server is a fake of Notion's API. It does not listen by itself: serve
// Handler() with an httptest.Server (see NewTest) or any http.Server.
//
// Every exported method is safe for concurrent use, including while requests
// are being served.
type Server struct {
	opts   Options
	now    func() time.Time
	log    *zap.Logger
	mux    *http.ServeMux
	closed chan struct{}

	closeOnce sync.Once

	mu         sync.Mutex
	workspaces map[string]*workspace
	access     map[string]*accessToken
	refresh    map[string]*refreshToken
	codes      map[string]*authCode
	stats      Stats
	errStyle   ErrorStyle
	errCount   int // error responses written, for ErrorStyleAlternating
	authzWS    string
	denyAuthz  bool
	faults     faults
	gates      []*Gate
	// ext holds the state of other parts of this package (the data API),
	// keyed by a private key type of theirs; see extLocked.
	ext map[any]any
}

// Stats counts what the token endpoint did. Counters only grow.
type Stats struct {
	// TokenRequests counts every request that reached POST /v1/oauth/token.
	TokenRequests int
	// Exchanges counts successful authorization-code exchanges.
	Exchanges int
	// RefreshGrants counts committed refresh rotations, including those whose
	// response was dropped or never read.
	RefreshGrants int
	// InvalidGrants counts invalid_grant answers.
	InvalidGrants int
	// InvalidClients counts invalid_client answers (all OAuth endpoints).
	InvalidClients int
	// RateLimited and InjectedFailures count answers from RateLimitNext and FailNext.
	RateLimited      int
	InjectedFailures int
	// Dropped counts token requests whose connection was closed without a response.
	Dropped int
	// Revocations counts connections revoked through POST /v1/oauth/revoke or Revoke.
	Revocations int
	// Introspections counts POST /v1/oauth/introspect requests answered 200.
	Introspections int
}

// Pair is a connection's current tokens.
type Pair struct {
	WorkspaceID  string
	AccessToken  string
	RefreshToken string
}

type workspace struct {
	id, name, icon string
	botID, ownerID string
	conn           *connection // current connection; nil until the first grant
	rotations      int
}

// connection is one authorization of the integration in a workspace. A new
// authorization of the same workspace replaces (and revokes) the previous one,
// as Notion keeps one bot per workspace and integration.
type connection struct {
	ws          *workspace
	revoked     bool
	liveRefresh string   // the one refresh token that can be spent
	accessList  []string // every access token issued to this connection
}

type accessToken struct {
	conn       *connection
	issuedAt   time.Time
	expiresAt  time.Time // zero: never
	superseded bool
}

type refreshToken struct {
	conn     *connection
	issuedAt time.Time
}

type authCode struct {
	ws          *workspace
	redirectURI string
	expiresAt   time.Time // zero: never
	used        bool
}

// New returns a Server with the OAuth endpoints registered. It does not
// listen.
func New(opts Options) *Server {
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	s := &Server{
		opts:       opts,
		now:        opts.Now,
		log:        opts.Logger,
		mux:        http.NewServeMux(),
		closed:     make(chan struct{}),
		workspaces: make(map[string]*workspace),
		access:     make(map[string]*accessToken),
		refresh:    make(map[string]*refreshToken),
		codes:      make(map[string]*authCode),
		errStyle:   opts.ErrorStyle,
		authzWS:    opts.AuthorizeWorkspaceID,
		ext:        make(map[any]any),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	s.registerRoutes()
	return s
}

// registerRoutes registers every endpoint of the fake. Parts of the package
// that add endpoints (the data API) register theirs here.
func (s *Server) registerRoutes() {
	s.registerOAuthRoutes()
	s.registerDataRoutes()
	s.mux.HandleFunc("/", s.handleUnknownRoute)
}

// NewTest starts s on an httptest.Server and registers cleanup with tb: parked
// and delayed requests are aborted (Close), then the httptest.Server is closed.
func NewTest(tb testing.TB, opts Options) (*Server, *httptest.Server) {
	tb.Helper()
	s := New(opts)
	ts := httptest.NewServer(s.Handler())
	tb.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts
}

// Handler returns the fake's request handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Mux returns the ServeMux behind Handler, so tests can register extra routes
// (Go 1.22 patterns). "/" is taken: it answers Notion's invalid_request_url.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// ClientID returns the accepted client ID.
func (s *Server) ClientID() string { return s.opts.ClientID }

// ClientSecret returns the accepted client secret.
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// Close aborts every parked (BlockRefresh) and delayed (SetLatency) request:
// their connections are closed without a response. Later requests are served
// normally but without latency or parking. Close is idempotent; call it
// before closing the http server that serves Handler, whose Close waits for
// running handlers.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.mu.Lock()
	gates := s.gates
	s.gates = nil
	s.mu.Unlock()
	for _, g := range gates {
		g.finish(true)
	}
}

// CheckAccessToken reports the workspace an access token belongs to, or why
// it is not accepted: ErrUnknownToken, ErrTokenExpired or ErrTokenRevoked
// (errors.Is). workspaceID is also set for a known but rejected token.
func (s *Server) CheckAccessToken(token string) (workspaceID string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.access[token]
	if !ok {
		return "", ErrUnknownToken
	}
	wsID := at.conn.ws.id
	switch {
	case at.conn.revoked:
		return wsID, ErrTokenRevoked
	case at.superseded:
		return wsID, fmt.Errorf("%w: superseded by a refresh", ErrTokenRevoked)
	case !at.expiresAt.IsZero() && !s.now().Before(at.expiresAt):
		return wsID, ErrTokenExpired
	}
	return wsID, nil
}

// Authenticate checks a data-API request the way Notion does: a Notion-Version
// header (else 400 missing_version) and a live bearer token (else 401
// unauthorized). On failure it has written the error response and returns
// ok false.
func (s *Server) Authenticate(w http.ResponseWriter, r *http.Request) (workspaceID string, ok bool) {
	if r.Header.Get("Notion-Version") == "" {
		writeNotionError(w, http.StatusBadRequest, "missing_version",
			"Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.")
		return "", false
	}
	token, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found || token == "" {
		writeNotionError(w, http.StatusUnauthorized, "unauthorized", "API token is invalid.")
		return "", false
	}
	wsID, err := s.CheckAccessToken(token)
	if err != nil {
		writeNotionError(w, http.StatusUnauthorized, "unauthorized", "API token is invalid.")
		return "", false
	}
	return wsID, true
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// RefreshGrantsFor returns the number of committed refresh rotations of a
// workspace (0 for an unknown one).
func (s *Server) RefreshGrantsFor(workspaceID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ws, ok := s.workspaces[workspaceID]; ok {
		return ws.rotations
	}
	return 0
}

// extLocked returns the value stored under key, creating it with mk on first
// use. It lets other files of this package keep per-Server state guarded by
// s.mu without new fields here. The caller holds s.mu.
func (s *Server) extLocked(key any, mk func() any) any {
	v, ok := s.ext[key]
	if !ok {
		v = mk()
		s.ext[key] = v
	}
	return v
}

func (s *Server) handleUnknownRoute(w http.ResponseWriter, r *http.Request) {
	writeNotionError(w, http.StatusBadRequest, "invalid_request_url", "Invalid request URL.")
}

// writeNotionError writes Notion's error shape
// {"object":"error","status":N,"code":..,"message":..,"request_id":..} with the
// x-notion-request-id header.
func writeNotionError(w http.ResponseWriter, status int, code, message string) {
	body := notionErrorBody(status, code, message, nil)
	w.Header().Set("x-notion-request-id", body.RequestID)
	writeJSON(w, status, body)
}

// notionError is the error body of Notion's API.
type notionError struct {
	Object         string         `json:"object"`
	Status         int            `json:"status"`
	Code           string         `json:"code"`
	Message        string         `json:"message"`
	RequestID      string         `json:"request_id"`
	AdditionalData map[string]any `json:"additional_data,omitempty"`
}

func notionErrorBody(status int, code, message string, additional map[string]any) notionError {
	return notionError{Object: "error", Status: status, Code: code, Message: message,
		RequestID: newUUID(), AdditionalData: additional}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only the fake's own fixed types are marshalled: this is a bug.
		panic(fmt.Sprintf("notionfake: marshal response: %v", err))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// dropConnection closes the client's connection without writing a response.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		conn, _, err := hj.Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // reset rather than a graceful FIN
			}
			_ = conn.Close()
			return
		}
	}
	// HTTP/2 or an already hijacked connection: abort the stream.
	panic(http.ErrAbortHandler)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func newAccessTokenString() string  { return "ntn_" + randomHex(23) }
func newRefreshTokenString() string { return "nrt_" + randomHex(23) }
func newCodeString() string         { return newUUID() }
