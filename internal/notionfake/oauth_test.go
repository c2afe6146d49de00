package notionfake

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const redirectURI = "https://app.example.com/oauth/callback"

func TestRefreshRotates(t *testing.T) {
	h := newHarness(t, Options{})
	p := h.s.SeedConnection("ws-1")

	r := h.refresh(p.RefreshToken)
	if r.status != 200 {
		t.Fatalf("refresh: %d %v", r.status, r.body)
	}
	newAT, newRT := r.str("access_token"), r.str("refresh_token")
	if !strings.HasPrefix(newAT, "ntn_") || newAT == p.AccessToken {
		t.Errorf("access_token %q (old %q)", newAT, p.AccessToken)
	}
	if !strings.HasPrefix(newRT, "nrt_") || newRT == p.RefreshToken {
		t.Errorf("refresh_token %q (old %q)", newRT, p.RefreshToken)
	}
	if r.str("token_type") != "bearer" || r.str("workspace_id") != "ws-1" || r.str("bot_id") == "" ||
		r.str("workspace_name") != "Fake Workspace ws-1" {
		t.Errorf("response fields: %v", r.body)
	}
	if v, ok := r.body["duplicated_template_id"]; !ok || v != nil {
		t.Errorf("duplicated_template_id = %v (present %v), want null", v, ok)
	}
	if owner, _ := r.body["owner"].(map[string]any); owner["type"] != "user" {
		t.Errorf("owner = %v", r.body["owner"])
	}
	if _, ok := r.body["expires_in"]; ok {
		t.Errorf("expires_in sent without Options.ExpiresIn: %v", r.body["expires_in"])
	}

	// The spent refresh token is dead.
	if r := h.refresh(p.RefreshToken); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Fatalf("reuse: %d %v", r.status, r.body)
	}
	// The new one works, once.
	if r := h.refresh(newRT); r.status != 200 {
		t.Fatalf("refresh with rotated token: %d %v", r.status, r.body)
	}
	if r := h.refresh(newRT); r.status != 400 || r.errCode() != "invalid_grant" {
		t.Fatalf("reuse of rotated token: %d %v", r.status, r.body)
	}

	st := h.s.Stats()
	if st.RefreshGrants != 2 || st.InvalidGrants != 2 || st.TokenRequests != 4 {
		t.Errorf("stats %+v", st)
	}
	if n := h.s.RefreshGrantsFor("ws-1"); n != 2 {
		t.Errorf("RefreshGrantsFor = %d, want 2", n)
	}
	if cur, ok := h.s.CurrentPair("ws-1"); !ok || cur.RefreshToken == newRT || cur.RefreshToken == p.RefreshToken {
		t.Errorf("CurrentPair = %+v, %v", cur, ok)
	}
}

