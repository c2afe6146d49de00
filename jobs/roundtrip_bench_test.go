package jobs_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/jobs"
)

// BenchmarkSyncRedisRoundTrips measures what the sync costs Redis per
// Notion request, on a single server and on a 3-master Redis Cluster: a
// full sync of a 200-page workspace (sweep, drains, pages, the rate
// limiter), then a sweep of the unchanged workspace. Counted: round trips
// that touch notionsync's keys (asynq's own dequeue polling, which
// depends on the test's poll interval, is left out; its enqueues are
// counted only when a notionsync key is in the same pipeline), as the
// client sees them (a pipeline is one, whatever the nodes it spans) and
// as the nodes see them (a cluster pipeline over k nodes is k, sent in
// parallel). Reproduce with
//
//	go test -run '^$' -bench SyncRedisRoundTrips -benchtime 3x ./jobs
func BenchmarkSyncRedisRoundTrips(b *testing.B) {
	for _, cluster := range []bool{false, true} {
		name := "redis=single"
		if cluster {
			name = "redis=cluster"
		}
		b.Run(name, func(b *testing.B) { benchSyncRoundTrips(b, cluster) })
	}
}

func benchSyncRoundTrips(b *testing.B, cluster bool) {
	// One system per run (the package's cluster is held by one test at a
	// time); each iteration syncs a workspace of its own.
	e := newEnv(b, envOpts{cluster: cluster, spec: notionfake.SeedSpec{Seed: 1, Pages: 1}})
	client, node := &nsTrips{}, &nsTrips{}
	e.rdb.AddHook(client)
	switch r := e.rdb.(type) {
	case *redis.ClusterClient:
		// Nodes the client already dialed, and any it meets later.
		_ = r.ForEachShard(context.Background(), func(_ context.Context, c *redis.Client) error { c.AddHook(node); return nil })
		r.OnNewNode(func(c *redis.Client) { c.AddHook(node) })
	default:
		node = client
	}
	e.startWorkers(benchConcurrency)
	var full, resweep tripCount
	i := 0
	for b.Loop() {
		i++
		ws := fmt.Sprintf("ws-rt-%d", i)
		conn, _ := e.addConnection(ws, benchSpec)
		// Seeded content is last edited now: synced within its own
		// minute it would be fetched again by the next sweep.
		e.clock.Advance(2 * time.Minute)
		before := e.fake.RequestCount(ws)
		c0, n0 := client.n.Load(), node.n.Load()
		e.sweepFor(conn)
		e.waitSyncedFor(conn)
		e.waitIdle()
		full.add(client.n.Load()-c0, node.n.Load()-n0, e.fake.RequestCount(ws)-before)

		e.clock.Advance(10 * time.Minute)
		before = e.fake.RequestCount(ws)
		c0, n0 = client.n.Load(), node.n.Load()
		if err := e.runTask(jobs.TypeSweep, fmt.Sprintf(`{"conn_id":%q}`, conn)); err != nil {
			b.Fatal(err)
		}
		resweep.add(client.n.Load()-c0, node.n.Load()-n0, e.fake.RequestCount(ws)-before)
	}
	full.report(b, "full-sync")
	resweep.report(b, "unchanged-sweep")
}

type tripCount struct{ client, node, requests int64 }

func (t *tripCount) add(client, node int64, requests int) {
	t.client += client
	t.node += node
	t.requests += int64(requests)
}

func (t *tripCount) report(b *testing.B, phase string) {
	if t.requests == 0 {
		return
	}
	b.ReportMetric(float64(t.client)/float64(t.requests), phase+"-round-trips/notion-request")
	b.ReportMetric(float64(t.node)/float64(t.requests), phase+"-node-round-trips/notion-request")
	b.ReportMetric(float64(t.requests)/float64(b.N), phase+"-notion-requests")
}

// nsTrips counts round trips (single commands and pipelines) that touch a
// key under "notionsync:".
type nsTrips struct{ n atomic.Int64 }

func (*nsTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *nsTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if ours(cmd) {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *nsTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if ours(c) {
				h.n.Add(1)
				break
			}
		}
		return next(ctx, cmds)
	}
}

// ours reports whether cmd names a notionsync key (its first key).
func ours(cmd redis.Cmder) bool {
	args := cmd.Args()
	key := 1
	switch cmd.Name() {
	case "eval", "evalsha", "eval_ro", "evalsha_ro":
		if len(args) < 4 {
			return false
		}
		if n, _ := strconv.Atoi(fmt.Sprint(args[2])); n == 0 {
			return false
		}
		key = 3
	}
	if len(args) <= key {
		return false
	}
	k, _ := args[key].(string)
	return strings.HasPrefix(k, "notionsync:")
}
