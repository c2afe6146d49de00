package control

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/tokens"
)

func TestOAuthConnectEndToEnd(t *testing.T) {
	t.Parallel()
	var outcomes list[OAuthOutcome]
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.Hooks.OnOAuth = outcomes.add
	}})
	b := h.browser()
	resp := h.get(b, h.ts.URL+StartPath)

	if resp.status != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.status, resp.body)
	}
	if resp.url.Path != CallbackPath {
		t.Errorf("the flow ended at %s, want the callback", resp.url.Path)
	}
	contains(t, resp.body, "Connected")
	c := h.onlyConnection()
	ws := c.Meta[MetaWorkspaceID]
	if c.ID != WorkspaceConnectionID(ws) || ws == "" {
		t.Errorf("connection id %q, workspace %q: want ws-<workspace_id>", c.ID, ws)
	}
	contains(t, resp.body, c.Meta[MetaWorkspaceName])
	if c.Status != tokens.StatusActive || c.Meta[MetaBotID] == "" || c.Meta[MetaOwnerType] != "user" {
		t.Errorf("connection %+v", c)
	}
	if n := h.enq.syncCount(c.ID); n != 1 {
		t.Errorf("SyncNow called %d times, want 1", n)
	}
	events, err := h.store.Events(context.Background(), c.ID)
	if err != nil || len(events) != 1 || events[0].Kind != tokens.EventConnected {
		t.Errorf("events %+v, %v", events, err)
	}
	// The stored grant is the one Notion issued.
	tok, err := h.source.Token(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := h.fake.CurrentPair(ws); tok.AccessToken != p.AccessToken {
		t.Error("the stored access token is not the one Notion issued")
	}
	// The state cookie was cleared and the state is gone from Redis.
	u, _ := url.Parse(h.ts.URL)
	for _, ck := range b.jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, "notionsync_oauth_") {
			t.Errorf("state cookie %s left in the browser", ck.Name)
		}
	}
	if keys := h.rdb.Keys(context.Background(), h.prefix+"{oauth}:oauth:state:*").Val(); len(keys) != 0 {
		t.Errorf("state keys left: %v", keys)
	}
	if o := outcomes.get(); len(o) != 1 || o[0] != OAuthConnected {
		t.Errorf("OnOAuth saw %v", o)
	}
}

func TestOAuthStartStoresStateAndCookie(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.StateTTL = 90 * time.Second }})
	b := h.browser()
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+StartPath, nil)
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp := h.do(b.c, req)
	if resp.status != http.StatusFound {
		t.Fatalf("status %d", resp.status)
	}
	loc, err := url.Parse(resp.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), h.fakeURL+"/v1/oauth/authorize?") || q.Get("redirect_uri") != h.ts.URL+CallbackPath ||
		q.Get("response_type") != "code" || q.Get("owner") != "user" || q.Get("client_id") != h.fake.ClientID() {
		t.Errorf("authorize URL %s", loc)
	}
	state := q.Get("state")
	if !wellFormedState(state) {
		t.Fatalf("state %q is not 32 bytes of base64url", state)
	}
	ttl := h.rdb.PTTL(context.Background(), h.srv.stateKey(state)).Val()
	if ttl <= 0 || ttl > 90*time.Second {
		t.Errorf("state TTL %s, want (0, 90s]", ttl)
	}
	cookie := resp.header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Lax", "Max-Age=90", "Path=/"} {
		contains(t, cookie, want)
	}
	if strings.Contains(cookie, "Secure") || strings.Contains(cookie, state) {
		t.Errorf("cookie %q: Secure over http, or the raw state", cookie)
	}
}

func TestOAuthSecureCookieOverHTTPS(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	cfg := h.cfg
	cfg.PublicURL = "https://sync.example.com/"
	s := h.newServer(cfg)
	if s.RedirectURI() != "https://sync.example.com/oauth/callback" {
		t.Errorf("redirect URI %q", s.RedirectURI())
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, StartPath, nil))
	cookie := rec.Header().Get("Set-Cookie")
	if !strings.HasPrefix(cookie, "__Host-notionsync_oauth_") || !strings.Contains(cookie, "Secure") {
		t.Errorf("cookie over https: %q", cookie)
	}
}