func TestConcurrentRefreshOneWinner(t *testing.T) {
	h := newHarness(t, Options{})
	p := h.s.SeedConnection("ws-1")
	const n = 16
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for range n {
		wg.Go(func() {
			r, err := h.do(context.Background(), "/v1/oauth/token",
				map[string]string{"grant_type": "refresh_token", "refresh_token": p.RefreshToken})
			if err != nil {
				t.Error(err)
				return
			}
			statuses <- r.status
		})
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for s := range statuses {
		switch s {
		case 200:
			ok++
		case 400:
		default:
			t.Errorf("status %d", s)
		}
	}
	if ok != 1 || h.s.Stats().RefreshGrants != 1 || h.s.Stats().InvalidGrants != n-1 {
		t.Fatalf("%d successes, stats %+v; want exactly one rotation", ok, h.s.Stats())
	}
}

func TestExpiresIn(t *testing.T) {
	h := newHarness(t, Options{ExpiresIn: time.Hour})
	p := h.s.SeedConnection("")
	r := h.refresh(p.RefreshToken)
	if v, _ := r.body["expires_in"].(float64); v != 3600 {
		t.Fatalf("expires_in = %v, want 3600", r.body["expires_in"])
	}
}

func TestNullRefreshToken(t *testing.T) {
	h := newHarness(t, Options{NullRefreshToken: true})
	p := h.s.SeedConnection("")
	for i := range 2 {
		r := h.refresh(p.RefreshToken)
		if r.status != 200 {
			t.Fatalf("refresh %d: %d %v", i, r.status, r.body)
		}
		if v, ok := r.body["refresh_token"]; !ok || v != nil {
			t.Fatalf("refresh_token = %v (present %v), want null", v, ok)
		}
	}
}

func TestOldAccessTokensAfterRefresh(t *testing.T) {
	for _, revoke := range []bool{false, true} {
		t.Run(map[bool]string{false: "kept", true: "revoked"}[revoke], func(t *testing.T) {
			h := newHarness(t, Options{RevokeAccessTokensOnRefresh: revoke})
			p := h.s.SeedConnection("ws")
			r := h.refresh(p.RefreshToken)
			_, errOld := h.s.CheckAccessToken(p.AccessToken)
			_, errNew := h.s.CheckAccessToken(r.str("access_token"))
			if errNew != nil {
				t.Fatalf("new access token: %v", errNew)
			}
			if revoke != errors.Is(errOld, ErrTokenRevoked) || (!revoke && errOld != nil) {
				t.Fatalf("old access token: %v", errOld)
			}
		})
	}
}

func TestErrorStyles(t *testing.T) {
	check := func(t *testing.T, r reply, notion bool) {
		t.Helper()
		if r.status != 400 {
			t.Fatalf("status %d", r.status)
		}
		if notion {
			if r.str("object") != "error" || r.str("code") != "invalid_grant" || r.str("message") == "" ||
				r.body["status"] != float64(400) || r.str("request_id") == "" || r.header.Get("x-notion-request-id") == "" {
				t.Fatalf("not Notion-style: %v", r.body)
			}
			if _, ok := r.body["error"]; ok {
				t.Fatalf("Notion-style body has an error field: %v", r.body)
			}
			return
		}
		if r.str("error") != "invalid_grant" || r.str("error_description") == "" {
			t.Fatalf("not OAuth-style: %v", r.body)
		}
		if _, ok := r.body["code"]; ok {
			t.Fatalf("OAuth-style body has a code field: %v", r.body)
		}
	}
	t.Run("oauth", func(t *testing.T) {
		h := newHarness(t, Options{})
		check(t, h.refresh("nrt_unknown"), false)
	})
	t.Run("notion", func(t *testing.T) {
		h := newHarness(t, Options{ErrorStyle: ErrorStyleNotion})
		check(t, h.refresh("nrt_unknown"), true)
		h.s.SetErrorStyle(ErrorStyleOAuth)
		check(t, h.refresh("nrt_unknown"), false)
	})
	t.Run("alternating", func(t *testing.T) {
		h := newHarness(t, Options{ErrorStyle: ErrorStyleAlternating})
		for i := range 4 {
			check(t, h.refresh("nrt_unknown"), i%2 == 1)
		}
	})
}

func TestEchoTokensInErrors(t *testing.T) {
	h := newHarness(t, Options{EchoTokensInErrors: true})
	if r := h.refresh("nrt_secret123"); !strings.Contains(r.str("error_description"), "nrt_secret123") {
		t.Fatalf("description %q does not echo the token", r.str("error_description"))
	}
	h2 := newHarness(t, Options{})
	if r := h2.refresh("nrt_secret123"); strings.Contains(r.str("error_description"), "nrt_secret123") {
		t.Fatalf("description %q echoes the token by default", r.str("error_description"))
	}
}

func TestClientAuthAndVersion(t *testing.T) {
	h := newHarness(t, Options{ClientID: "cid", ClientSecret: "csecret"})
	p := h.s.SeedConnection("")
	body := map[string]string{"grant_type": "refresh_token", "refresh_token": p.RefreshToken}
	for name, mod := range map[string]reqMod{
		"missing":      withoutAuth,
		"wrong secret": withBasic("cid", "nope"),
		"wrong id":     withBasic("other", "csecret"),
	} {
		for _, path := range []string{"/v1/oauth/token", "/v1/oauth/revoke", "/v1/oauth/introspect"} {
			b := any(body)
			if path != "/v1/oauth/token" {
				b = map[string]string{"token": p.RefreshToken}
			}
			r := h.mustDo(path, b, mod)
			if r.status != 401 || r.str("error") != "invalid_client" {
				t.Errorf("%s %s: %d %v", name, path, r.status, r.body)
			}
		}
	}
	r := h.mustDo("/v1/oauth/token", body, withoutVersion)
	if r.status != 400 || r.str("code") != "missing_version" || r.str("object") != "error" {
		t.Errorf("missing version: %d %v", r.status, r.body)
	}
	if st := h.s.Stats(); st.RefreshGrants != 0 || st.InvalidClients != 9 {
		t.Errorf("stats %+v", st)
	}
	// The token survived all of that.
	if r := h.refresh(p.RefreshToken); r.status != 200 {
		t.Fatalf("refresh: %d %v", r.status, r.body)
	}
}

func TestBadTokenRequests(t *testing.T) {
	h := newHarness(t, Options{})
	for name, tc := range map[string]struct {
		body any
		code string
	}{
		"no grant type":   {map[string]string{"refresh_token": "x"}, "invalid_request"},
		"unknown grant":   {map[string]string{"grant_type": "password"}, "unsupported_grant_type"},
		"not an object":   {[]int{1}, "invalid_request"},
		"unknown refresh": {map[string]string{"grant_type": "refresh_token", "refresh_token": "nrt_x"}, "invalid_grant"},
		"empty code":      {map[string]string{"grant_type": "authorization_code"}, "invalid_grant"},
	} {
		r := h.mustDo("/v1/oauth/token", tc.body)
		if r.status != 400 || r.str("error") != tc.code {
			t.Errorf("%s: %d %v, want 400 %s", name, r.status, r.body, tc.code)
		}
	}
}

func TestExchange(t *testing.T) {
	h := newHarness(t, Options{})
	code := h.s.IssueCode(redirectURI)

	if r := h.exchange(code, redirectURI+"/"); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Fatalf("redirect mismatch: %d %v", r.status, r.body)
	}
	r := h.exchange(code, redirectURI)
	if r.status != 200 {
		t.Fatalf("exchange: %d %v", r.status, r.body)
	}
	ws := r.str("workspace_id")
	if ws == "" || !strings.HasPrefix(r.str("access_token"), "ntn_") || !strings.HasPrefix(r.str("refresh_token"), "nrt_") {
		t.Fatalf("exchange response %v", r.body)
	}
	if got, err := h.s.CheckAccessToken(r.str("access_token")); err != nil || got != ws {
		t.Fatalf("CheckAccessToken = %q, %v", got, err)
	}
	if r := h.exchange(code, redirectURI); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Fatalf("code reuse: %d %v", r.status, r.body)
	}
	if r := h.refresh(r.str("refresh_token")); r.status != 200 {
		t.Fatalf("refresh after exchange: %d %v", r.status, r.body)
	}
	if st := h.s.Stats(); st.Exchanges != 1 || st.InvalidGrants != 2 || st.RefreshGrants != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCodeLifetime(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	h := newHarness(t, Options{CodeLifetime: time.Minute, Now: clock.Now})
	code := h.s.IssueCode(redirectURI)
	clock.Advance(time.Minute)
	if r := h.exchange(code, redirectURI); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Fatalf("expired code: %d %v", r.status, r.body)
	}
}

