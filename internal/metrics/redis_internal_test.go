package metrics

import (
	"context"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

func TestRedisComponentOfCommand(t *testing.T) {
	t.Parallel()
	const p = "notionsync:"
	for _, tc := range []struct {
		prefix string
		args   []any
		want   string
	}{
		// asynq's keys, whatever the prefix.
		{p, []any{"lrange", "asynq:{default}:pending", 0, -1}, "queue"},
		{p, []any{"smembers", "asynq:queues"}, "queue"},
		{p, []any{"zadd", "asynq:servers", 1, "host"}, "queue"},
		{"", []any{"get", "asynq:{sync}:t:1"}, "queue"},
		{p, []any{"evalsha", "0123abcd", 2, "asynq:{default}:t:9", "asynq:{default}:pending", "arg"}, "queue"},
		// tokens
		{p, []any{"hmget", p + "conn:c1", "v", "rt"}, "tokens"},
		{p, []any{"lrange", p + "conn:c1:events", 0, -1}, "tokens"},
		{p, []any{"evalsha", "abc", 1, p + "lock:c1", "value", 8000}, "tokens"},
		{p, []any{"zrangebyscore", p + "due", "-inf", "100"}, "tokens"},
		{p, []any{"zrange", p + "connections", 0, -1}, "tokens"},
		{p, []any{"publish", p + "token-events", "c1 3 refreshed"}, "tokens"},
		// rate limiter
		{p, []any{"eval", "return 1", 2, p + "notion:{c1}:gcra", p + "notion:{c1}:backoff", 3}, "ratelimit"},
		{p, []any{"EVAL_RO", "return 1", "1", p + "notion:{c1}:gcra"}, "ratelimit"},
		{p, []any{"evalsha_ro", "abc", int64(1), p + "notion:{c1}:gcra"}, "ratelimit"},
		// sync state
		{p, []any{"hgetall", p + "sync:c1"}, "syncstate"},
		{p, []any{"scard", p + "sync:c1:pending"}, "syncstate"},
		{p, []any{"get", p + "ckpt:c1:page:abc"}, "syncstate"},
		{p, []any{"set", p + "busy:c1:page:abc", "1", "nx"}, "syncstate"},
		{p, []any{"fcall", "drain_step", 1, p + "drain:c1"}, "syncstate"},
		// schedule
		{p, []any{"set", p + "scheduler:leader", "me", "px", 5000, "nx"}, "schedule"},
		{p, []any{"zadd", p + "sweeps", 1, "c1"}, "schedule"},
		{p, []any{"get", p + "sweeps:cursor"}, "schedule"},
		// control: the rest of the prefix
		{p, []any{"getdel", p + "oauth:state:ab12"}, "control"},
		{p, []any{"set", p + "webhook:notion:dedup:x:y", 1}, "control"},
		{p, []any{"smembers", p + "workspace:w1:connections"}, "control"},
		{p, []any{"get", p + "somethingnew"}, "control"},
		{"", []any{"get", "conn:c1"}, "tokens"},
		{"", []any{"get", "anything"}, "control"},
		{"other:", []any{"get", "notionsync:conn:c1"}, "other"},
		// The cluster key scheme: "<prefix>{<tag>}:<name>" counts as
		// "<prefix><name>".
		{p, []any{"hmget", p + "{s7.113}:conn:c1", "v", "rt"}, "tokens"},
		{p, []any{"evalsha", "abc", 8, p + "{s7.113}:conn:c1", p + "{s7.113}:due", 1}, "tokens"},
		{p, []any{"zrangebyscore", p + "{s0.12}:due", "-inf", "100"}, "tokens"},
		{p, []any{"zrange", p + "{s63.4}:connections", 0, -1}, "tokens"},
		{p, []any{"zcard", p + "{s63.4}:status:active"}, "tokens"},
		{p, []any{"set", p + "{s7.113}:lock:c1", "v", "px", 8000, "nx"}, "tokens"},
		{p, []any{"evalsha", "abc", 1, p + "{s7.113}:notion:c1:gcra", 3}, "ratelimit"},
		{p, []any{"hgetall", p + "{s7.113}:sync:c1"}, "syncstate"},
		{p, []any{"zadd", p + "{s7.113}:busy:leases", 1, "c1"}, "syncstate"},
		{p, []any{"zrange", p + "{s7.113}:sync:errored", 0, -1}, "syncstate"},
		{p, []any{"zrangebyscore", p + "{s2.40}:sweeps", "-inf", "1"}, "schedule"},
		{p, []any{"evalsha", "abc", 2, p + "{oauth}:oauth:state:ab12", p + "{oauth}:oauth:states"}, "control"},
		{p, []any{"set", p + "{s7.113}:webhook:notion:dedup:c1:e", 1}, "control"},
		{p, []any{"set", p + "{s7.113}:reauth-notified:c1:3", 1}, "control"},
		// Not the scheme: no tag, an empty one, or braces elsewhere.
		{p, []any{"get", p + "{}:conn:c1"}, "control"},
		{p, []any{"get", p + "{s1}conn:c1"}, "control"},
		{p, []any{"get", p + "{unclosed:conn:c1"}, "control"},
		{p, []any{"get", "asynq:{default}:pending"}, "queue"},
		{"", []any{"get", "{s1.2}:conn:c1"}, "tokens"},
		// no key
		{p, []any{"ping"}, "other"},
		{p, []any{"time"}, "other"},
		{p, []any{"info", "commandstats"}, "other"},
		{p, []any{"client", "setinfo", "LIB-NAME", "go-redis"}, "other"},
		{p, []any{"hello", 3}, "other"},
		{p, []any{"select", 2}, "other"},
		{p, []any{"script", "load", "return 1"}, "other"},
		{p, []any{"eval", "return 1", 0}, "other"},
		{p, []any{"eval", "return 1", 0, p + "conn:not-a-key"}, "other"},
		{p, []any{"evalsha", "abc"}, "other"},
		{p, []any{"eval", "return 1", "x", p + "conn:c1"}, "other"},
		{p, []any{"get", []byte(p + "conn:c1")}, "other"},
		{p, []any{}, "other"},
		{p, []any{"get", "foreign:key"}, "other"},
		// key elsewhere than args[1]
		{p, []any{"memory", "usage", p + "conn:c1"}, "tokens"},
		{p, []any{"object", "encoding", p + "sync:c1"}, "syncstate"},
		{p, []any{"memory", "stats"}, "other"},
		{p, []any{"xread", "count", 10, "streams", p + "sync:c1", "0"}, "syncstate"},
		{p, []any{"xreadgroup", "group", "g", "c", "STREAMS", "asynq:s", ">"}, "queue"},
		{p, []any{"xread", "count", 10}, "other"},
		{p, []any{"GET", p + "conn:c1"}, "tokens"},
	} {
		cmd := redis.NewCmd(context.Background(), tc.args...)
		c := compOther
		if key, ok := redisFirstKey(cmd.Name(), cmd.Args()); ok {
			c = redisKeyComponent(tc.prefix, key)
		}
		if got := c.String(); got != tc.want {
			t.Errorf("prefix %q, %v: component %q, want %q", tc.prefix, tc.args, got, tc.want)
		}
	}
}

func TestRedisComponentsList(t *testing.T) {
	t.Parallel()
	got := RedisComponents()
	want := []string{"other", "queue", "tokens", "ratelimit", "syncstate", "schedule", "control"}
	if len(got) != len(want) {
		t.Fatalf("RedisComponents() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("RedisComponents() = %v, want %v", got, want)
		}
	}
}

// TestRedisHookAllocations: counting a command or a pipeline allocates
// nothing (the hook's closures are built once, when go-redis installs it).
func TestRedisHookAllocations(t *testing.T) {
	h, err := NewRedisHook(prometheus.NewRegistry(), "notionsync:")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	process := h.ProcessHook(func(context.Context, redis.Cmder) error { return nil })
	pipeline := h.ProcessPipelineHook(func(context.Context, []redis.Cmder) error { return nil })
	script := redis.NewCmd(ctx, "evalsha", "abc", 1, "notionsync:notion:{c1}:gcra", 5)
	tx := []redis.Cmder{
		redis.NewStatusCmd(ctx, "multi"),
		redis.NewStringCmd(ctx, "get", "notionsync:sync:c1"),
		redis.NewSliceCmd(ctx, "exec"),
	}
	if n := testing.AllocsPerRun(1000, func() {
		_ = process(ctx, script)
		_ = pipeline(ctx, tx)
	}); n != 0 {
		t.Errorf("%v allocations per counted command and pipeline, want 0", n)
	}
	if got := testutil.ToFloat64(h.trips[compRateLimit]); got != 1001 { // AllocsPerRun runs once more to warm up
		t.Errorf("ratelimit round trips = %v, want 1001", got)
	}
	if got := testutil.ToFloat64(h.commands[compSyncState]); got != 3*1001 {
		t.Errorf("syncstate commands = %v, want %v", got, 3*1001)
	}
}

// TestRedisHookConcurrently counts from many goroutines (run with -race)
// and checks that no call was lost.
func TestRedisHookConcurrently(t *testing.T) {
	t.Parallel()
	h, err := NewRedisHook(prometheus.NewRegistry(), "p:")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	process := h.ProcessHook(func(context.Context, redis.Cmder) error { return nil })
	pipeline := h.ProcessPipelineHook(func(context.Context, []redis.Cmder) error { return nil })
	const goroutines, each = 16, 500
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				_ = process(ctx, redis.NewStringCmd(ctx, "get", "p:conn:c"))
				_ = pipeline(ctx, []redis.Cmder{redis.NewStatusCmd(ctx, "ping"), redis.NewIntCmd(ctx, "incr", "asynq:x")})
			}
		})
	}
	wg.Wait()
	for _, c := range []struct {
		got, want float64
		name      string
	}{
		{testutil.ToFloat64(h.trips[compTokens]), goroutines * each, "tokens round trips"},
		{testutil.ToFloat64(h.commands[compTokens]), goroutines * each, "tokens commands"},
		{testutil.ToFloat64(h.trips[compQueue]), goroutines * each, "queue round trips"},
		{testutil.ToFloat64(h.commands[compQueue]), 2 * goroutines * each, "queue commands"},
		{testutil.ToFloat64(h.trips[compOther]), 0, "other round trips"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}
