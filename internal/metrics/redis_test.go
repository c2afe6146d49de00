package metrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/metrics"
	"github.com/notionsync/notionsync/internal/redistest"
)

// hookedClient returns a client of its own Redis database with a fresh
// RedisHook for prefix installed, and the registry holding its metrics.
func hookedClient(t *testing.T, prefix string) (*redis.Client, *prometheus.Registry) {
	t.Helper()
	rdb := queueClient(t)
	reg := prometheus.NewRegistry()
	h, err := metrics.NewRedisHook(reg, prefix)
	if err != nil {
		t.Fatal(err)
	}
	rdb.AddHook(h)
	return rdb, reg
}

// redisCounts is the change of the Redis round-trip metrics between two
// readings, keyed "round_trips/<component>" and "commands/<component>".
// Component "other" is left out: connection set-up (HELLO, CLIENT SETINFO,
// SELECT) counts there whenever the pool dials.
func redisCounts(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range changed(before, after) {
		if strings.Contains(k, `component="other"`) {
			continue
		}
		k = strings.TrimPrefix(k, "notionsync_redis_")
		k = strings.Replace(k, `_total{component="`, "/", 1)
		out[strings.TrimSuffix(k, `"}`)] = v
	}
	return out
}

func TestRedisHookStartsAtZero(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	if _, err := metrics.NewRedisHook(reg, "notionsync:"); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for _, c := range metrics.RedisComponents() {
		want[`notionsync_redis_round_trips_total{component="`+c+`"}`] = 0
		want[`notionsync_redis_commands_total{component="`+c+`"}`] = 0
	}
	if d := sameSamples(series(t, reg), want); d != "" {
		t.Error(d)
	}
}

func TestNewRedisHookErrors(t *testing.T) {
	t.Parallel()
	if _, err := metrics.NewRedisHook(nil, "p:"); err == nil {
		t.Error("nil registerer: no error")
	}
	reg := prometheus.NewRegistry()
	if _, err := metrics.NewRedisHook(reg, "p:"); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.NewRedisHook(reg, "p:"); err == nil {
		t.Error("second hook on the same registry: no error")
	}
	// The failed constructor left the first one's metrics alone, and
	// nothing of its own.
	if n := len(series(t, reg)); n != 2*len(metrics.RedisComponents()) {
		t.Errorf("%d series after a failed second registration, want %d", n, 2*len(metrics.RedisComponents()))
	}
}

func TestRedisHookCountsRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := redistest.UniquePrefix(t)
	rdb, reg := hookedClient(t, p)

	t.Run("pipeline", func(t *testing.T) {
		before := series(t, reg)
		_, err := rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, p+"sync:c1", "x", 0)
			pipe.Get(ctx, p+"sync:c1")
			pipe.Incr(ctx, p+"conn:c1:n") // classified by the first key only
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{"round_trips/syncstate": 1, "commands/syncstate": 3}
		if d := sameSamples(redisCounts(before, series(t, reg)), want); d != "" {
			t.Error(d)
		}
	})

	t.Run("transaction", func(t *testing.T) {
		before := series(t, reg)
		_, err := rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.HSet(ctx, p+"conn:c1", "v", 1)
			pipe.ZAdd(ctx, p+"due", redis.Z{Score: 1, Member: "c1"})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// MULTI, HSET, ZADD, EXEC; MULTI names no key.
		want := map[string]float64{"round_trips/tokens": 1, "commands/tokens": 4}
		if d := sameSamples(redisCounts(before, series(t, reg)), want); d != "" {
			t.Error(d)
		}
	})

	t.Run("script", func(t *testing.T) {
		// A script no server has seen (the prefix is random): the first
		// Run is EVALSHA, NOSCRIPT, then EVAL; the second is EVALSHA.
		script := redis.NewScript("-- " + p + "\nreturn redis.call('INCR', KEYS[1])")
		before := series(t, reg)
		for i := 1; i <= 2; i++ {
			n, err := script.Run(ctx, rdb, []string{p + "notion:{c1}:gcra"}).Int64()
			if err != nil || n != int64(i) {
				t.Fatalf("run %d: %v, %v", i, n, err)
			}
		}
		want := map[string]float64{"round_trips/ratelimit": 3, "commands/ratelimit": 3}
		if d := sameSamples(redisCounts(before, series(t, reg)), want); d != "" {
			t.Error(d)
		}
	})

	t.Run("single commands", func(t *testing.T) {
		before := series(t, reg)
		for _, err := range []error{
			rdb.Set(ctx, p+"scheduler:leader", "me", 0).Err(),
			rdb.Get(ctx, p+"oauth:state:ab").Err(),
			rdb.Publish(ctx, p+"token-events", "c1 1 refreshed").Err(),
			rdb.Ping(ctx).Err(),
		} {
			if err != nil && !errors.Is(err, redis.Nil) {
				t.Fatal(err)
			}
		}
		after := series(t, reg)
		want := map[string]float64{
			"round_trips/schedule": 1, "commands/schedule": 1,
			"round_trips/control": 1, "commands/control": 1,
			"round_trips/tokens": 1, "commands/tokens": 1,
		}
		if d := sameSamples(redisCounts(before, after), want); d != "" {
			t.Error(d)
		}
		const otherTrips = `notionsync_redis_round_trips_total{component="other"}`
		if after[otherTrips]-before[otherTrips] < 1 {
			t.Errorf("PING not counted as other")
		}
	})
}

// TestRedisHookAsynq: every call asynq makes (enqueue, inspect) lands in
// "queue"; none is taken for one of notionsync's components.
func TestRedisHookAsynq(t *testing.T) {
	t.Parallel()
	rdb, reg := hookedClient(t, "notionsync:")
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	before := series(t, reg)
	if _, err := client.Enqueue(asynq.NewTask("test:task", nil), asynq.Queue("sync")); err != nil {
		t.Fatal(err)
	}
	if _, err := insp.GetQueueInfo("sync"); err != nil {
		t.Fatal(err)
	}
	got := redisCounts(before, series(t, reg))
	if got["round_trips/queue"] < 2 {
		t.Errorf("queue round trips = %v, want at least 2 (an enqueue and an inspection)", got["round_trips/queue"])
	}
	for k, v := range got {
		if k != "round_trips/queue" && k != "commands/queue" {
			t.Errorf("asynq counted in %s (+%v)", k, v)
		}
	}
}

// Install the hook on the process's one Redis client: every component
// using that client (asynq included) is counted.
func ExampleNewRedisHook() {
	reg := prometheus.NewRegistry()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	h, err := metrics.NewRedisHook(reg, "notionsync:")
	if err != nil {
		panic(err)
	}
	rdb.AddHook(h)
	// Build asynq, the token store, the rate limiter ... on rdb; serve reg
	// on /metrics.
}
