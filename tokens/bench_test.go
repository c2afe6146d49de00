package tokens_test

import (
	"context"
	"fmt"
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
