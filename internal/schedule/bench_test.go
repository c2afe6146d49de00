package schedule_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/internal/schedule"
	"github.com/notionsync/notionsync/tokens"
)

// Reproduce with:
//
//	go test -run '^$' -bench . -benchtime 200x -count 3 ./internal/schedule/
//
// (-bench 'Tick1MConnections/single' or '/cluster' for one of the two.)
// Each benchmark starts its own redis-server (or cluster), so the numbers do
// not include other tests' keys.

const benchConnections = 1_000_000

// nopEnqueuer counts tasks and talks to no Redis (in production each enqueue
// is one more Redis command: asynq's enqueue script).
type nopEnqueuer struct{ refresh, sweep atomic.Int64 }

func (n *nopEnqueuer) EnqueueRefresh(context.Context, string, int64) error {
	n.refresh.Add(1)
	return nil
}

func (n *nopEnqueuer) EnqueueSweep(context.Context, string, time.Time) error {
	n.sweep.Add(1)
	return nil
}

// benchWorld is a dedicated redis-server (or a 3-master Redis Cluster)
// holding 1,000,000 connections in the refresh-due index, the sweep
// schedule and the connection list. 2,000 of them have real records
// (Store.Connect): r0000-r0999 are due for a refresh, r1000-r1999 can be
// made due for a sweep. The rest are index entries only, due a day later.
type benchWorld struct {
	rdb    redis.UniversalClient
	cnt    *counter
	store  *tokens.Store
	clock  *clock
	prefix string
}

const benchPrefix = "bench:"

func newBenchWorld(b *testing.B, cluster bool) *benchWorld {
	b.Helper()
	w := &benchWorld{cnt: &counter{}, clock: newClock(t0), prefix: benchPrefix}
	if cluster {
		// No replicas: the machine's CPU goes to the masters.
		c := redistest.StartClusterTB(b, redistest.ClusterOptions{Replicas: -1})
		w.rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), PoolSize: 32})
		if err := probeTokens(b, w.rdb); err != nil {
			b.Skipf("tokens.Store cannot write on a cluster yet: %v", err)
		}
	} else {
		srv := redistest.StartTB(b, redistest.Options{})
		w.rdb = redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 32})
	}
	b.Cleanup(func() { w.rdb.Close() })
	w.rdb.AddHook(w.cnt)
	st, err := tokens.NewStore(tokens.StoreConfig{Redis: w.rdb, Keyring: newKeyring(b), KeyPrefix: w.prefix, Now: w.clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	w.store = st

	connectMany(b, st, 2000, func(i int) string { return fmt.Sprintf("r%04d", i) })
	fill(b, w.rdb, w.prefix, benchConnections-2000, t0.Add(24*time.Hour))
	// Real records are due at t0+50m; keep r1000-r1999 out of the refresh.
	ctx := b.Context()
	_, err = w.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := 1000; i < 2000; i++ {
			id := fmt.Sprintf("r%04d", i)
			p.ZAdd(ctx, tokensIndexKey(b, w.rdb, w.prefix, "due", id), redis.Z{Score: float64(t0.Add(24 * time.Hour).UnixMilli()), Member: id})
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	w.setSweeps(b, t0.Add(24*time.Hour), 0, 2000)
	// Discovery in steady state: its tail cursor at the end of the list
	// (the real records are the newest; among equal creation times, the
	// last id).
	if err := w.rdb.HSet(ctx, w.prefix+"sweeps:cursor", "tail", "r1999").Err(); err != nil {
		b.Fatal(err)
	}
	var dueKeys []string
	if tokensSharded(b, w.rdb) {
		for i := range keyspace.Shards {
			dueKeys = append(dueKeys, keyspace.Shard(w.prefix, i)+"due")
		}
	} else {
		dueKeys = []string{w.prefix + "due"}
	}
	var total int64
	for _, k := range dueKeys {
		n, err := w.rdb.ZCard(ctx, k).Result()
		if err != nil {
			b.Fatal(err)
		}
		total += n
	}
	if total != benchConnections {
		b.Fatalf("due index holds %d, want %d", total, benchConnections)
	}
	w.clock.Set(t0.Add(dueAfter))
	return w
}

// probeTokens reports whether tokens.Store can write a connection through
// rdb (on a cluster, its scripts must name keys of one slot).
func probeTokens(b *testing.B, rdb redis.UniversalClient) error {
	st, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: newKeyring(b), KeyPrefix: "probe:"})
	if err != nil {
		return err
	}
	_, err = st.Connect(b.Context(), "probe", &tokens.Grant{AccessToken: "a", RefreshToken: "r"}, timing, tokens.ConnectOptions{})
	return err
}