func TestReauthorizationRevokesPreviousConnection(t *testing.T) {
	h := newHarness(t, Options{})
	old := h.s.SeedConnection("ws-1")
	r := h.exchange(h.s.IssueCodeFor("ws-1", redirectURI), redirectURI)
	if r.status != 200 || r.str("workspace_id") != "ws-1" {
		t.Fatalf("exchange: %d %v", r.status, r.body)
	}
	if r := h.refresh(old.RefreshToken); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Fatalf("old connection's refresh: %d %v", r.status, r.body)
	}
	if _, err := h.s.CheckAccessToken(old.AccessToken); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("old access token: %v", err)
	}
	if r := h.refresh(r.str("refresh_token")); r.status != 200 {
		t.Fatalf("new connection's refresh: %d %v", r.status, r.body)
	}
}

// authorize calls the authorize endpoint and returns the status and the
// redirect target.
func (h *harness) authorize(q url.Values) (int, *url.URL) {
	h.t.Helper()
	resp, err := h.c.Get(h.ts.URL + "/v1/oauth/authorize?" + q.Encode())
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return resp.StatusCode, nil
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, loc
}

func authorizeQuery(clientID string) url.Values {
	return url.Values{
		"client_id":     {clientID},
		"response_type": {"code"},
		"owner":         {"user"},
		"redirect_uri":  {redirectURI + "?keep=1"},
		"state":         {"st4te"},
	}
}

