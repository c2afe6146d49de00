package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/tokens"
	"github.com/notionsync/notionsync/tokens/notionauth"
)

// redisSrv is the package's redis-server; tests keep apart by key prefix.
var redisSrv *redistest.Server

// cluster is the package's Redis Cluster (3 masters, 3 replicas), started
// by the first test that asks for it and stopped by TestMain.
var cluster redistest.LazyCluster

func clusterOf(tb testing.TB) *redistest.Cluster { return cluster.Get(tb) }

func TestMain(m *testing.M) {
	code := redistest.RunMain(m, redistest.Options{}, func(s *redistest.Server) { redisSrv = s })
	if err := cluster.Stop(); err != nil {
		os.Stderr.WriteString("stop the redis cluster: " + err.Error() + "\n")
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

const testAdminToken = "admin-token-0123456789-abcdef"

var errTest = errors.New("test failure")

func nopLogger() *zap.Logger { return zap.NewNop() }

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// list is a slice safe for concurrent appends (hooks run on server
// goroutines).
type list[T any] struct {
	mu sync.Mutex
	v  []T
}

func (l *list[T]) add(v T) {
	l.mu.Lock()
	l.v = append(l.v, v)
	l.mu.Unlock()
}

func (l *list[T]) get() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]T(nil), l.v...)
}

// deadAddr returns a loopback address nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// deadRedis returns a client of a port nobody listens on.
func deadRedis(t *testing.T) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: deadAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// fakeEnqueuer records what the server enqueues.
type fakeEnqueuer struct {
	mu        sync.Mutex
	syncs     []string
	refreshes []string
	recons    []string
	err       error
}

func (f *fakeEnqueuer) ReconcileNow(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.recons = append(f.recons, id)
	return nil
}

func (f *fakeEnqueuer) SyncNow(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.syncs = append(f.syncs, id)
	return nil
}

func (f *fakeEnqueuer) RefreshNow(_ context.Context, id string, _ int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.refreshes = append(f.refreshes, id)
	return nil
}

func (f *fakeEnqueuer) setErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *fakeEnqueuer) syncCount(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.syncs {
		if s == id {
			n++
		}
	}
	return n
}

func (f *fakeEnqueuer) refreshCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.refreshes)
}

func (f *fakeEnqueuer) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.syncs) + len(f.refreshes)
}

// harness is one test's world: a fake Notion, a Redis key space, the token
// store and source, the control Server on an httptest server, and a log
// observer.
type harness struct {
	t       *testing.T
	fake    *notionfake.Server
	fakeURL string
	rdb     redis.UniversalClient
	prefix  string
	clock   *clock
	store   *tokens.Store
	source  *tokens.Source
	oauth   *notionauth.Client
	enq     *fakeEnqueuer
	logs    *observer.ObservedLogs
	log     *zap.Logger
	cfg     Config
	srv     *Server
	ts      *httptest.Server
	// callback, when set, serves /oauth/callback instead of srv.
	callback atomic.Pointer[Server]

	mu     sync.Mutex
	bodies []string // every response body a test client read
	urls   []string // every URL a test client requested
}

type harnessOptions struct {
	fake notionfake.Options
	// config adjusts the Server's Config before New.
	config func(*Config)
	// enqueuer replaces the fakeEnqueuer.
	enqueuer Enqueuer
	// keys are extra keyring keys after k1 (the primary), for key rotation.
	keys []tokens.Key
	// cluster runs the harness on the package's Redis Cluster.
	cluster bool
}

// testKey is the harness's primary key k1.
var testKey = tokens.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}

