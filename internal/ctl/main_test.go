package ctl

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/internal/control"
	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/tokens"
	"github.com/notionsync/notionsync/tokens/notionauth"
)

// redisSrv is the package's redis-server; tests keep apart by key prefix.
var redisSrv *redistest.Server

func TestMain(m *testing.M) {
	code := redistest.RunMain(m, redistest.Options{}, func(s *redistest.Server) { redisSrv = s })
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

const adminToken = "ctl-admin-token-0123456789-abcdef"

var timing = tokens.Timing{AccessTokenLifetime: time.Hour, RefreshMargin: 10 * time.Minute, RefreshJitter: time.Minute}

// clock is a settable clock shared by the store and the server.
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

// fakeEnqueuer records what the server enqueues.
type fakeEnqueuer struct {
	mu        sync.Mutex
	syncs     []string
	refreshes []string
	recons    []string
}

func (f *fakeEnqueuer) ReconcileNow(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recons = append(f.recons, id)
	return nil
}

func (f *fakeEnqueuer) SyncNow(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncs = append(f.syncs, id)
	return nil
}

func (f *fakeEnqueuer) RefreshNow(_ context.Context, id string, _ int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshes = append(f.refreshes, id)
	return nil
}

func (f *fakeEnqueuer) got() (syncs, refreshes []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.syncs...), append([]string(nil), f.refreshes...)
}

// world is one test's control plane: a fake Notion, a Redis key space, the
// token store and source, the real control server behind httptest, and a
// fixed clock for the CLI.
type world struct {
	t     *testing.T
	fake  *notionfake.Server
	store *tokens.Store
	enq   *fakeEnqueuer
	clock *clock
	start time.Time // the CLI's "now": the clock's start
	url   string

	mu      sync.Mutex
	syncs   map[string]jobs.SyncState // what SyncInfo returns; absent: an error
	secrets []string                  // never to appear in the CLI's output
}

func newWorld(t *testing.T) *world {
	t.Helper()
	start := time.Now().UTC().Truncate(time.Second)
	w := &world{t: t, enq: &fakeEnqueuer{}, clock: &clock{t: start}, start: start,
		syncs: map[string]jobs.SyncState{}, secrets: []string{adminToken}}
	fake, fakeTS := notionfake.NewTest(t, notionfake.Options{})
	w.fake = fake
	w.secrets = append(w.secrets, fake.ClientSecret())

	rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	prefix := redistest.UniquePrefix(t)
	kr, err := tokens.NewKeyring(tokens.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	w.store, err = tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: kr, KeyPrefix: prefix, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	oauth, err := notionauth.New(notionauth.Config{ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(),
		BaseURL: fakeTS.URL, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	source, err := tokens.NewSource(context.Background(), tokens.Config{Store: w.store, Provider: oauth, Timing: timing,
		Logger: zap.NewNop(), CacheMaxAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { source.Close() })

	// The handler is set once the server exists: PublicURL needs the
	// httptest URL first.
	var handler http.Handler
	ready := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		<-ready
		handler.ServeHTTP(rw, r)
	}))
	t.Cleanup(ts.Close)
	w.url = ts.URL
	srv, err := control.New(control.Config{
		Source: source, OAuth: oauth, Redis: rdb, Enqueuer: w.enq,
		PublicURL: ts.URL, AdminToken: adminToken, KeyPrefix: prefix, Timing: timing, Now: w.clock.Now,
		SyncInfo: func(_ context.Context, id string) (any, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			st, ok := w.syncs[id]
			if !ok {
				return nil, errors.New("no sync state in this test")
			}
			return st, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	handler = srv.Handler()
	close(ready)
	return w
}

func (w *world) setSync(id string, st jobs.SyncState) {
	w.mu.Lock()
	w.syncs[id] = st
	w.mu.Unlock()
}

// seed creates a connection at the fake and stores its pair under id; the
// clock then moves 1ms so that connections list in seeding order.
func (w *world) seed(id string) notionfake.Pair {
	w.t.Helper()
	p := w.fake.SeedConnection("")
	w.addSecrets(p.AccessToken, p.RefreshToken)
	_, err := w.store.Connect(context.Background(), id, &tokens.Grant{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken},
		timing, tokens.ConnectOptions{Meta: map[string]string{control.MetaWorkspaceID: p.WorkspaceID, control.MetaWorkspaceName: "Acme"}})
	if err != nil {
		w.t.Fatal(err)
	}
	w.clock.Advance(time.Millisecond)
	return p
}

func (w *world) addSecrets(s ...string) {
	w.mu.Lock()
	w.secrets = append(w.secrets, s...)
	w.mu.Unlock()
}

func (w *world) conn(id string) *tokens.Connection {
	w.t.Helper()
	c, err := w.store.Get(context.Background(), id)
	if err != nil {
		w.t.Fatalf("connection %s: %v", id, err)
	}
	return c
}

// result is what one CLI run produced.
type result struct {
	code           int
	stdout, stderr string
}

// opts adjust the Env of one run.
type opts struct {
	stdin    string
	terminal bool
	env      map[string]string // replaces the default environment
}

// run runs the CLI against the world's server with the admin token in the
// environment, and checks that no secret appears in its output.
func (w *world) run(o opts, args ...string) result {
	w.t.Helper()
	env := o.env
	if env == nil {
		env = map[string]string{EnvServer: w.url, EnvToken: adminToken}
	}
	r := runCLI(w.t, o, env, w.start, args...)
	w.mu.Lock()
	secrets := append([]string(nil), w.secrets...)
	w.mu.Unlock()
	for _, s := range secrets {
		if s != "" && (strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s)) {
			w.t.Errorf("%v: a secret (%d chars) appears in the output:\nstdout: %s\nstderr: %s", args, len(s), r.stdout, r.stderr)
		}
	}
	return r
}

func runCLI(t *testing.T, o opts, env map[string]string, now time.Time, args ...string) result {
	t.Helper()
	var stdout, stderr strings.Builder
	code := Run(context.Background(), args, Env{
		Stdin: strings.NewReader(o.stdin), Stdout: &stdout, Stderr: &stderr,
		Getenv:          func(k string) string { return env[k] },
		StdinIsTerminal: o.terminal,
		Now:             func() time.Time { return now },
	})
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// expect checks the exit code and that stderr contains want (when set).
func (r result) expect(t *testing.T, code int, stderrWant ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stderrWant {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr %q does not contain %q", r.stderr, s)
		}
	}
}

// deadURL returns an http URL of a loopback port nobody listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}