func TestAuthorize(t *testing.T) {
	h := newHarness(t, Options{})
	status, loc := h.authorize(authorizeQuery(DefaultClientID))
	if status != http.StatusFound {
		t.Fatalf("status %d", status)
	}
	if loc.Scheme+"://"+loc.Host+loc.Path != redirectURI || loc.Query().Get("keep") != "1" ||
		loc.Query().Get("state") != "st4te" || loc.Query().Get("code") == "" {
		t.Fatalf("redirect to %s", loc)
	}
	r := h.exchange(loc.Query().Get("code"), redirectURI+"?keep=1")
	if r.status != 200 {
		t.Fatalf("exchange: %d %v", r.status, r.body)
	}

	t.Run("errors redirect", func(t *testing.T) {
		for name, tc := range map[string]struct {
			key, value, want string
		}{
			"response_type": {"response_type", "token", "unsupported_response_type"},
			"owner":         {"owner", "workspace", "invalid_request"},
		} {
			q := authorizeQuery(DefaultClientID)
			q.Set(tc.key, tc.value)
			status, loc := h.authorize(q)
			if status != http.StatusFound || loc.Query().Get("error") != tc.want ||
				loc.Query().Get("state") != "st4te" || loc.Query().Has("code") {
				t.Errorf("%s: %d %v", name, status, loc)
			}
		}
	})
	t.Run("no redirect", func(t *testing.T) {
		q := authorizeQuery(DefaultClientID)
		q.Del("redirect_uri")
		if status, _ := h.authorize(q); status != http.StatusBadRequest {
			t.Errorf("missing redirect_uri: %d", status)
		}
		q.Set("redirect_uri", "/relative")
		if status, _ := h.authorize(q); status != http.StatusBadRequest {
			t.Errorf("relative redirect_uri: %d", status)
		}
		if status, _ := h.authorize(authorizeQuery("wrong-client")); status != http.StatusBadRequest {
			t.Errorf("wrong client_id: %d", status)
		}
	})
	t.Run("denied", func(t *testing.T) {
		h.s.DenyAuthorizations(true)
		defer h.s.DenyAuthorizations(false)
		status, loc := h.authorize(authorizeQuery(DefaultClientID))
		if status != http.StatusFound || loc.Query().Get("error") != "access_denied" || loc.Query().Has("code") {
			t.Errorf("denied: %d %v", status, loc)
		}
	})
}

func TestAuthorizeRegisteredRedirects(t *testing.T) {
	h := newHarness(t, Options{RedirectURIs: []string{redirectURI}})
	q := authorizeQuery(DefaultClientID)
	if status, _ := h.authorize(q); status != http.StatusBadRequest {
		t.Fatalf("unregistered redirect_uri: %d", status)
	}
	q.Set("redirect_uri", redirectURI)
	if status, loc := h.authorize(q); status != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("registered redirect_uri: %d %v", status, loc)
	}
}

func TestAuthorizeReusesWorkspace(t *testing.T) {
	h := newHarness(t, Options{AuthorizeWorkspaceID: "ws-fixed"})
	var pairs []reply
	for range 2 {
		_, loc := h.authorize(authorizeQuery(DefaultClientID))
		pairs = append(pairs, h.exchange(loc.Query().Get("code"), redirectURI+"?keep=1"))
	}
	if pairs[0].str("workspace_id") != "ws-fixed" || pairs[1].str("workspace_id") != "ws-fixed" ||
		pairs[0].str("bot_id") != pairs[1].str("bot_id") {
		t.Fatalf("responses %v / %v", pairs[0].body, pairs[1].body)
	}
	if r := h.refresh(pairs[0].str("refresh_token")); r.status != 400 {
		t.Fatalf("first authorization still live: %d", r.status)
	}

	h.s.SetAuthorizeWorkspace("")
	r := h.exchange(h.s.IssueCode(redirectURI), redirectURI)
	if ws := r.str("workspace_id"); ws == "ws-fixed" || ws == "" {
		t.Fatalf("workspace %q, want a new one", ws)
	}
}