func TestOAuthCallbackRejects(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})

	// Each case returns the callback URL to open and the browser to open
	// it in.
	cases := []struct {
		name    string
		prepare func(t *testing.T) (*browser, string)
		status  int
		message string
	}{
		{"missing state", func(t *testing.T) (*browser, string) {
			b := h.browser()
			cb := h.authorize(b, "")
			q := cb.Query()
			q.Del("state")
			cb.RawQuery = q.Encode()
			return b, cb.String()
		}, 400, "carries no state"},
		{"malformed state", func(t *testing.T) (*browser, string) {
			b := h.browser()
			cb := h.authorize(b, "")
			q := cb.Query()
			q.Set("state", "forged")
			cb.RawQuery = q.Encode()
			return b, cb.String()
		}, 400, "request is unknown"},
		{"forged state with a matching cookie", func(t *testing.T) (*browser, string) {
			b := h.browser()
			cb := h.authorize(b, "")
			forged := newState()
			u, _ := url.Parse(h.ts.URL)
			b.jar.SetCookies(u, []*http.Cookie{h.srv.stateCookie(forged)})
			q := cb.Query()
			q.Set("state", forged)
			cb.RawQuery = q.Encode()
			return b, cb.String()
		}, 400, "unknown, expired, or was already used"},
		{"duplicated state", func(t *testing.T) (*browser, string) {
			b := h.browser()
			cb := h.authorize(b, "")
			cb.RawQuery += "&state=" + newState()
			return b, cb.String()
		}, 400, "more than once"},
		{"missing cookie", func(t *testing.T) (*browser, string) {
			cb := h.authorize(h.browser(), "")
			return h.browser(), cb.String()
		}, 400, "not started in this browser"},
		{"expired state", func(t *testing.T) (*browser, string) {
			b := h.browser()
			cb := h.authorize(b, "")
			h.clock.Advance(DefaultStateTTL + time.Second)
			return b, cb.String()
		}, 400, "expired"},
		{"missing code", func(t *testing.T) (*browser, string) {
			b := h.browser()
			cb := h.authorize(b, "")
			q := cb.Query()
			q.Del("code")
			cb.RawQuery = q.Encode()
			return b, cb.String()
		}, 400, "no authorization code"},
		{"malformed query", func(t *testing.T) (*browser, string) {
			b := h.browser()
			cb := h.authorize(b, "")
			cb.RawQuery += "&x=%zz"
			return b, cb.String()
		}, 400, "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, u := tc.prepare(t)
			resp := h.get(b, u)
			if resp.status != tc.status {
				t.Errorf("status %d, want %d", resp.status, tc.status)
			}
			contains(t, resp.body, tc.message)
			contains(t, resp.body, "Start again")
			if n := h.connectionCount(); n != 0 {
				t.Errorf("%d connections stored", n)
			}
			if n := h.enq.total(); n != 0 {
				t.Errorf("%d jobs enqueued", n)
			}
		})
	}
}

func TestOAuthStateIsSingleUse(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	b := h.browser()
	cb := h.authorize(b, "")
	state := cb.Query().Get("state")

	if resp := h.get(b, cb.String()); resp.status != http.StatusOK {
		t.Fatalf("first use: status %d: %s", resp.status, resp.body)
	}
	// Replayed in the same browser: its cookie is gone.
	resp := h.get(b, cb.String())
	if resp.status != http.StatusBadRequest {
		t.Errorf("replay: status %d", resp.status)
	}
	// Replayed with the cookie restored: the state itself is gone.
	u, _ := url.Parse(h.ts.URL)
	b.jar.SetCookies(u, []*http.Cookie{h.srv.stateCookie(state)})
	resp = h.get(b, cb.String())
	if resp.status != http.StatusBadRequest {
		t.Errorf("replay with cookie: status %d", resp.status)
	}
	contains(t, resp.body, "already used")
	if n := h.enq.syncCount(h.onlyConnection().ID); n != 1 {
		t.Errorf("SyncNow called %d times, want 1", n)
	}
}

