package schedule_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/internal/schedule"
	"github.com/notionsync/notionsync/tokens"
)

// redisSrv is the package's redis-server, started by TestMain. Tests keep
// apart by key prefix.
var redisSrv *redistest.Server

// cluster is the package's Redis Cluster (3 masters, 3 replicas), started
// by the first test that asks for it and stopped by TestMain.
var cluster redistest.LazyCluster

// clusterOf returns the package's cluster, starting it on first use.
func clusterOf(tb testing.TB) *redistest.Cluster { return cluster.Get(tb) }

func TestMain(m *testing.M) {
	code := redistest.RunMain(m, redistest.Options{}, func(s *redistest.Server) { redisSrv = s })
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop the redis cluster:", err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// clock is a settable clock shared by a test's stores and schedulers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// t0 is a fixed start time on a whole second, so slots are easy to compute.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// timing makes a token's refresh due exactly 50 minutes after it is written.
var timing = tokens.Timing{AccessTokenLifetime: time.Hour, RefreshMargin: 10 * time.Minute, RefreshJitter: time.Nanosecond}

const dueAfter = 50 * time.Minute

// env is one test's world: a Redis key space, a keyring, a clock and a store.
type env struct {
	t       testing.TB
	cluster *redistest.Cluster // nil: the package's single redis-server
	rdb     redis.UniversalClient
	prefix  string
	clock   *clock
	keys    *tokens.Keyring
	store   *tokens.Store
}

// newEnv returns an env on the package's single redis-server.
func newEnv(t testing.TB) *env { return buildEnv(t, nil) }

// newClusterEnv returns an env on the package's Redis Cluster.
func newClusterEnv(t testing.TB) *env { return buildEnv(t, clusterOf(t)) }

func buildEnv(t testing.TB, c *redistest.Cluster) *env {
	t.Helper()
	e := &env{t: t, cluster: c, prefix: redistest.UniquePrefix(t), clock: newClock(t0)}
	e.rdb = e.client()
	e.keys = newKeyring(t)
	e.store = e.newStore(e.rdb)
	return e
}

// client returns a new client of the env's Redis (one per simulated
// process), closed when the test ends.
func (e *env) client(hooks ...redis.Hook) redis.UniversalClient {
	var c redis.UniversalClient
	if e.cluster != nil {
		c = e.cluster.Client()
	} else {
		c = redis.NewClient(&redis.Options{Addr: redisSrv.Addr()})
	}
	for _, h := range hooks {
		c.AddHook(h)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// sweepKey is shard i of the sweep schedule.
func (e *env) sweepKey(i int) string { return keyspace.Shard(e.prefix, i) + "sweeps" }

func (e *env) newStore(rdb redis.UniversalClient) *tokens.Store {
	e.t.Helper()
	st, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: e.keys, KeyPrefix: e.prefix, Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func newKeyring(t testing.TB) *tokens.Keyring {
	t.Helper()
	kr, err := tokens.NewKeyring(tokens.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// connect creates a connection at the current clock time.
func (e *env) connect(id string, meta map[string]string) {
	e.t.Helper()
	e.connectTiming(id, meta, timing)
}

func (e *env) connectTiming(id string, meta map[string]string, tm tokens.Timing) {
	e.t.Helper()
	_, err := e.store.Connect(e.t.Context(), id,
		&tokens.Grant{AccessToken: "at-" + id, RefreshToken: "rt-" + id}, tm,
		tokens.ConnectOptions{Meta: meta})
	if err != nil {
		e.t.Fatal(err)
	}
}

// scheduler builds a Scheduler on the env's store and clock; mod adjusts the
// config.
func (e *env) scheduler(enq schedule.Enqueuer, mod func(*schedule.Config)) *schedule.Scheduler {
	e.t.Helper()
	cfg := schedule.Config{
		Redis: e.rdb, Store: e.store, Enqueuer: enq, KeyPrefix: e.prefix, Now: e.clock.Now,
		Logger: zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel)),
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := schedule.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) tick(s *schedule.Scheduler) schedule.TickStats {
	e.t.Helper()
	st, err := s.Tick(e.t.Context())
	if err != nil {
		e.t.Fatalf("tick: %v", err)
	}
	return st
}

// sweeps returns the sweep schedule: connection id -> slot. It fails the
// test when an entry sits in a shard other than its connection's.
func (e *env) sweeps() map[string]time.Time {
	e.t.Helper()
	out := make(map[string]time.Time)
	for i := range keyspace.Shards {
		zs, err := e.rdb.ZRangeWithScores(e.t.Context(), e.sweepKey(i), 0, -1).Result()
		if err != nil {
			e.t.Fatal(err)
		}
		for _, z := range zs {
			id := z.Member.(string)
			if want := keyspace.ShardOf(id); want != i {
				e.t.Fatalf("%s is in sweep shard %d, want %d", id, i, want)
			}
			out[id] = time.UnixMilli(int64(z.Score))
		}
	}
	return out
}

// setSlots puts connections on the sweep schedule at slot.
func (e *env) setSlots(slot time.Time, ids ...string) {
	e.t.Helper()
	_, err := e.rdb.Pipelined(e.t.Context(), func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.ZAdd(e.t.Context(), e.sweepKey(keyspace.ShardOf(id)), redis.Z{Score: float64(slot.UnixMilli()), Member: id})
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// taskQueue stands in for asynq: it accepts a task id once and refuses
// (silently, as jobs.Client does) every later enqueue of that id, as asynq
// does while the task is queued or retained. It records every attempt.
type taskQueue struct {
	mu       sync.Mutex
	accepted []string
	ids      map[string]bool
	attempts []attempt
	// retain false: an id is free again once the task "ran" (see run).
	retain bool
	// run, when set, runs each accepted task synchronously (a worker).
	run func(ctx context.Context, id string)
}

type attempt struct {
	by string
	id string
	at time.Time // real time
}

func newQueue() *taskQueue { return &taskQueue{ids: map[string]bool{}, retain: true} }

func (q *taskQueue) add(ctx context.Context, by, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	q.attempts = append(q.attempts, attempt{by: by, id: id, at: time.Now()})
	if q.ids[id] {
		q.mu.Unlock()
		return nil
	}
	q.accepted = append(q.accepted, id)
	q.ids[id] = q.retain
	run := q.run
	q.mu.Unlock()
	if run != nil {
		run(ctx, id)
	}
	return nil
}

// acceptedWith returns the accepted ids with the given prefix, sorted.
func (q *taskQueue) acceptedWith(prefix string) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for _, id := range q.accepted {
		if strings.HasPrefix(id, prefix) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func (q *taskQueue) attemptsBy(by string) []attempt {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []attempt
	for _, a := range q.attempts {
		if a.by == by {
			out = append(out, a)
		}
	}
	return out
}

func (q *taskQueue) attemptCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.attempts)
}

// fakeEnqueuer is one scheduler's handle on a taskQueue. Its task ids follow
// jobs.Client: refresh:<conn>:v<version>, sweep:<conn>:<slot ms>.
type fakeEnqueuer struct {
	name string
	q    *taskQueue
	// before, when set, runs before each enqueue (tests block or fail here).
	before func(ctx context.Context, id string) error
}

func (f *fakeEnqueuer) EnqueueRefresh(ctx context.Context, connID string, version int64) error {
	return f.add(ctx, fmt.Sprintf("refresh:%s:v%d", connID, version))
}

func (f *fakeEnqueuer) EnqueueSweep(ctx context.Context, connID string, slot time.Time) error {
	return f.add(ctx, fmt.Sprintf("sweep:%s:%d", connID, slot.UnixMilli()))
}

func (f *fakeEnqueuer) add(ctx context.Context, id string) error {
	if f.before != nil {
		if err := f.before(ctx, id); err != nil {
			return err
		}
	}
	return f.q.add(ctx, f.name, id)
}

// dueEnqueuer also implements schedule.RefreshAtEnqueuer.
type dueEnqueuer struct {
	fakeEnqueuer
}

func (f *dueEnqueuer) EnqueueRefreshAt(ctx context.Context, connID string, version int64, due time.Time) error {
	return f.add(ctx, fmt.Sprintf("refreshat:%s:v%d:%d", connID, version, due.UnixMilli()))
}

// counter is a go-redis hook that counts the commands sent, except those
// that set up a new pool connection (how many connections a tick opens
// depends on goroutine timing, not on the work).
type counter struct {
	n     atomic.Int64 // commands
	trips atomic.Int64 // round trips: one per command sent alone, one per pipeline
	reads atomic.Int64 // HMGETs: connection records read
}

func counted(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select", "ping":
		return false
	}
	return true
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if counted(cmd) {
			c.n.Add(1)
			c.trips.Add(1)
			if cmd.Name() == "hmget" {
				c.reads.Add(1)
			}
		}
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		sent := false
		for _, cmd := range cmds {
			if counted(cmd) {
				c.n.Add(1)
				sent = true
				if cmd.Name() == "hmget" {
					c.reads.Add(1)
				}
			}
		}
		if sent {
			c.trips.Add(1)
		}
		return next(ctx, cmds)
	}
}

// partition is a go-redis hook that, while on, fails every command that
// names the given key: a process cut off from Redis for its lease only, so
// the test sees whether it keeps acting without a lease.
type partition struct {
	key string
	on  atomic.Bool
}

var errPartitioned = errors.New("test: partitioned from redis")

func (p *partition) DialHook(next redis.DialHook) redis.DialHook { return next }

func (p *partition) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if p.on.Load() {
			for _, a := range cmd.Args() {
				if s, ok := a.(string); ok && s == p.key {
					cmd.SetErr(errPartitioned)
					return errPartitioned
				}
			}
		}
		return next(ctx, cmd)
	}
}

func (p *partition) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// waitFor polls cond (an external condition: Redis state or another
// goroutine's progress) until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
