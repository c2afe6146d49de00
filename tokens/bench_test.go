package tokens_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/tokens"
	"github.com/notionsync/notionsync/tokens/notionauth"
)

// cmdCounter is a go-redis hook counting commands (a pipeline counts each).
type cmdCounter struct{ n atomic.Int64 }

func (c *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}

func benchProvider(b *testing.B, fake *notionfake.Server, url string) tokens.Provider {
	c, err := notionauth.New(notionauth.Config{ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(), BaseURL: url})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkRedisGET is the baseline: one bare GET round trip to the same
// Redis the token benchmarks use.
func BenchmarkRedisGET(b *testing.B) {
	rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	key := redistest.UniquePrefix(b) + "k"
	rdb.Set(ctx, key, "ntn_0123456789012345678901234567890123456789012345", 0)
	b.ReportAllocs()
	for b.Loop() {
		if err := rdb.Get(ctx, key).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

// benchBackends are the backends the token benchmarks run on: one
// redis-server and the package's 3-master Redis Cluster (see onBackends).
var benchBackends = []string{"redis", "cluster"}

// benchClient returns a client of b's backend (the sub-benchmark name
// under the top level, as onCluster reads it) with two counters: cmds
// counts commands (a pipeline counts each), trips counts round trips, one
// per command or pipeline sent to one node (a cluster client splits a
// pipeline into one per node, sent in parallel; each counts).
func benchClient(b *testing.B, poolSize int) (rdb redis.UniversalClient, cmds, trips *cmdCounter) {
	b.Helper()
	cmds = &cmdCounter{}
	tc := &tripCounter{}
	if onCluster(b) {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: sharedCluster(b).Addrs(), PoolSize: poolSize,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
			NewClient: func(opt *redis.Options) *redis.Client {
				c := redis.NewClient(opt)
				c.AddHook(tc)
				return c
			},
		})
	} else {
		c := redis.NewClient(&redis.Options{Addr: redisSrv.Addr(), PoolSize: poolSize})
		c.AddHook(tc)
		rdb = c
	}
	b.Cleanup(func() { _ = rdb.Close() })
	return rdb, cmds, (*cmdCounter)(tc)
}

// tripCounter is a go-redis hook counting round trips: a pipeline counts
// once.
type tripCounter cmdCounter

func (c *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(1); return next(ctx, cmds) }
}

// BenchmarkTokenFastPath measures Source.Token while the token is not due,
// with the in-process cache on and off, on one redis-server and on a
// 3-master cluster, with the Redis commands and round trips per call.
//
//	go test -run '^$' -bench 'TokenFastPath' -benchtime 2s ./tokens/
func BenchmarkTokenFastPath(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(backend, benchTokenFastPath)
	}
}

func benchTokenFastPath(b *testing.B) {
	for _, cache := range []bool{false, true} {
		b.Run(fmt.Sprintf("cache=%v", cache), func(b *testing.B) {
			fake, hs := notionfake.NewTest(b, notionfake.Options{})
			rdb, counter, trips := benchClient(b, 0)
			prefix := redistest.UniquePrefix(b)
			st, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: newKeyring(b, "k1"), KeyPrefix: prefix})
			if err != nil {
				b.Fatal(err)
			}
			p := fake.SeedConnection("ws-bench")
			if _, err := st.Connect(context.Background(), "ws-bench", &tokens.Grant{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken}, tokens.Timing{}, tokens.ConnectOptions{}); err != nil {
				b.Fatal(err)
			}
			maxAge := -1 * time.Second
			if cache {
				maxAge = time.Minute
			}
			src, err := tokens.NewSource(context.Background(), tokens.Config{Store: st, Provider: benchProvider(b, fake, hs.URL), CacheMaxAge: maxAge})
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()
			rdb.AddHook(counter)
			trips.n.Store(0)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := src.Token(ctx, "ws-bench"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(counter.n.Load())/float64(b.N), "redis-cmds/op")
			b.ReportMetric(float64(trips.n.Load())/float64(b.N), "round-trips/op")
		})
	}
}

// BenchmarkOneRefresh measures one uncontended refresh through
// Source.Token (one process, the token endpoint answering at once): the
// Redis commands and round trips it costs, on each backend.
//
//	go test -run '^$' -bench 'OneRefresh' -benchtime 200x ./tokens/
func BenchmarkOneRefresh(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(backend, func(b *testing.B) {
			fake, hs := notionfake.NewTest(b, notionfake.Options{})
			rdb, counter, trips := benchClient(b, 0)
			clk := newClock()
			st, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: newKeyring(b, "k1"),
				KeyPrefix: redistest.UniquePrefix(b), Now: clk.Now})
			if err != nil {
				b.Fatal(err)
			}
			p := fake.SeedConnection("ws-one")
			if _, err := st.Connect(context.Background(), "ws-one", &tokens.Grant{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken}, tokens.Timing{}, tokens.ConnectOptions{}); err != nil {
				b.Fatal(err)
			}
			src, err := tokens.NewSource(context.Background(), tokens.Config{Store: st, Provider: benchProvider(b, fake, hs.URL)})
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()
			rdb.AddHook(counter)
			ctx := context.Background()
			var cmds, rts int64
			b.ResetTimer()
			for b.Loop() {
				clk.Advance(2 * time.Hour)
				c0, t0 := counter.n.Load(), trips.n.Load()
				if _, err := src.Token(ctx, "ws-one"); err != nil {
					b.Fatal(err)
				}
				cmds += counter.n.Load() - c0
				rts += trips.n.Load() - t0
			}
			b.ReportMetric(float64(cmds)/float64(b.N), "redis-cmds/op")
			b.ReportMetric(float64(rts)/float64(b.N), "round-trips/op")
			if g := fake.Stats().RefreshGrants; g != b.N {
				b.Fatalf("%d grants for %d refreshes", g, b.N)
			}
		})
	}
}

