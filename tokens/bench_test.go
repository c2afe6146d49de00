package tokens_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// BenchmarkTokenFastPath measures Source.Token while the token is not due,
// with the in-process cache on and off, and the Redis commands per call.
func BenchmarkTokenFastPath(b *testing.B) {
	for _, cache := range []bool{false, true} {
		b.Run(fmt.Sprintf("cache=%v", cache), func(b *testing.B) {
			fake, hs := notionfake.NewTest(b, notionfake.Options{})
			rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr()})
			defer rdb.Close()
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
			counter := &cmdCounter{}
			rdb.AddHook(counter)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := src.Token(ctx, "ws-bench"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(counter.n.Load())/float64(b.N), "redis-cmds/op")
		})
	}
}

// BenchmarkRefreshStorm: 4 Sources (processes) x 32 goroutines hit an
// expired token together; the token endpoint answers after 20 ms. Reported:
// the time from expiry until every caller holds the new token, and the lag
// between the refresher's write and the last waiter receiving the token.
func BenchmarkRefreshStorm(b *testing.B) {
	const latency = 20 * time.Millisecond
	fake, hs := notionfake.NewTest(b, notionfake.Options{})
	fake.SetLatency(latency)
	rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr(), PoolSize: 256})
	defer rdb.Close()
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