var timing = tokens.Timing{AccessTokenLifetime: time.Hour, RefreshMargin: 10 * time.Minute, RefreshJitter: time.Minute}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, clock: &clock{t: time.Now()}, enq: &fakeEnqueuer{}, prefix: redistest.UniquePrefix(t)}
	h.fake, h.fakeURL = func() (*notionfake.Server, string) {
		f, ts := notionfake.NewTest(t, o.fake)
		return f, ts.URL
	}()
	if o.cluster {
		h.rdb = clusterOf(t).Client()
	} else {
		h.rdb = redis.NewClient(&redis.Options{Addr: redisSrv.Addr()})
	}
	t.Cleanup(func() { h.rdb.Close() })
	core, logs := observer.New(zapcore.DebugLevel)
	h.logs, h.log = logs, zap.New(core)

	kr, err := tokens.NewKeyring(append([]tokens.Key{testKey}, o.keys...)...)
	if err != nil {
		t.Fatal(err)
	}
	h.store, err = tokens.NewStore(tokens.StoreConfig{Redis: h.rdb, Keyring: kr, KeyPrefix: h.prefix, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	h.oauth, err = notionauth.New(notionauth.Config{ClientID: h.fake.ClientID(), ClientSecret: h.fake.ClientSecret(),
		BaseURL: h.fakeURL, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	h.source, err = tokens.NewSource(context.Background(), tokens.Config{Store: h.store, Provider: h.oauth, Timing: timing, Logger: h.log,
		// No in-process cache: tests read the store right after changing it.
		CacheMaxAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.source.Close() })

	var current atomic.Pointer[Server]
	h.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cb := h.callback.Load(); cb != nil && r.URL.Path == CallbackPath {
			cb.Handler().ServeHTTP(w, r)
			return
		}
		current.Load().Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(h.ts.Close)

	var enq Enqueuer = h.enq
	if o.enqueuer != nil {
		enq = o.enqueuer
	}
	h.cfg = Config{
		Source: h.source, OAuth: h.oauth, Redis: h.rdb, Enqueuer: enq,
		PublicURL: h.ts.URL, AdminToken: testAdminToken, KeyPrefix: h.prefix,
		Timing: timing, Logger: h.log, Now: h.clock.Now,
	}
	if o.config != nil {
		o.config(&h.cfg)
	}
	h.srv = h.newServer(h.cfg)
	current.Store(h.srv)
	return h
}

func (h *harness) newServer(cfg Config) *Server {
	h.t.Helper()
	s, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		if err := s.Close(); err != nil {
			h.t.Error(err)
		}
	})
	return s
}

// recordingTransport keeps every URL requested and every body the control
// server sent.
type recordingTransport struct {
	h    *harness
	base http.RoundTripper
}

func (rt recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.h.mu.Lock()
	rt.h.urls = append(rt.h.urls, req.URL.String())
	rt.h.mu.Unlock()
	resp, err := rt.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if req.URL.Host == strings.TrimPrefix(rt.h.ts.URL, "http://") {
		rt.h.mu.Lock()
		rt.h.bodies = append(rt.h.bodies, string(b))
		rt.h.mu.Unlock()
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// browser is an HTTP client with a cookie jar that follows redirects,
// optionally stopping before the OAuth callback.
type browser struct {
	c    *http.Client
	jar  http.CookieJar
	stop bool // stop before requesting the callback
}

func (h *harness) browser() *browser {
	h.t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	tr := &http.Transport{}
	h.t.Cleanup(tr.CloseIdleConnections)
	b := &browser{jar: jar}
	b.c = &http.Client{
		Jar:       jar,
		Transport: recordingTransport{h: h, base: tr},
		Timeout:   30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if b.stop && req.URL.Path == CallbackPath {
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
	return b
}

type response struct {
	status int
	header http.Header
	body   string
	url    *url.URL
}

func (h *harness) do(c *http.Client, req *http.Request) response {
	h.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b), url: resp.Request.URL}
}

func (h *harness) get(b *browser, rawURL string) response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(b.c, req)
}

// authorize runs a flow up to Notion's redirect back and returns the
// callback URL the browser would open next.
func (h *harness) authorize(b *browser, startQuery string) *url.URL {
	h.t.Helper()
	b.stop = true
	defer func() { b.stop = false }()
	u := h.ts.URL + StartPath
	if startQuery != "" {
		u += "?" + startQuery
	}
	resp := h.get(b, u)
	if resp.status != http.StatusFound {
		h.t.Fatalf("authorize: status %d, want 302 to the callback; body: %s", resp.status, resp.body)
	}
	loc, err := url.Parse(resp.header.Get("Location"))
	if err != nil || loc.Path != CallbackPath {
		h.t.Fatalf("authorize: redirected to %q, want the callback", resp.header.Get("Location"))
	}
	return loc
}

// connect runs the whole OAuth flow in a fresh browser and returns the
// final page.
func (h *harness) connect(startQuery string) response {
	h.t.Helper()
	b := h.browser()
	u := h.ts.URL + StartPath
	if startQuery != "" {
		u += "?" + startQuery
	}
	return h.get(b, u)
}

// api calls the admin API with the admin token.
func (h *harness) api(method, path string, body any) response {
	h.t.Helper()
	return h.apiAs(testAdminToken, method, path, body)
}

func (h *harness) apiAs(token, method, path string, body any) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.ts.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return h.do(h.browser().c, req)
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, r.body, err)
	}
	return v
}

