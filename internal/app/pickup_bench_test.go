package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// countHook counts round trips (a pipeline is one).
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// BenchmarkIdlePickup prices NOTIONSYNC_WORKER_POLL_INTERVAL and
// NOTIONSYNC_WORKER_DELAYED_CHECK_INTERVAL on an idle fleet of 4 workers
// serving 3 queues, configured as internal/app's worker configures asynq:
// the round trips per second the idle workers send (asynq's polls,
// forwarder, heartbeats, ...), and how long a task enqueued into that idle
// fleet waits before a worker starts it (the pickup latency a longer poll
// interval costs). Run with
//
//	go test -run '^$' -bench IdlePickup -benchtime 1x ./internal/app/
//
// Each case takes about 20 samples x (interval / 2) plus a 15 s idle window.
func BenchmarkIdlePickup(b *testing.B) {
	for _, c := range []struct{ poll, delayed time.Duration }{
		{time.Second, 5 * time.Second},
		{3 * time.Second, 10 * time.Second},
		{5 * time.Second, 10 * time.Second},
	} {
		b.Run(fmt.Sprintf("poll=%s/delayed=%s", c.poll, c.delayed), func(b *testing.B) {
			for range b.N {
				benchIdlePickup(b, c.poll, c.delayed)
			}
		})
	}
}

func benchIdlePickup(b *testing.B, poll, delayed time.Duration) {
	const workers, samples = 4, 20
	idle := 15 * time.Second
	// asynq's keys have no prefix: unique queue names keep runs apart.
	tag := fmt.Sprintf("pickup%d", rand.Int64())
	queues := map[string]int{tag + "-tokens": 6, tag + "-sync": 3, tag + "-backfill": 1}

	hook := &countHook{}
	started := make(chan time.Time, samples)
	var srvs []*asynq.Server
	var clients []*redis.Client
	defer func() {
		for _, s := range srvs {
			s.Shutdown()
		}
		for _, c := range clients {
			c.Close()
		}
	}()
	for range workers {
		rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr()})
		rdb.AddHook(hook)
		clients = append(clients, rdb)
		srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
			Concurrency: 4, Queues: queues,
			TaskCheckInterval: poll, DelayedTaskCheckInterval: delayed, JanitorInterval: time.Minute,
			LogLevel: asynq.ErrorLevel,
		})
		mux := asynq.NewServeMux()
		mux.HandleFunc("pickup", func(context.Context, *asynq.Task) error {
			started <- time.Now()
			return nil
		})
		if err := srv.Start(mux); err != nil {
			b.Fatal(err)
		}
		srvs = append(srvs, srv)
	}
	pub := redis.NewClient(&redis.Options{Addr: redisSrv.Addr()})
	clients = append(clients, pub)
	client := asynq.NewClientFromRedisClient(pub)

	// The idle cost: every worker's loops, nothing to do. The first
	// seconds (start-up writes) are left out.
	time.Sleep(delayed) // let the loops settle: start-up is not the steady cost
	n0, t0 := hook.n.Load(), time.Now()
	time.Sleep(idle)
	perSec := float64(hook.n.Load()-n0) / time.Since(t0).Seconds()

	var waits []time.Duration
	for range samples {
		// A task arrives at a random moment relative to the workers' polls.
		time.Sleep(rand.N(poll))
		sent := time.Now()
		if _, err := client.Enqueue(asynq.NewTask("pickup", nil), asynq.Queue(tag+"-sync")); err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-started:
			waits = append(waits, at.Sub(sent))
		case <-time.After(3 * poll):
			b.Fatalf("no worker started the task within %s", 3*poll)
		}
	}
	slices.Sort(waits)
	var sum time.Duration
	for _, w := range waits {
		sum += w
	}
	b.ReportMetric(perSec, "idle-rt/s")
	b.ReportMetric(float64(sum.Milliseconds())/float64(len(waits)), "pickup-mean-ms")
	b.ReportMetric(float64(waits[len(waits)/2].Milliseconds()), "pickup-p50-ms")
	b.ReportMetric(float64(waits[len(waits)*9/10].Milliseconds()), "pickup-p90-ms")
	b.ReportMetric(float64(waits[len(waits)-1].Milliseconds()), "pickup-max-ms")
}