// setSweeps puts r<from>..r<to-1> on the sweep schedule at slot.
func (w *benchWorld) setSweeps(b *testing.B, slot time.Time, from, to int) {
	b.Helper()
	var zs [keyspace.Shards][]redis.Z
	for i := from; i < to; i++ {
		id := fmt.Sprintf("r%04d", i)
		sh := keyspace.ShardOf(id)
		zs[sh] = append(zs[sh], redis.Z{Score: float64(slot.UnixMilli()), Member: id})
	}
	_, err := w.rdb.Pipelined(b.Context(), func(p redis.Pipeliner) error {
		for sh, z := range zs {
			if len(z) > 0 {
				p.ZAdd(b.Context(), keyspace.Shard(w.prefix, sh)+"sweeps", z...)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

func connectMany(b *testing.B, st *tokens.Store, n int, id func(int) string) {
	b.Helper()
	var g errgroup.Group
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			_, err := st.Connect(b.Context(), id(i),
				&tokens.Grant{AccessToken: "secret_" + strings.Repeat("a", 43), RefreshToken: "nrt_" + strings.Repeat("b", 44)},
				timing, tokens.ConnectOptions{Meta: map[string]string{"workspace_id": fmt.Sprintf("%08x-0000-0000-0000-000000000000", i), "workspace_name": "Workspace " + strconv.Itoa(i)}})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTick1MConnections measures one scheduler tick among 1,000,000
// connections with 1,000 refreshes due (and, in the second case, 1,000
// sweeps due as well, on other connections).
//
// It runs on one redis-server ("single") and on a 3-master Redis Cluster
// without replicas ("cluster"; skipped while tokens.Store cannot write on
// one). redis-cmds/tick counts commands (a pipeline's each), round-trips/
// tick counts calls (a pipeline once, however many masters it goes to).
func BenchmarkTick1MConnections(b *testing.B) {
	for _, backend := range []string{"single", "cluster"} {
		b.Run(backend, func(b *testing.B) { benchTick1M(b, backend == "cluster") })
	}
}

func benchTick1M(b *testing.B, cluster bool) {
	w := newBenchWorld(b, cluster)
	ctx := b.Context()
	for _, tc := range []struct {
		name   string
		sweeps bool
	}{{"due=1000refresh", false}, {"due=1000refresh+1000sweeps", true}} {
		b.Run(tc.name, func(b *testing.B) {
			enq := &nopEnqueuer{}
			s, err := schedule.New(schedule.Config{
				Redis: w.rdb, Store: w.store, Enqueuer: enq, KeyPrefix: w.prefix, Now: w.clock.Now,
			})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Tick(ctx); err != nil { // loads the scripts
				b.Fatal(err)
			}
			var cmds, trips, ticks, tasks int64
			for b.Loop() {
				b.StopTimer()
				if tc.sweeps {
					w.setSweeps(b, t0, 1000, 2000)
				}
				before, beforeTrips := w.cnt.n.Load(), w.cnt.trips.Load()
				b.StartTimer()
				st, err := s.Tick(ctx)
				b.StopTimer()
				cmds += w.cnt.n.Load() - before
				trips += w.cnt.trips.Load() - beforeTrips
				ticks++
				tasks += int64(st.RefreshEnqueued + st.SweepsEnqueued)
				if err != nil {
					b.Fatal(err)
				}
				want := schedule.TickStats{RefreshDue: 1000, RefreshEnqueued: 1000}
				if tc.sweeps {
					want.SweepsDue, want.SweepsEnqueued = 1000, 1000
				}
				if st.RefreshDue != want.RefreshDue || st.RefreshEnqueued != want.RefreshEnqueued ||
					st.SweepsDue != want.SweepsDue || st.SweepsEnqueued != want.SweepsEnqueued || st.Errors != 0 {
					b.Fatalf("tick stats %+v, want %+v", st, want)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(cmds)/float64(ticks), "redis-cmds/tick")
			b.ReportMetric(float64(trips)/float64(ticks), "round-trips/tick")
			b.ReportMetric(float64(tasks)/float64(ticks), "tasks/tick")
			if tc.sweeps {
				w.setSweeps(b, t0.Add(24*time.Hour), 1000, 2000)
			}
		})
	}
}

// BenchmarkRedisMemoryPerConnection reports Redis memory per connection
// (INFO used_memory deltas): each index entry over 1,000,000 connections,
// and a full connection record (hash, timeline, its index entries) over
// 20,000 records written by Store.Connect. The loop itself measures one
// Store.Get among them.
func BenchmarkRedisMemoryPerConnection(b *testing.B) {
	srv := redistest.StartTB(b, redistest.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 32})
	defer rdb.Close()
	ctx := b.Context()
	used := func() float64 {
		b.Helper()
		info, err := rdb.Info(ctx, "memory").Result()
		if err != nil {
			b.Fatal(err)
		}
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatal(err)
				}
				return n
			}
		}
		b.Fatal("no used_memory in INFO memory")
		return 0
	}
	perEntry := func(key string) float64 {
		b.Helper()
		before := used()
		const batch = 10_000
		for start := 0; start < benchConnections; start += batch {
			zs := make([]redis.Z, 0, batch)
			for i := start; i < start+batch; i++ {
				zs = append(zs, redis.Z{Score: float64(t0.UnixMilli() + int64(i)), Member: "c" + strconv.Itoa(10_000_000+i)})
			}
			if err := rdb.ZAdd(ctx, key, zs...).Err(); err != nil {
				b.Fatal(err)
			}
		}
		return (used() - before) / benchConnections
	}
	sweeps := perEntry("mem:sweeps")
	due := perEntry("mem:due")
	list := perEntry("mem:connections")

	const records = 20_000
	cl := newClock(t0)
	st, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: newKeyring(b), KeyPrefix: "rec:", Now: cl.Now})
	if err != nil {
		b.Fatal(err)
	}
	before := used()
	connectMany(b, st, records, func(i int) string { return "conn-" + strconv.Itoa(10_000_000+i) })
	record := (used() - before) / records

	b.Logf("Redis memory per connection: record (hash + 1-event timeline + due and list entries, 20k records) %.0f B "+
		"+ scheduler's sweep entry %.0f B = %.0f B; at 1M connections: due entry %.0f B, list entry %.0f B, sweep entry %.0f B",
		record, sweeps, record+sweeps, due, list, sweeps)

	for b.Loop() {
		if _, err := st.Get(ctx, "conn-"+strconv.Itoa(10_000_000+rand.IntN(records))); err != nil {
			b.Fatal(err)
		}
	}
	// After the loop: b.Loop's timer reset would drop metrics reported before it.
	b.ReportMetric(sweeps, "sweep-entry-B/conn")
	b.ReportMetric(due, "due-entry-B/conn")
	b.ReportMetric(list, "list-entry-B/conn")
	b.ReportMetric(record, "record-B/conn")
	b.ReportMetric(record+sweeps, "total-B/conn")
}