func (h *harness) conn(id string) *tokens.Connection {
	h.t.Helper()
	c, err := h.store.Get(context.Background(), id)
	if err != nil {
		h.t.Fatalf("connection %s: %v", id, err)
	}
	return c
}

// onlyConnection returns the one connection in the store.
func (h *harness) onlyConnection() *tokens.Connection {
	h.t.Helper()
	conns, _, err := h.store.List(context.Background(), "", 10)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(conns) != 1 {
		h.t.Fatalf("%d connections, want 1", len(conns))
	}
	return conns[0]
}

func (h *harness) connectionCount() int {
	h.t.Helper()
	conns, _, err := h.store.List(context.Background(), "", 100)
	if err != nil {
		h.t.Fatal(err)
	}
	return len(conns)
}

// seed creates a connection at the fake and imports its pair under id.
func (h *harness) seed(id, workspaceID string) notionfake.Pair {
	h.t.Helper()
	p := h.fake.SeedConnection(workspaceID)
	_, err := h.store.Connect(context.Background(), id, &tokens.Grant{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken},
		timing, tokens.ConnectOptions{Meta: map[string]string{MetaWorkspaceID: p.WorkspaceID}})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// logText renders every observed log entry with its fields.
func (h *harness) logText() []string {
	var out []string
	for _, e := range h.logs.All() {
		line := e.Level.String() + " " + e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + toString(v)
		}
		out = append(out, line)
	}
	return out
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case error:
		return x.Error()
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// assertNoSecrets fails if any secret appears in a response body a test
// client read (except in allowed bodies) or in a log line.
func (h *harness) assertNoSecrets(secrets []string, allowed func(body string) bool) {
	h.t.Helper()
	h.mu.Lock()
	bodies := append([]string(nil), h.bodies...)
	h.mu.Unlock()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, b := range bodies {
			if strings.Contains(b, s) && (allowed == nil || !allowed(b)) {
				h.t.Errorf("a secret (%d chars) appears in a response body: %.200q", len(s), b)
			}
		}
		for _, l := range h.logText() {
			if strings.Contains(l, s) {
				h.t.Errorf("a secret (%d chars) appears in a log line: %.300q", len(s), l)
			}
		}
	}
}

func contains(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%.400q does not contain %q", s, sub)
	}
}

// link mints a reconnect link through the admin API.
func (h *harness) link(id string) ReconnectLink {
	h.t.Helper()
	resp := h.api(http.MethodPost, "/api/v1/connections/"+id+"/reconnect-link", nil)
	if resp.status != http.StatusCreated {
		h.t.Fatalf("mint a link for %s: %d %s", id, resp.status, resp.body)
	}
	return decode[ReconnectLink](h.t, resp)
}

// linkQuery returns the query of a fresh reconnect link for id.
func (h *harness) linkQuery(id string) string {
	h.t.Helper()
	u, err := url.Parse(h.link(id).URL)
	if err != nil {
		h.t.Fatal(err)
	}
	return u.RawQuery
}