func TestOAuthAccessDenied(t *testing.T) {
	t.Parallel()
	var outcomes list[OAuthOutcome]
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.Hooks.OnOAuth = outcomes.add
	}})
	h.fake.DenyAuthorizations(true)
	resp := h.connect("")
	if resp.status != http.StatusForbidden {
		t.Errorf("status %d", resp.status)
	}
	contains(t, resp.body, "Connection cancelled")
	if h.connectionCount() != 0 || h.enq.total() != 0 {
		t.Error("a denied authorization stored or enqueued something")
	}
	if o := outcomes.get(); len(o) != 1 || o[0] != OAuthDenied {
		t.Errorf("outcomes %v", o)
	}
	if keys := h.rdb.Keys(context.Background(), h.prefix+"{oauth}:oauth:state:*").Val(); len(keys) != 0 {
		t.Errorf("the state of a denied flow was not consumed: %v", keys)
	}
}

func TestOAuthOtherProviderErrorIsNotReflected(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	b := h.browser()
	cb := h.authorize(b, "")
	q := cb.Query()
	q.Del("code")
	q.Set("error", "<script>alert(1)</script>")
	cb.RawQuery = q.Encode()
	resp := h.get(b, cb.String())
	if resp.status != http.StatusBadRequest || strings.Contains(resp.body, "<script>") {
		t.Errorf("status %d, body %s", resp.status, resp.body)
	}
	contains(t, resp.body, `&#34;unknown&#34;`)
}

// The exchange sends the configured redirect URI byte for byte; a server
// whose RedirectURI differs from the one the authorization used gets
// invalid_grant from Notion and shows an error page.
func TestOAuthRedirectURIMismatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	other := h.cfg
	other.RedirectURI = h.ts.URL + CallbackPath + "?v=2"
	h.callback.Store(h.newServer(other))

	resp := h.connect("")
	if resp.status != http.StatusBadGateway {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	contains(t, resp.body, "redirect URI")
	if h.connectionCount() != 0 || h.enq.total() != 0 {
		t.Error("a failed exchange stored or enqueued something")
	}
	if st := h.fake.Stats(); st.InvalidGrants != 1 || st.Exchanges != 0 {
		t.Errorf("fake stats %+v", st)
	}
}

// A redirect URI with a query string is sent unchanged in both places, so
// the exchange succeeds.
func TestOAuthRedirectURISentVerbatim(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	cfg := h.cfg
	cfg.RedirectURI = h.ts.URL + CallbackPath + "?src=notion&x=%2F"
	s := h.newServer(cfg)
	h.callback.Store(s)
	b := h.browser()
	// Start on the server that uses the same RedirectURI.
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, StartPath, nil))
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if got := loc.Query().Get("redirect_uri"); got != cfg.RedirectURI {
		t.Fatalf("authorize redirect_uri %q", got)
	}
	u, _ := url.Parse(h.ts.URL)
	b.jar.SetCookies(u, []*http.Cookie{s.stateCookie(loc.Query().Get("state"))})
	resp := h.get(b, loc.String())
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
}

func TestOAuthReauthorizesExistingConnection(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	if resp := h.connect(""); resp.status != http.StatusOK {
		t.Fatalf("connect: %d", resp.status)
	}
	c := h.onlyConnection()
	ws := c.Meta[MetaWorkspaceID]
	h.fake.SetAuthorizeWorkspace(ws)
	ctx := context.Background()

	for _, withLink := range []bool{false, true} {
		if err := h.store.MarkNeedsReauth(ctx, c.ID, "test"); err != nil {
			t.Fatal(err)
		}
		startQuery := ""
		if withLink {
			startQuery = h.linkQuery(c.ID)
		}
		resp := h.connect(startQuery)
		if resp.status != http.StatusOK {
			t.Fatalf("reauthorize (%q): status %d: %s", startQuery, resp.status, resp.body)
		}
		contains(t, resp.body, "Reconnected")
		got := h.conn(c.ID)
		if got.Status != tokens.StatusActive || got.Reason != "" {
			t.Errorf("after reauthorization: %s (%s)", got.Status, got.Reason)
		}
		events, _ := h.store.Events(ctx, c.ID)
		if events[0].Kind != tokens.EventReauthorized {
			t.Errorf("newest event %+v, want reauthorized", events[0])
		}
		tok, err := h.source.Token(ctx, c.ID)
		if p, _ := h.fake.CurrentPair(ws); err != nil || tok.AccessToken != p.AccessToken {
			t.Errorf("token after reauthorization: %v", err)
		}
	}
	if h.connectionCount() != 1 {
		t.Error("reauthorization created another connection")
	}
	if n := h.enq.syncCount(c.ID); n != 3 {
		t.Errorf("SyncNow called %d times, want 3", n)
	}
}