// BenchmarkRefreshStorm: 4 Sources (processes) x 32 goroutines hit an
// expired token together; the token endpoint answers after 20 ms. Reported:
// the time from expiry until every caller holds the new token, and the lag
// between the refresher's write and the last waiter receiving the token.
//
//	go test -run '^$' -bench 'RefreshStorm' -benchtime 20x ./tokens/
func BenchmarkRefreshStorm(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(backend, benchRefreshStorm)
	}
}

func benchRefreshStorm(b *testing.B) {
	const latency = 20 * time.Millisecond
	fake, hs := notionfake.NewTest(b, notionfake.Options{})
	fake.SetLatency(latency)
	rdb, _, _ := benchClient(b, 256)
	clk := newClock()
	var lagSum, totalSum time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		prefix := redistest.UniquePrefix(b)
		id := fmt.Sprintf("ws-storm-%d", i)
		p := fake.SeedConnection(id)
		var committed atomic.Int64
		var srcs []*tokens.Source
		for range 4 {
			st, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: newKeyring(b, "k1"), KeyPrefix: prefix, Now: clk.Now})
			if err != nil {
				b.Fatal(err)
			}
			if len(srcs) == 0 {
				if _, err := st.Connect(context.Background(), id, &tokens.Grant{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken}, tokens.Timing{}, tokens.ConnectOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			src, err := tokens.NewSource(context.Background(), tokens.Config{Store: st, Provider: benchProvider(b, fake, hs.URL),
				Hooks: tokens.Hooks{OnRefresh: func(_ string, o tokens.Outcome, _ time.Duration) {
					if o == tokens.OutcomeRefreshed {
						committed.Store(time.Now().UnixNano())
					}
				}}})
			if err != nil {
				b.Fatal(err)
			}
			srcs = append(srcs, src)
		}
		clk.Advance(2 * time.Hour)
		b.StartTimer()
		start := time.Now()
		var last atomic.Int64
		var wg sync.WaitGroup
		for _, src := range srcs {
			for range 32 {
				wg.Go(func() {
					if _, err := src.Token(context.Background(), id); err != nil {
						b.Error(err)
					}
					now := time.Now().UnixNano()
					for {
						old := last.Load()
						if now <= old || last.CompareAndSwap(old, now) {
							break
						}
					}
				})
			}
		}
		wg.Wait()
		totalSum += time.Since(start)
		lagSum += time.Duration(last.Load() - committed.Load())
		b.StopTimer()
		for _, s := range srcs {
			s.Close()
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(totalSum.Milliseconds())/float64(b.N), "ms-expiry-to-all")
	b.ReportMetric(float64(lagSum.Microseconds())/1000/float64(b.N), "ms-write-to-last-waiter")
	b.ReportMetric(float64(latency.Milliseconds()), "ms-endpoint-latency")
	if g := fake.Stats().RefreshGrants; g != b.N {
		b.Fatalf("%d grants for %d storms", g, b.N)
	}
}

// BenchmarkStorageBytesPerConnection is the tokens part of the scale
// model: the Redis memory a connection costs (MEMORY USAGE ... SAMPLES 0 of
// every key, summed over the shards), on each backend. 10,000 connections
// with Notion-sized tokens and metadata, so each of the 64 index shards
// holds ~156 members and uses the skiplist encoding a large fleet has
// (zset-max-listpack-entries is 128); 100 of them have a full timeline
// (50 events, the default cap, reached after ~2 days of hourly
// refreshes). Reported per connection: the record hash, the timeline at
// one event and at the cap, the index entries (due, connections, one
// status), and the Redis commands a Connect costs.
//
//	go test -run '^$' -bench 'StorageBytesPerConnection' -benchtime 1x ./tokens/
func BenchmarkStorageBytesPerConnection(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(backend, benchStorage)
	}
}

