package notionfake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is a fake served over httptest plus a client that does not follow
// redirects.
type harness struct {
	t  *testing.T
	s  *Server
	ts *httptest.Server
	c  *http.Client
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	s, ts := NewTest(t, opts)
	c := ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &harness{t: t, s: s, ts: ts, c: c}
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
}

func (r reply) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// errCode returns the error code of either body shape.
func (r reply) errCode() string {
	if c := r.str("error"); c != "" {
		return c
	}
	return r.str("code")
}

type reqMod func(*http.Request)

func withoutVersion(r *http.Request) { r.Header.Del("Notion-Version") }
func withoutAuth(r *http.Request)    { r.Header.Del("Authorization") }
func withBasic(id, secret string) reqMod {
	return func(r *http.Request) { r.SetBasicAuth(id, secret) }
}

// do sends an OAuth request the way Notion expects it, modified by mods. It
// may run on any goroutine: it reports problems as errors, never t.Fatal.
func (h *harness) do(ctx context.Context, path string, body any, mods ...reqMod) (reply, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return reply{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.ts.URL+path, bytes.NewReader(b))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Notion-Version", "2022-06-28")
	req.SetBasicAuth(h.s.ClientID(), h.s.ClientSecret())
	for _, m := range mods {
		m(req)
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		return reply{}, fmt.Errorf("response %d is not JSON: %q", resp.StatusCode, raw)
	}
	return r, nil
}

func (h *harness) mustDo(path string, body any, mods ...reqMod) reply {
	h.t.Helper()
	r, err := h.do(context.Background(), path, body, mods...)
	if err != nil {
		h.t.Fatalf("POST %s: %v", path, err)
	}
	return r
}

func (h *harness) refresh(rt string, mods ...reqMod) reply {
	h.t.Helper()
	return h.mustDo("/v1/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": rt}, mods...)
}

func (h *harness) exchange(code, redirectURI string) reply {
	h.t.Helper()
	return h.mustDo("/v1/oauth/token", map[string]string{
		"grant_type": "authorization_code", "code": code, "redirect_uri": redirectURI})
}

// waitFor polls cond until it holds, failing the test after 5 s. It is used
// only where the fake offers no event to wait on (a handler inside its
// latency wait).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestCheckAccessToken(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := New(Options{AccessTokenLifetime: time.Hour, Now: clock.Now})
	p := s.SeedConnection("ws-1")

	if ws, err := s.CheckAccessToken(p.AccessToken); err != nil || ws != "ws-1" {
		t.Fatalf("fresh token: ws %q, err %v", ws, err)
	}
	if _, err := s.CheckAccessToken("ntn_nope"); !errors.Is(err, ErrUnknownToken) {
		t.Fatalf("unknown token: err %v, want ErrUnknownToken", err)
	}
	clock.Advance(time.Hour - time.Nanosecond)
	if _, err := s.CheckAccessToken(p.AccessToken); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	clock.Advance(time.Nanosecond)
	if ws, err := s.CheckAccessToken(p.AccessToken); !errors.Is(err, ErrTokenExpired) || ws != "ws-1" {
		t.Fatalf("at expiry: ws %q, err %v, want ErrTokenExpired", ws, err)
	}

	p2 := s.SeedConnection("ws-2")
	if !s.Revoke("ws-2") {
		t.Fatal("Revoke reported no live connection")
	}
	if s.Revoke("ws-2") {
		t.Fatal("second Revoke reported a live connection")
	}
	if _, err := s.CheckAccessToken(p2.AccessToken); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("revoked: err %v, want ErrTokenRevoked", err)
	}
}

func TestAccessTokensNeverExpireByDefault(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	s := New(Options{Now: clock.Now})
	p := s.SeedConnection("")
	clock.Advance(100 * 365 * 24 * time.Hour)
	if _, err := s.CheckAccessToken(p.AccessToken); err != nil {
		t.Fatalf("CheckAccessToken: %v", err)
	}
}

func TestAuthenticateOnExtraRoute(t *testing.T) {
	h := newHarness(t, Options{})
	h.s.Mux().HandleFunc("GET /v1/users/me", func(w http.ResponseWriter, r *http.Request) {
		ws, ok := h.s.Authenticate(w, r)
		if !ok {
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"workspace": ws})
	})
	p := h.s.SeedConnection("ws-a")

	get := func(token string, version bool) reply {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, h.ts.URL+"/v1/users/me", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if version {
			req.Header.Set("Notion-Version", "2022-06-28")
		}
		resp, err := h.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		r := reply{status: resp.StatusCode, header: resp.Header}
		if err := json.NewDecoder(resp.Body).Decode(&r.body); err != nil {
			t.Fatal(err)
		}
		return r
	}

	if r := get(p.AccessToken, true); r.status != 200 || r.str("workspace") != "ws-a" {
		t.Fatalf("good token: %d %v", r.status, r.body)
	}
	if r := get(p.AccessToken, false); r.status != 400 || r.str("code") != "missing_version" {
		t.Fatalf("no version: %d %v", r.status, r.body)
	}
	for _, tok := range []string{"", "ntn_unknown"} {
		r := get(tok, true)
		if r.status != 401 || r.str("code") != "unauthorized" || r.str("object") != "error" {
			t.Fatalf("token %q: %d %v", tok, r.status, r.body)
		}
		if r.header.Get("x-notion-request-id") == "" || r.header.Get("x-notion-request-id") != r.str("request_id") {
			t.Fatalf("request id header %q vs body %q", r.header.Get("x-notion-request-id"), r.str("request_id"))
		}
	}
	h.s.Revoke("ws-a")
	if r := get(p.AccessToken, true); r.status != 401 {
		t.Fatalf("revoked token: %d", r.status)
	}
}

func TestUnknownRoute(t *testing.T) {
	h := newHarness(t, Options{})
	r := h.mustDo("/v1/nope", map[string]string{})
	if r.status != 400 || r.str("code") != "invalid_request_url" {
		t.Fatalf("got %d %v", r.status, r.body)
	}
}

func TestTokenFormats(t *testing.T) {
	s := New(Options{})
	a, b := s.SeedConnection(""), s.SeedConnection("")
	for _, p := range []Pair{a, b} {
		if !strings.HasPrefix(p.AccessToken, "ntn_") || len(p.AccessToken) < 40 {
			t.Errorf("access token %q", p.AccessToken)
		}
		if !strings.HasPrefix(p.RefreshToken, "nrt_") || len(p.RefreshToken) < 40 {
			t.Errorf("refresh token %q", p.RefreshToken)
		}
		if len(p.WorkspaceID) != 36 {
			t.Errorf("workspace id %q is not a UUID", p.WorkspaceID)
		}
	}
	if a.AccessToken == b.AccessToken || a.RefreshToken == b.RefreshToken || a.WorkspaceID == b.WorkspaceID {
		t.Fatal("two seeds share a value")
	}
}

func TestExtLockedKeepsOneValuePerKey(t *testing.T) {
	type key struct{}
	s := New(Options{})
	calls := 0
	mk := func() any { calls++; return &calls }
	s.mu.Lock()
	a := s.extLocked(key{}, mk)
	b := s.extLocked(key{}, mk)
	s.mu.Unlock()
	if a != b || calls != 1 {
		t.Fatalf("extLocked created %d values", calls)
	}
}