func TestOAuthReauthorizationWithAnotherWorkspaceRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	pair := h.seed("tenant-1", "")
	before := h.conn("tenant-1")

	// The fake authorizes a brand new workspace.
	resp := h.connect(h.linkQuery("tenant-1"))
	if resp.status != http.StatusConflict {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	contains(t, resp.body, "another Notion workspace")
	after := h.conn("tenant-1")
	if after.Version != before.Version || after.Meta[MetaWorkspaceID] != pair.WorkspaceID {
		t.Errorf("the connection changed: %+v", after)
	}
	if st := h.fake.Stats(); st.Revocations != 1 {
		t.Errorf("the unwanted grant was not revoked: %+v", st)
	}
	if _, ok := h.fake.CurrentPair(pair.WorkspaceID); !ok {
		t.Error("the original workspace's grant was revoked")
	}
}

func TestOAuthStartWithNewConnectionIDNeedsAdmin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	resp := h.connect("connection_id=tenant-42")
	if resp.status != http.StatusForbidden {
		t.Errorf("public start for an unknown connection: %d", resp.status)
	}
	if resp := h.connect("connection_id=bad%20id"); resp.status != http.StatusBadRequest {
		t.Errorf("invalid id: %d", resp.status)
	}

	b := h.browser()
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+StartPath+"?connection_id=tenant-42", nil)
	req.SetBasicAuth("ops", testAdminToken)
	b.stop = true
	first := h.do(b.c, req) // stops at the callback redirect
	b.stop = false
	if first.status != http.StatusFound {
		t.Fatalf("admin start: %d", first.status)
	}
	resp = h.get(b, first.header.Get("Location"))
	if resp.status != http.StatusOK {
		t.Fatalf("callback: %d: %s", resp.status, resp.body)
	}
	c := h.conn("tenant-42")
	if c.Meta[MetaWorkspaceID] == "" {
		t.Error("no workspace recorded")
	}
	// The workspace index lets webhooks find the connection.
	ids, err := h.srv.workspaceConnections(context.Background(), c.Meta[MetaWorkspaceID])
	if err != nil || len(ids) != 2 || ids[1] != "tenant-42" {
		t.Errorf("workspace connections %v, %v", ids, err)
	}
}

func TestOAuthSyncEnqueueFailureStillConnects(t *testing.T) {
	t.Parallel()
	var outcomes list[OAuthOutcome]
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.Hooks.OnOAuth = outcomes.add
	}})
	h.enq.setErr(errTest)
	if resp := h.connect(""); resp.status != http.StatusOK {
		t.Fatalf("status %d", resp.status)
	}
	if h.onlyConnection().Status != tokens.StatusActive {
		t.Error("not connected")
	}
	if o := outcomes.get(); len(o) != 2 || o[0] != OAuthSyncNotEnqueued || o[1] != OAuthConnected {
		t.Errorf("outcomes %v", o)
	}
}

