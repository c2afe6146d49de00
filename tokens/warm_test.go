package tokens_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/tokens"
)

// roundTrips counts the Redis round trips of a client.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			r.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && !handshake(cmds[0]) {
			r.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// handshake reports the commands go-redis sends when it opens a connection.
func handshake(cmd redis.Cmder) bool { return cmd.Name() == "hello" || cmd.Name() == "client" }

// Warm reads many connections in one round trip and caches exactly what
// Token's fast path would: afterwards fresh active connections cost no
// Redis round trip, while a paused one is still read (and refused).
func TestWarmServesFreshTokensFromMemory(t *testing.T) {
	e := newEnv(t, notionfake.Options{})
	ctx := context.Background()
	a, b := e.connect("warm-a"), e.connect("warm-b")
	e.connect("warm-paused")
	if err := e.store(nil).Pause(ctx, "warm-paused"); err != nil {
		t.Fatal(err)
	}
	src := e.source(nil)
	rt := &roundTrips{}
	e.rdb.AddHook(rt)
	if err := src.Warm(ctx, []string{"warm-a", "warm-b", "warm-paused", "warm-missing"}); err != nil {
		t.Fatal(err)
	}
	if n := rt.n.Load(); n != 1 {
		t.Fatalf("Warm of 4 connections took %d round trips, want 1", n)
	}
	for id, want := range map[string]string{"warm-a": a.AccessToken, "warm-b": b.AccessToken} {
		tok, err := src.Token(ctx, id)
		if err != nil || tok.AccessToken != want {
			t.Fatalf("Token(%s) after Warm: %v (right token: %v)", id, err, tok.AccessToken == want)
		}
	}
	if n := rt.n.Load(); n != 1 {
		t.Fatalf("Token of warmed connections took %d more round trips, want 0", n-1)
	}
	if _, err := src.Token(ctx, "warm-paused"); !errors.Is(err, tokens.ErrPaused) {
		t.Fatalf("Token of a paused connection after Warm: %v, want ErrPaused", err)
	}
	if rt.n.Load() == 1 {
		t.Fatal("a paused connection was served from the cache")
	}
	// Already cached connections are not read again.
	before := rt.n.Load()
	if err := src.Warm(ctx, []string{"warm-a", "warm-b"}); err != nil || rt.n.Load() != before {
		t.Fatalf("Warm of cached connections: %v, %d round trips", err, rt.n.Load()-before)
	}
}

// With the cache off, Warm does nothing.
func TestWarmWithoutCacheIsANoOp(t *testing.T) {
	e := newEnv(t, notionfake.Options{})
	e.connect("warm-off")
	src := e.source(func(c *tokens.Config) { c.CacheMaxAge = -1 })
	rt := &roundTrips{}
	e.rdb.AddHook(rt)
	if err := src.Warm(context.Background(), []string{"warm-off"}); err != nil || rt.n.Load() != 0 {
		t.Fatalf("Warm with the cache off: %v, %d round trips", err, rt.n.Load())
	}
}
