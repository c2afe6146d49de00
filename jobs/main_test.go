package jobs_test

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/sync/files"
	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/pgsink"
	"github.com/notionsync/notionsync/tokens"
	"github.com/notionsync/notionsync/tokens/notionauth"
)

var redisSrv *redistest.Server

// asynq keys have no prefix, so every test gets its own Redis database.
var nextDB atomic.Int32

func TestMain(m *testing.M) {
	code := redistest.RunMain(m, redistest.Options{Args: []string{"--databases", "1000"}},
		func(s *redistest.Server) { redisSrv = s })
	if err := jobs.StopClusterForTest(); err != nil {
		fmt.Fprintln(os.Stderr, "stop the Redis Cluster:", err)
		code = cmp.Or(code, 1)
	}
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one test's system: a fake Notion with one seeded workspace, a
// connection for it, the client stack, a file sink and the handlers.
type env struct {
	t          testing.TB
	clock      *clock
	fake       *notionfake.Server
	ws         string
	conn       string
	seed       notionfake.SeedResult
	rdb        redis.UniversalClient
	store      *tokens.Store
	src        *tokens.Source
	notion     *notionclient.Client
	sink       sink.Sink
	h          *jobs.Handlers
	client     *asynq.Client
	advanced   chan string
	pageSynced chan string
	reconciled chan jobs.ReconcileCounts
	hs         string // the fake's URL
	// syncTimeout bounds waitSynced (default 60s).
	syncTimeout time.Duration
}

type envOpts struct {
	spec          notionfake.SeedSpec
	ratePerMinute int
	burst         int
	maxWait       time.Duration
	memorySink    bool   // benchmarks: an in-memory sink instead of files
	sinkURL       string // default: a file sink in a temp dir
	blobURL       string // a PostgreSQL sink's blob store (files)
	drainSlice    time.Duration
	pagesInFlight int
	claimTTL      time.Duration
	// notionVersion is the client stack's Notion-Version (default: the
	// client's, 2025-09-03).
	notionVersion string
	// transport, when set, carries the client stack's requests to the fake.
	transport http.RoundTripper
	// wrapSink wraps the sink the handlers write to (env.sink stays the
	// one underneath, for reading).
	wrapSink func(sink.Sink) sink.Sink
	// usersInterval is jobs.Config.UsersInterval; tests whose first data
	// request must be the sweep's search set it negative.
	usersInterval time.Duration
	// files, when set, turns file downloads on (Config.Transport may be
	// left empty: the env allows the fake's host).
	files *files.Config
	// Walk limits (0: the handlers' defaults).
	maxBlockDepth, maxObjectBlocks, maxObjectRequests int
	maxObjectBytes                                    int64
	// cluster runs the handlers, asynq and the rate limiter on the
	// package's Redis Cluster (jobs.ClusterForTest); the token store stays on the
	// single server (its own database): the test is about jobs' keys.
	cluster bool
}

// onBoth runs f as the subtests "single" (a redis-server) and "cluster"
// (the package's Redis Cluster, jobs.ClusterForTest).
func onBoth(t *testing.T, f func(t *testing.T, cluster bool)) {
	t.Helper()
	for _, b := range []struct {
		name    string
		cluster bool
	}{{"single", false}, {"cluster", true}} {
		t.Run(b.name, func(t *testing.T) { f(t, b.cluster) })
	}
}

// anotherClient returns a new client of the env's Redis (the same
// database, or the same cluster), closed when the test ends, with its own
// pool size and retries: another worker process's.
func (e *env) anotherClient(poolSize, maxRetries int) redis.UniversalClient {
	var c redis.UniversalClient
	switch r := e.rdb.(type) {
	case *redis.ClusterClient:
		o := *r.Options()
		o.PoolSize, o.MaxRetries = poolSize, maxRetries
		c = redis.NewClusterClient(&o)
	case *redis.Client:
		o := *r.Options()
		o.PoolSize, o.MaxRetries = poolSize, maxRetries
		c = redis.NewClient(&o)
	default:
		e.t.Fatalf("unexpected Redis client %T", e.rdb)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// keysMatching returns the keys that match pattern (KEYS), on every master
// of a cluster: one node of a cluster answers for its own slots only.
func (e *env) keysMatching(ctx context.Context, pattern string) ([]string, error) {
	cc, ok := e.rdb.(*redis.ClusterClient)
	if !ok {
		return e.rdb.Keys(ctx, pattern).Result()
	}
	var (
		mu  sync.Mutex
		out []string
	)
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		ks, err := c.Keys(ctx, pattern).Result()
		mu.Lock()
		out = append(out, ks...)
		mu.Unlock()
		return err
	})
	return out, err
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	// 12:00:10 on the fake's clock: content is last edited at 12:00.
	clk := &clock{t: time.Date(2026, 11, 22, 12, 0, 10, 0, time.UTC)}
	fake, hs := notionfake.NewTest(t, notionfake.Options{Now: clk.Now})
	e := &env{t: t, clock: clk, fake: fake, ws: "ws-" + fmt.Sprint(nextDB.Load()+1), advanced: make(chan string, 1024), pageSynced: make(chan string, 100000), reconciled: make(chan jobs.ReconcileCounts, 16), hs: hs.URL}
	e.seed = fake.SeedWorkspace(e.ws, o.spec)
	pair := fake.SeedConnection(e.ws)
	e.conn = "conn-" + e.ws

	db := int(nextDB.Add(1))
	single := redis.NewClient(&redis.Options{Addr: redisSrv.Addr(), DB: db, PoolSize: 64})
	t.Cleanup(func() { single.Close() })
	e.rdb = single
	if o.cluster {
		e.rdb = jobs.ClusterForTest(t)
	}
	kr, err := tokens.NewKeyring(tokens.Key{ID: "k", Secret: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	e.store, err = tokens.NewStore(tokens.StoreConfig{Redis: single, Keyring: kr, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Connect(context.Background(), e.conn, &tokens.Grant{AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken}, tokens.Timing{}, tokens.ConnectOptions{}); err != nil {
		t.Fatal(err)
	}
	prov, err := notionauth.New(notionauth.Config{ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(), BaseURL: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	e.src, err = tokens.NewSource(context.Background(), tokens.Config{Store: e.store, Provider: prov, RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.src.Close() })
	rate, burst := o.ratePerMinute, o.burst
	if rate == 0 {
		rate, burst = 1_000_000, 100_000 // out of the way
	}
	e.notion, err = notionclient.New(e.rdb, e.src, notionclient.Config{BaseURL: hs.URL, RatePerMinute: rate, Burst: burst, Transport: o.transport, NotionVersion: o.notionVersion,
		MaxWait: o.maxWait, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.notion.CloseIdleConnections)
	if o.memorySink {
		e.sink = &memSink{m: map[string]sink.State{}}
	} else {
		u := cmp.Or(o.sinkURL, "file://"+t.TempDir())
		if e.sink, err = sink.Open(context.Background(), u, sink.Options{Postgres: pgsink.Options{BlobURL: o.blobURL}}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { e.sink.Close() })
	e.client = asynq.NewClientFromRedisClient(e.rdb)
	hsink := e.sink
	if o.wrapSink != nil {
		hsink = o.wrapSink(e.sink)
	}
	var dl *files.Downloader
	if o.files != nil {
		fc := *o.files
		fc.AllowHTTP, fc.AllowPrivateAddresses = true, true
		fc.AllowedHosts = []string{strings.TrimPrefix(hs.URL, "http://")}
		if fc.Now == nil {
			fc.Now = clk.Now
		}
		if dl, err = files.New(fc); err != nil {
			t.Fatal(err)
		}
	}
	e.h, err = jobs.New(jobs.Config{
		Files:  dl,
		Tokens: e.src, Notion: e.notion, Sink: hsink, Redis: e.rdb, Enqueuer: e.client, DrainSlice: o.drainSlice, PagesInFlight: o.pagesInFlight,
		MaxBlockDepth: o.maxBlockDepth, MaxObjectBlocks: o.maxObjectBlocks, MaxObjectRequests: o.maxObjectRequests, MaxObjectBytes: o.maxObjectBytes,
		ClaimTTL: o.claimTTL, UsersInterval: o.usersInterval, Now: clk.Now, CheckpointEvery: 2, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		Hooks: jobs.Hooks{
			OnCursorAdvanced: func(conn string, _ time.Time) {
				select {
				case e.advanced <- conn:
				default:
				}
			},
			OnReconcile: func(_ string, c jobs.ReconcileCounts) {
				select {
				case e.reconciled <- c:
				default:
				}
			},
			OnPageSynced: func(conn string) {
				select {
				case e.pageSynced <- conn:
				default:
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// startWorkers runs an asynq server (a worker process's job loop) until the
// test ends.
func (e *env) startWorkers(concurrency int) {
	e.t.Helper()
	srv := asynq.NewServerFromRedisClient(e.rdb, e.h.ServerConfig(asynq.Config{
		Concurrency:              concurrency,
		TaskCheckInterval:        5 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		Logger:                   jobs.AsynqLogger{L: zap.NewNop()},
		LogLevel:                 asynq.FatalLevel,
	}))
	mux := asynq.NewServeMux()
	e.h.Register(mux)
	if err := srv.Start(mux); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(srv.Shutdown)
}

func (e *env) sweep() { e.sweepFor(e.conn) }

func (e *env) sweepFor(conn string) {
	e.t.Helper()
	if err := jobs.NewClient(e.client).EnqueueSweep(context.Background(), conn, e.clock.Now()); err != nil {
		e.t.Fatal(err)
	}
}

// addConnection seeds a second workspace in the same fake and connects it.
func (e *env) addConnection(ws string, spec notionfake.SeedSpec) (string, notionfake.SeedResult) {
	e.t.Helper()
	seed := e.fake.SeedWorkspace(ws, spec)
	pair := e.fake.SeedConnection(ws)
	conn := "conn-" + ws
	if _, err := e.store.Connect(context.Background(), conn, &tokens.Grant{AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken}, tokens.Timing{}, tokens.ConnectOptions{}); err != nil {
		e.t.Fatal(err)
	}
	return conn, seed
}

// waitSynced waits until the connection's cursor reached its target with
// nothing pending; cursor moves wake it.
func (e *env) waitSynced() jobs.SyncState {
	e.t.Helper()
	return e.waitSyncedFor(e.conn)
}

// waitSyncedFor is waitSynced for any connection of the env's system.
func (e *env) waitSyncedFor(conn string) jobs.SyncState {
	e.t.Helper()
	deadline := time.After(cmp.Or(e.syncTimeout, 60*time.Second))
	for {
		st, err := e.h.State(context.Background(), conn)
		if err != nil {
			e.t.Fatal(err)
		}
		if st.Pending == 0 && !st.Cursor.IsZero() && !st.Cursor.Before(st.Target) && !st.LastSweep.IsZero() {
			return st
		}
		select {
		case <-e.advanced:
		case <-time.After(100 * time.Millisecond): // re-check (a sweep may also finish without moving)
		case <-deadline:
			e.t.Fatalf("not synced in time: %+v (archived %d)", st, e.archived())
		}
	}
}

// rerun runs one task with handlers over sk and a client stack whose rate
// limiter is fresh (own key prefix), sharing the sync state.
func (e *env) rerun(sk sink.Sink, typ, payload string) error {
	e.t.Helper()
	nc, err := notionclient.New(e.rdb, e.src, notionclient.Config{BaseURL: e.hs, RatePerMinute: 1_000_000, Burst: 100_000,
		KeyPrefix: fmt.Sprintf("rerun%d:", time.Now().UnixNano())})
	if err != nil {
		e.t.Fatal(err)
	}
	defer nc.CloseIdleConnections()
	h, err := jobs.New(jobs.Config{Tokens: e.src, Notion: nc, Sink: sk, Redis: e.rdb, Enqueuer: e.client, Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	mux := asynq.NewServeMux()
	h.Register(mux)
	return mux.ProcessTask(context.Background(), asynq.NewTask(typ, []byte(payload)))
}

// runTask runs one task through the handlers directly (no asynq server).
func (e *env) runTask(typ string, payload string) error {
	mux := asynq.NewServeMux()
	e.h.Register(mux)
	return mux.ProcessTask(context.Background(), asynq.NewTask(typ, []byte(payload)))
}

func (e *env) queuesEmpty() bool {
	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	for _, q := range []string{jobs.QueueSync, jobs.QueueBackfill, jobs.QueueTokens} {
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			continue // queue never used
		}
		if info.Pending+info.Active+info.Scheduled+info.Retry > 0 {
			return false
		}
	}
	return true
}

// waitIdle waits until no task is pending or running in any queue, so that
// a request count taken next is not raced by a task still finishing (a
// drain's last page, a child page handed out during the walk).
func (e *env) waitIdle() {
	e.t.Helper()
	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	deadline := time.Now().Add(30 * time.Second)
	for {
		busy := 0
		for _, q := range []string{jobs.QueueSync, jobs.QueueBackfill, jobs.QueueTokens} {
			if info, err := insp.GetQueueInfo(q); err == nil {
				busy += info.Pending + info.Active
			}
		}
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d tasks still pending or running after 30s", busy)
		}
		select {
		case <-e.advanced:
		case <-time.After(20 * time.Millisecond): // asynq has no completion signal to wait on
		}
	}
}

func (e *env) archived() int {
	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	n := 0
	for _, q := range []string{jobs.QueueSync, jobs.QueueBackfill, jobs.QueueTokens} {
		if info, err := insp.GetQueueInfo(q); err == nil {
			n += info.Archived
		}
	}
	return n
}