// No token, code or secret reaches a page or a log line, even when Notion
// echoes the code in its error (notionauth redacts it).
func TestOAuthNoSecretsInPagesOrLogs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{fake: notionfake.Options{EchoTokensInErrors: true}})
	b := h.browser()
	cb := h.authorize(b, "")
	code := cb.Query().Get("code")
	if resp := h.get(b, cb.String()); resp.status != http.StatusOK {
		t.Fatalf("connect: %d", resp.status)
	}
	// Replay the spent code with a fresh, valid state: Notion refuses it
	// and quotes it in its error.
	cb2 := h.authorize(b, "")
	q := cb2.Query()
	q.Set("code", code)
	cb2.RawQuery = q.Encode()
	if resp := h.get(b, cb2.String()); resp.status != http.StatusBadGateway {
		t.Fatalf("replayed code: %d", resp.status)
	}
	ws := h.onlyConnection().Meta[MetaWorkspaceID]
	p, _ := h.fake.CurrentPair(ws)
	// Disconnect too, so revocation is covered.
	if resp := h.api(http.MethodPost, "/api/v1/connections/"+WorkspaceConnectionID(ws)+"/disconnect", nil); resp.status != 200 {
		t.Fatalf("disconnect: %d", resp.status)
	}
	h.assertNoSecrets([]string{code, cb2.Query().Get("code"), p.AccessToken, p.RefreshToken,
		h.fake.ClientSecret(), testAdminToken}, nil)
	if !strings.Contains(strings.Join(h.logText(), "\n"), "exchange failed") {
		t.Error("the failed exchange was not logged")
	}
}

func TestPageEscapes(t *testing.T) {
	t.Parallel()
	s := &Server{log: nopLogger()}
	rec := httptest.NewRecorder()
	s.writePage(rec, page{Status: 200, OK: true, Title: "Connected",
		Message: `<img src=x onerror="alert(1)"> is connected`, Link: "javascript:alert(1)"})
	body := rec.Body.String()
	if strings.Contains(body, "<img") || strings.Contains(body, `href="javascript:`) {
		t.Errorf("unescaped page: %s", body)
	}
	if rec.Header().Get("Content-Security-Policy") == "" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", rec.Header())
	}
}

func TestParseCallback(t *testing.T) {
	t.Parallel()
	cases := []struct {
		raw     string
		want    callbackParams
		wantErr bool
	}{
		{"code=c&state=s", callbackParams{State: "s", Code: "c"}, false},
		{"error=access_denied&state=s", callbackParams{State: "s", Error: "access_denied"}, false},
		{"", callbackParams{}, false},
		{"state=a&state=b", callbackParams{}, true},
		{"code=a&code=b", callbackParams{}, true},
		{"%zz", callbackParams{}, true},
		{"state=" + strings.Repeat("a", maxCallbackQuery), callbackParams{}, true},
	}
	for _, tc := range cases {
		got, err := parseCallback(tc.raw)
		if (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
			t.Errorf("parseCallback(%.40q) = %+v, %v", tc.raw, got, err)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no source", func(c *Config) { c.Source = nil }, "Source is required"},
		{"no oauth", func(c *Config) { c.OAuth = nil }, "OAuth is required"},
		{"no redis", func(c *Config) { c.Redis = nil }, "Redis is required"},
		{"no enqueuer", func(c *Config) { c.Enqueuer = nil }, "Enqueuer is required"},
		{"short admin token", func(c *Config) { c.AdminToken = "short" }, "AdminToken"},
		{"no urls", func(c *Config) { c.PublicURL = "" }, "PublicURL or RedirectURI"},
		{"bad public url", func(c *Config) { c.PublicURL = "ftp://x" }, "PublicURL"},
		{"bad redirect", func(c *Config) { c.RedirectURI = "/relative" }, "RedirectURI"},
		{"webhook without secret", func(c *Config) { c.ReauthWebhook.URL = "https://hooks.example/t0k3n" }, "Secret"},
		{"bad webhook url", func(c *Config) {
			c.ReauthWebhook = ReauthWebhookConfig{URL: "notaurl-secretpart", Secret: strings.Repeat("s", 16)}
		}, "ReauthWebhook.URL"},
		{"negative ttl", func(c *Config) { c.StateTTL = -1 }, "StateTTL"},
	}
	for _, tc := range cases {
		cfg := h.cfg
		tc.mod(&cfg)
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to mention %q", tc.name, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "t0k3n") || strings.Contains(err.Error(), "secretpart") ||
			strings.Contains(err.Error(), "short")) {
			t.Errorf("%s: the error quotes a secret: %v", tc.name, err)
		}
	}
}