func benchStorage(b *testing.B) {
	const n, full, eventsCap = 10_000, 100, 50
	rdb, counter, _ := benchClient(b, 32)
	prefix := redistest.UniquePrefix(b)
	st, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: newKeyring(b, "k1"), KeyPrefix: prefix, EventsCap: eventsCap})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	tok := func(kind string, i int) string { return fmt.Sprintf("ntn_%s%042d", kind, i) } // 50 bytes, like Notion's
	rdb.AddHook(counter)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			id := fmt.Sprintf("conn-%08d", i)
			meta := map[string]string{"workspace_id": fmt.Sprintf("%08x-1234-4abc-8def-%012x", i, i),
				"workspace_name": "Acme Engineering " + strconv.Itoa(i), "bot_id": fmt.Sprintf("%08x-5678-4abc-8def-%012x", i, i)}
			if _, err := st.Connect(ctx, id, &tokens.Grant{AccessToken: tok("a", i), RefreshToken: tok("r", i)},
				tokens.Timing{}, tokens.ConnectOptions{Meta: meta}); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	connectCmds := float64(counter.n.Load()) / n
	for i := range full {
		id := fmt.Sprintf("conn-%08d", i)
		for range eventsCap / 2 {
			if err := st.Pause(ctx, id); err != nil {
				b.Fatal(err)
			}
			if err := st.Resume(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	}
	var record, eventsOne, eventsFull, index, other int64
	measure := func() {
		record, eventsOne, eventsFull, index, other = 0, 0, 0, 0, 0
		keys, err := redisKeys(ctx, rdb, prefix+"*")
		if err != nil {
			b.Fatal(err)
		}
		pipe := rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.MemoryUsage(ctx, k, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		for i, k := range keys {
			size := cmds[i].Val()
			rest := k[strings.IndexByte(k, '}')+2:]
			switch {
			case strings.HasSuffix(rest, ":events"):
				var num int
				_, _ = fmt.Sscanf(rest, "conn:conn-%08d:events", &num)
				if num < full {
					eventsFull += size
				} else {
					eventsOne += size
				}
			case strings.HasPrefix(rest, "conn:"):
				record += size
			case rest == "due" || rest == "connections" || strings.HasPrefix(rest, "status:"):
				index += size
			default:
				other += size
			}
		}
	}
	for b.Loop() {
		measure()
	}
	b.ReportMetric(connectCmds, "redis-cmds/connect")
	b.ReportMetric(float64(record)/n, "B-record/conn")
	b.ReportMetric(float64(eventsOne)/(n-full), "B-events-1/conn")
	b.ReportMetric(float64(eventsFull)/full, "B-events-50/conn")
	b.ReportMetric(float64(index)/n, "B-index/conn")
	b.ReportMetric(float64(record+index)/n+float64(eventsFull)/full, "B-total-at-cap/conn")
	if other != 0 {
		b.Fatalf("%d bytes in keys of no known kind", other)
	}
}

// BenchmarkShardedListings measures one call of each listing over 2,000
// connections (64 index shards, merged): Due of 100 (all due), a PageIDs
// page of 50 and a List page of 100 from the middle, with the commands and
// round trips per call (one pipeline per node on a cluster).
//
//	go test -run '^$' -bench 'ShardedListings' -benchtime 200x ./tokens/
func BenchmarkShardedListings(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(backend, benchListings)
	}
}

func benchListings(b *testing.B) {
	const n = 2000
	rdb, counter, trips := benchClient(b, 32)
	clk := newClock()
	st, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: newKeyring(b, "k1"),
		KeyPrefix: redistest.UniquePrefix(b), Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		if i%10 == 0 {
			clk.Advance(time.Millisecond) // ten connections per millisecond
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := st.Connect(ctx, fmt.Sprintf("c%05d", i), &tokens.Grant{AccessToken: "a", RefreshToken: "r"},
				tokens.Timing{}, tokens.ConnectOptions{}); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	mid, _, err := st.PageIDs(ctx, "", tokens.PageCursor{}, n/2)
	if err != nil || len(mid) != n/2 {
		b.Fatalf("%d ids, %v", len(mid), err)
	}
	midConn, err := st.Get(ctx, mid[len(mid)-1])
	if err != nil {
		b.Fatal(err)
	}
	cursor := tokens.PageCursor{CreatedMs: midConn.CreatedAt.UnixMilli(), ID: midConn.ID}
	rdb.AddHook(counter)
	calls := map[string]func() error{
		"due-100": func() error {
			ids, err := st.Due(ctx, clk.Now().Add(2*time.Hour), 100)
			if err == nil && len(ids) != 100 {
				err = fmt.Errorf("%d due", len(ids))
			}
			return err
		},
		"pageids-50": func() error {
			_, _, err := st.PageIDs(ctx, tokens.StatusActive, cursor, 50)
			return err
		},
		"list-100": func() error {
			_, _, err := st.List(ctx, midConn.ID, 100)
			return err
		},
	}
	for _, name := range []string{"due-100", "pageids-50", "list-100"} {
		call := calls[name]
		b.Run(name, func(b *testing.B) {
			c0, t0 := counter.n.Load(), trips.n.Load()
			for b.Loop() {
				if err := call(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(counter.n.Load()-c0)/float64(b.N), "redis-cmds/op")
			b.ReportMetric(float64(trips.n.Load()-t0)/float64(b.N), "round-trips/op")
		})
	}
}