func TestRevokeAndIntrospectEndpoints(t *testing.T) {
	h := newHarness(t, Options{})
	p := h.s.SeedConnection("ws-1")
	introspect := func(tok string) bool {
		t.Helper()
		r := h.mustDo("/v1/oauth/introspect", map[string]string{"token": tok})
		if r.status != 200 {
			t.Fatalf("introspect: %d %v", r.status, r.body)
		}
		active, ok := r.body["active"].(bool)
		if !ok {
			t.Fatalf("introspect body %v", r.body)
		}
		if active && r.body["iat"] == nil {
			t.Fatalf("active without iat: %v", r.body)
		}
		return active
	}
	if !introspect(p.AccessToken) || !introspect(p.RefreshToken) || introspect("ntn_unknown") {
		t.Fatal("introspect before revoke")
	}
	if r := h.mustDo("/v1/oauth/introspect", map[string]string{}); r.status != 400 {
		t.Fatalf("introspect without token: %d", r.status)
	}
	if r := h.mustDo("/v1/oauth/revoke", map[string]string{"token": "ntn_unknown"}); r.status != 200 {
		t.Fatalf("revoke unknown: %d %v", r.status, r.body)
	}
	if r := h.mustDo("/v1/oauth/revoke", map[string]string{"token": p.AccessToken}); r.status != 200 {
		t.Fatalf("revoke: %d %v", r.status, r.body)
	}
	if introspect(p.AccessToken) || introspect(p.RefreshToken) {
		t.Fatal("introspect after revoke")
	}
	if r := h.refresh(p.RefreshToken); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Fatalf("refresh after revoke: %d %v", r.status, r.body)
	}
	if st := h.s.Stats(); st.Revocations != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRevokeMethod(t *testing.T) {
	h := newHarness(t, Options{})
	p := h.s.SeedConnection("ws-1")
	h.s.Revoke("ws-1")
	if r := h.refresh(p.RefreshToken); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Fatalf("refresh after Revoke: %d %v", r.status, r.body)
	}
	if _, ok := h.s.CurrentPair("ws-1"); ok {
		t.Fatal("CurrentPair reports a revoked connection")
	}
}

func TestFailNext(t *testing.T) {
	h := newHarness(t, Options{})
	p := h.s.SeedConnection("ws")
	h.s.FailNext(2, http.StatusServiceUnavailable)
	for range 2 {
		r := h.refresh(p.RefreshToken)
		if r.status != 503 || r.str("code") != "service_unavailable" || r.str("object") != "error" {
			t.Fatalf("injected failure: %d %v", r.status, r.body)
		}
	}
	if st := h.s.Stats(); st.RefreshGrants != 0 || st.InjectedFailures != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Not rotated: the same token still works.
	if r := h.refresh(p.RefreshToken); r.status != 200 {
		t.Fatalf("refresh after failures: %d %v", r.status, r.body)
	}
}

func TestFailNextRejectsNonErrorStatus(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("FailNext(1, 200) did not panic")
		}
	}()
	New(Options{}).FailNext(1, 200)
}

