package tokens_test

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/tokens"
	"github.com/notionsync/notionsync/tokens/notionauth"
)

// redisSrv is the package's redis-server, started by TestMain.
var redisSrv *redistest.Server

// cluster is the package's Redis Cluster (3 masters, 3 replicas), started
// by the first test that needs it and stopped by TestMain: one per package
// run, shared by every test (each uses its own key prefix).
var cluster redistest.LazyCluster

func sharedCluster(t testing.TB) *redistest.Cluster { return cluster.Get(t) }

// onBackends runs body twice, as the subtests "redis" (one redis-server)
// and "cluster" (a 3-master Redis Cluster): newEnv and backendClient give
// a test the backend its subtest names, so the same body proves the same
// invariants on both. A parallel body makes the pair parallel too.
func onBackends(t *testing.T, parallel bool, body func(t *testing.T)) {
	t.Helper()
	if parallel {
		t.Parallel()
	}
	for _, name := range []string{"redis", "cluster"} {
		t.Run(name, body)
	}
}

// onCluster reports whether t runs under onBackends' "cluster" subtest.
func onCluster(t testing.TB) bool {
	parts := strings.Split(t.Name(), "/")
	return len(parts) > 1 && parts[1] == "cluster"
}

// backendClient returns a new client of t's backend (see onBackends),
// closed when the test ends.
func backendClient(t testing.TB) redis.UniversalClient {
	t.Helper()
	var rdb redis.UniversalClient
	if onCluster(t) {
		rdb = sharedCluster(t).Client()
	} else {
		rdb = redis.NewClient(&redis.Options{Addr: redisSrv.Addr()})
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// backendAddrs returns what a helper process needs to reach t's backend:
// its addresses (comma-separated) and whether it is a cluster.
func backendAddrs(t testing.TB) (addrs string, cluster bool) {
	if onCluster(t) {
		return strings.Join(sharedCluster(t).Addrs(), ","), true
	}
	return redisSrv.Addr(), false
}

// redisKeys returns the keys matching pattern, from every master of a
// cluster (KEYS on one node sees only its own slots).
func redisKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return rdb.Keys(ctx, pattern).Result()
	}
	var mu sync.Mutex
	var out []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		ks, err := c.Keys(ctx, pattern).Result()
		mu.Lock()
		out = append(out, ks...)
		mu.Unlock()
		return err
	})
	return out, err
}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	code := redistest.RunMain(m, redistest.Options{}, func(s *redistest.Server) { redisSrv = s })
	if err := cluster.Stop(); err != nil {
		os.Stderr.WriteString("stop cluster: " + err.Error() + "\n")
		code = max(code, 1)
	}
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// clock is a settable clock shared by a test's stores.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

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

// env is one test's world: a fake Notion, a Redis key space, a keyring and a
// clock. Sources built from it behave like separate processes sharing Redis.
type env struct {
	t      *testing.T
	fake   *notionfake.Server
	url    string
	rdb    redis.UniversalClient
	prefix string
	keys   *tokens.Keyring
	clock  *clock
	logs   *observer.ObservedLogs
	logger *zap.Logger
}

func newEnv(t *testing.T, opts notionfake.Options) *env {
	t.Helper()
	fake, hs := notionfake.NewTest(t, opts)
	rdb := backendClient(t)
	core, logs := observer.New(zapcore.DebugLevel)
	return &env{
		t: t, fake: fake, url: hs.URL, rdb: rdb,
		prefix: redistest.UniquePrefix(t),
		keys:   newKeyring(t, "k1"),
		clock:  newClock(),
		logs:   logs, logger: zap.New(core),
	}
}

func newKeyring(t testing.TB, ids ...string) *tokens.Keyring {
	t.Helper()
	var keys []tokens.Key
	for _, id := range ids {
		keys = append(keys, tokens.Key{ID: id, Secret: keyBytes(id)})
	}
	kr, err := tokens.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// keyBytes derives a deterministic test key from its id.
func keyBytes(id string) []byte {
	b := make([]byte, 32)
	copy(b, id+"-0123456789abcdefghijklmnopqrstuvwxyz")
	return b
}

func (e *env) store(kr *tokens.Keyring) *tokens.Store {
	e.t.Helper()
	if kr == nil {
		kr = e.keys
	}
	st, err := tokens.NewStore(tokens.StoreConfig{Redis: e.rdb, Keyring: kr, KeyPrefix: e.prefix, Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) provider() *notionauth.Client {
	e.t.Helper()
	c, err := notionauth.New(notionauth.Config{
		ClientID: e.fake.ClientID(), ClientSecret: e.fake.ClientSecret(), BaseURL: e.url,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// source builds a Source (one "process"); mod adjusts its config.
func (e *env) source(mod func(*tokens.Config)) *tokens.Source {
	e.t.Helper()
	cfg := tokens.Config{
		Store:    e.store(nil),
		Provider: e.provider(),
		Timing:   tokens.Timing{AccessTokenLifetime: time.Hour, RefreshMargin: 10 * time.Minute, RefreshJitter: time.Minute},
		Logger:   e.logger,
	}
	if mod != nil {
		mod(&cfg)
	}
	src, err := tokens.NewSource(context.Background(), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { src.Close() })
	return src
}

// connect seeds a workspace at the fake and stores its pair under id.
func (e *env) connect(id string) notionfake.Pair {
	e.t.Helper()
	p := e.fake.SeedConnection(id)
	_, err := e.store(nil).Connect(context.Background(), id,
		&tokens.Grant{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken},
		tokens.Timing{AccessTokenLifetime: time.Hour, RefreshMargin: 10 * time.Minute, RefreshJitter: time.Minute},
		tokens.ConnectOptions{Meta: map[string]string{"workspace_id": id}})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// key returns the name of a connection's key, e.g. key("lock:", id) for
// its refresh lock (see internal/keyspace).
func (e *env) key(name, id string) string { return keyspace.Conn(e.prefix, id) + name + id }

// expire moves the clock past every refresh-due time.
func (e *env) expire() { e.clock.Advance(55 * time.Minute) }

func (e *env) current(id string) notionfake.Pair {
	e.t.Helper()
	p, ok := e.fake.CurrentPair(id)
	if !ok {
		e.t.Fatalf("fake has no live pair for %s", id)
	}
	return p
}

// assertNoSecrets fails if any of the given secrets appears in the logs or
// in any Redis value under the test's prefix.
func (e *env) assertNoSecrets(secrets ...string) {
	e.t.Helper()
	for _, entry := range e.logs.All() {
		line := entry.Message
		for k, v := range entry.ContextMap() {
			line += " " + k + "=" + strings.TrimSpace(toString(v))
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				e.t.Errorf("a secret leaked into a log line: %q", entry.Message)
			}
		}
	}
	ctx := context.Background()
	keys, err := redisKeys(ctx, e.rdb, e.prefix+"*")
	if err != nil {
		e.t.Fatal(err)
	}
	for _, k := range keys {
		dump := ""
		switch e.rdb.Type(ctx, k).Val() {
		case "hash":
			for f, v := range e.rdb.HGetAll(ctx, k).Val() {
				dump += f + "=" + v + "\n"
			}
		case "list":
			dump = strings.Join(e.rdb.LRange(ctx, k, 0, -1).Val(), "\n")
		case "string":
			dump = e.rdb.Get(ctx, k).Val()
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(dump, s) {
				e.t.Errorf("a secret is stored in plain text under %s", k)
			}
		}
	}
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

func randomID(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "conn-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func isReauth(err error, want tokens.Reason) bool {
	var re *tokens.ReauthError
	return errors.As(err, &re) && re.Reason == want
}