func TestRateLimitNext(t *testing.T) {
	h := newHarness(t, Options{})
	p := h.s.SeedConnection("ws")
	h.s.RateLimitNext(1, 1500*time.Millisecond)
	h.s.FailNext(1, 500)
	r := h.refresh(p.RefreshToken)
	if r.status != 429 || r.header.Get("Retry-After") != "2" || r.str("code") != "rate_limited" {
		t.Fatalf("rate limited: %d %v %v", r.status, r.header, r.body)
	}
	if r := h.refresh(p.RefreshToken); r.status != 500 {
		t.Fatalf("second queued fault: %d", r.status)
	}
	if r := h.refresh(p.RefreshToken); r.status != 200 {
		t.Fatalf("after faults: %d %v", r.status, r.body)
	}
	if st := h.s.Stats(); st.RateLimited != 1 || st.RefreshGrants != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRotateThenDropNext(t *testing.T) {
	h := newHarness(t, Options{})
	p := h.s.SeedConnection("ws")
	h.s.RotateThenDropNext(1)

	// A failed refresh does not consume the drop.
	if r := h.refresh("nrt_unknown"); r.status != 400 {
		t.Fatalf("unknown token: %d", r.status)
	}
	_, err := h.do(context.Background(), "/v1/oauth/token",
		map[string]string{"grant_type": "refresh_token", "refresh_token": p.RefreshToken})
	if err == nil {
		t.Fatal("dropped request returned a response")
	}
	st := h.s.Stats()
	if st.RefreshGrants != 1 || st.Dropped != 1 || st.TokenRequests != 2 {
		t.Fatalf("stats %+v: want one committed rotation, one drop and no transport retry", st)
	}
	// The rotation was committed: the token the client still holds is dead.
	if r := h.refresh(p.RefreshToken); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Fatalf("retry with the spent token: %d %v", r.status, r.body)
	}
	cur, ok := h.s.CurrentPair("ws")
	if !ok || cur.RefreshToken == p.RefreshToken {
		t.Fatalf("CurrentPair %+v", cur)
	}
	if r := h.refresh(cur.RefreshToken); r.status != 200 {
		t.Fatalf("the rotated token: %d", r.status)
	}
}

func TestLatencyCommitsBeforeResponding(t *testing.T) {
	h := newHarness(t, Options{})
	p := h.s.SeedConnection("ws")
	h.s.SetLatency(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.do(ctx, "/v1/oauth/token",
			map[string]string{"grant_type": "refresh_token", "refresh_token": p.RefreshToken})
		done <- err
	}()
	waitFor(t, "the rotation", func() bool { return h.s.Stats().RefreshGrants == 1 })
	cancel() // the client gives up while the response is delayed
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v, want context.Canceled", err)
	}
	h.s.SetLatency(0)
	if r := h.refresh(p.RefreshToken); r.status != 400 {
		t.Fatalf("spent token: %d", r.status)
	}
}

func TestCloseAbortsDelayedRequests(t *testing.T) {
	h := newHarness(t, Options{})
	p := h.s.SeedConnection("ws")
	h.s.SetLatency(time.Hour)
	done := make(chan error, 1)
	go func() {
		_, err := h.do(context.Background(), "/v1/oauth/token",
			map[string]string{"grant_type": "refresh_token", "refresh_token": p.RefreshToken})
		done <- err
	}()
	waitFor(t, "the rotation", func() bool { return h.s.Stats().RefreshGrants == 1 })
	h.s.Close()
	if err := <-done; err == nil {
		t.Fatal("delayed request got a response after Close")
	}
}

// startRefresh sends a refresh in the background.
func (h *harness) startRefresh(ctx context.Context, rt string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		r, err := h.do(ctx, "/v1/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": rt})
		ch <- result{r, err}
	}()
	return ch
}

type result struct {
	r   reply
	err error
}

func TestGateParksBeforeRotating(t *testing.T) {
	h := newHarness(t, Options{})
	p := h.s.SeedConnection("ws")
	g := h.s.BlockRefresh()
	res := h.startRefresh(context.Background(), p.RefreshToken)

	a := <-g.Arrived()
	if a.Seq != 1 || a.WorkspaceID != "ws" || a.Rotated {
		t.Fatalf("arrival %+v", a)
	}
	if n := h.s.Stats().RefreshGrants; n != 0 {
		t.Fatalf("rotated while parked before the decision: %d", n)
	}
	g.Release()
	got := <-res
	if got.err != nil || got.r.status != 200 {
		t.Fatalf("released request: %v %d %v", got.err, got.r.status, got.r.body)
	}
	// The gate is gone: the next refresh is not parked.
	if r := h.refresh(got.r.str("refresh_token")); r.status != 200 {
		t.Fatalf("after release: %d", r.status)
	}
}

func TestGateRotateBeforeBlockThenAbort(t *testing.T) {
	h := newHarness(t, Options{})
	p := h.s.SeedConnection("ws")
	g := h.s.BlockRefreshWith(GateOptions{RotateBeforeBlock: true})
	res := h.startRefresh(context.Background(), p.RefreshToken)

	if a := <-g.Arrived(); !a.Rotated {
		t.Fatalf("arrival %+v, want Rotated", a)
	}
	if n := h.s.Stats().RefreshGrants; n != 1 {
		t.Fatalf("RefreshGrants = %d while parked after rotating", n)
	}
	g.Abort()
	if got := <-res; got.err == nil {
		t.Fatalf("aborted request got a response: %d %v", got.r.status, got.r.body)
	}
	if r := h.refresh(p.RefreshToken); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Fatalf("spent token after abort: %d %v", r.status, r.body)
	}
	if st := h.s.Stats(); st.Dropped != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGateAbortBeforeRotatingLeavesTokenLive(t *testing.T) {
	h := newHarness(t, Options{})
	p := h.s.SeedConnection("ws")
	g := h.s.BlockRefresh()
	ctx, cancel := context.WithCancel(context.Background())
	res := h.startRefresh(ctx, p.RefreshToken)
	<-g.Arrived()
	cancel() // the client dies while its request is in flight
	if got := <-res; !errors.Is(got.err, context.Canceled) {
		t.Fatalf("client error %v", got.err)
	}
	g.Abort()
	if r := h.refresh(p.RefreshToken); r.status != 200 {
		t.Fatalf("token after an aborted, undecided request: %d %v", r.status, r.body)
	}
	if n := h.s.Stats().RefreshGrants; n != 1 {
		t.Fatalf("RefreshGrants = %d, want 1", n)
	}
}

func TestGateCountAndPerRequestDecision(t *testing.T) {
	h := newHarness(t, Options{})
	p := h.s.SeedConnection("ws")
	g := h.s.BlockRefreshWith(GateOptions{
		Count:                 2,
		RotateBeforeBlockFunc: func(seq int) bool { return seq == 1 },
	})
	first := h.startRefresh(context.Background(), p.RefreshToken)
	if a := <-g.Arrived(); a.Seq != 1 || !a.Rotated {
		t.Fatalf("first arrival %+v", a)
	}
	second := h.startRefresh(context.Background(), p.RefreshToken)
	if a := <-g.Arrived(); a.Seq != 2 || a.Rotated {
		t.Fatalf("second arrival %+v", a)
	}
	// The gate is full: a third request passes (and loses: the token is spent).
	if r := h.refresh(p.RefreshToken); r.status != 400 {
		t.Fatalf("third request: %d", r.status)
	}
	g.Release()
	if got := <-first; got.err != nil || got.r.status != 200 {
		t.Fatalf("first: %v %d", got.err, got.r.status)
	}
	if got := <-second; got.err != nil || got.r.status != 400 || got.r.str("error") != "invalid_grant" {
		t.Fatalf("second: %v %d %v", got.err, got.r.status, got.r.body)
	}
}

func TestCloseAbortsParkedRequests(t *testing.T) {
	h := newHarness(t, Options{})
	p := h.s.SeedConnection("ws")
	g := h.s.BlockRefresh()
	res := h.startRefresh(context.Background(), p.RefreshToken)
	<-g.Arrived()
	h.s.Close()
	if got := <-res; got.err == nil {
		t.Fatal("parked request got a response after Close")
	}
	if n := h.s.Stats().RefreshGrants; n != 0 {
		t.Fatalf("RefreshGrants = %d", n)
	}
}

// A chosen workspace id is named whole ("sandbox-ws" was cut to
// "Fake Workspace sandbox-"); a random UUID by its first group.
func TestWorkspaceName(t *testing.T) {
	h := newHarness(t, Options{})
	r := h.refresh(h.s.SeedConnection("sandbox-ws").RefreshToken)
	if r.status != 200 || r.str("workspace_name") != "Fake Workspace sandbox-ws" {
		t.Errorf("seeded sandbox-ws: %d, workspace_name %q", r.status, r.str("workspace_name"))
	}
	r = h.refresh(h.s.SeedConnection("").RefreshToken)
	id := r.str("workspace_id")
	if r.status != 200 || len(id) != 36 || r.str("workspace_name") != "Fake Workspace "+id[:8] {
		t.Errorf("random workspace %q: %d, workspace_name %q", id, r.status, r.str("workspace_name"))
	}
}
