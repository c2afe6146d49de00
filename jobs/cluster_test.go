package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/sync/sink"
)

// crossSlotHook counts the commands a Redis Cluster refused because their
// keys span slots (CROSSSLOT): a task that met one would be retried, and
// could still end synced, so the test counts them instead of trusting the
// outcome alone.
type crossSlotHook struct{ n atomic.Int64 }

func (h *crossSlotHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *crossSlotHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(cmd)
		return err
	}
}

func (h *crossSlotHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			h.check(c)
		}
		return err
	}
}

func (h *crossSlotHook) check(c redis.Cmder) {
	if err := c.Err(); err != nil && strings.Contains(err.Error(), "CROSSSLOT") {
		h.n.Add(1)
	}
}

// recordingEnqueuer keeps the tasks it is given instead of queueing them.
type recordingEnqueuer struct {
	mu    sync.Mutex
	tasks []*asynq.Task
}

func (r *recordingEnqueuer) EnqueueContext(_ context.Context, t *asynq.Task, _ ...asynq.Option) (*asynq.TaskInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tasks = append(r.tasks, t)
	return &asynq.TaskInfo{}, nil
}

// TestClusterSyncsEveryShard: connections of every one of the 64 key
// shards sync side by side on a 3-master Redis Cluster (sweeps, user
// listings, drains, pages and the rate limiter, with every script and
// MULTI naming one slot: the cluster refuses nothing); the lease reaper
// takes dead leases out of every shard of the lease index; and the errored
// index pages through connections of every shard in id order, pruning
// those whose errors cleared.
func TestClusterSyncsEveryShard(t *testing.T) {
	t.Parallel()
	spec := func(seed int64) notionfake.SeedSpec {
		return notionfake.SeedSpec{Seed: seed, Pages: 2, BlocksPerPage: 1, Users: 1}
	}
	e := newEnv(t, envOpts{cluster: true, spec: spec(60)})
	refused := &crossSlotHook{}
	e.rdb.AddHook(refused)
	ctx := context.Background()

	// One connection per shard.
	byShard := map[int]string{keyspace.ShardOf(e.conn): e.conn}
	for k := 0; len(byShard) < keyspace.Shards; k++ {
		ws := fmt.Sprintf("ws-shard-%d", k)
		if _, ok := byShard[keyspace.ShardOf("conn-"+ws)]; ok {
			continue
		}
		conn, _ := e.addConnection(ws, spec(int64(61+k)))
		byShard[keyspace.ShardOf(conn)] = conn
	}
	conns := make([]string, 0, len(byShard))
	for _, c := range byShard {
		conns = append(conns, c)
	}
	slices.Sort(conns)

	e.startWorkers(8)
	for _, c := range conns {
		e.sweepFor(c)
	}
	for _, c := range conns {
		if st := e.waitSyncedFor(c); st.PagesSynced < 2 || len(st.Errors) != 0 {
			t.Errorf("%s (shard %d): %+v, want its 2 pages and no error", c, keyspace.ShardOf(c), st)
		}
	}
	e.waitIdle()
	e.assertComplete()
	if n := e.archived(); n != 0 {
		t.Errorf("%d tasks archived", n)
	}
	for _, c := range conns {
		if us, err := e.sink.(sink.UserStore).GetUsers(ctx, c); err != nil || len(us.Users) == 0 {
			t.Errorf("%s: users not listed: %+v, %v", c, us, err)
		}
	}

	// The reaper: a dead database task's lease in every shard, and a live
	// one it must leave alone.
	for _, c := range conns {
		m := "db\n" + c + "\ng0:db:" + c + "\ndb-" + c
		if err := e.rdb.ZAdd(ctx, jobs.LeasesKeyForTest(c), redis.Z{Score: 1, Member: m}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	live := "db\n" + e.conn + "\ng0:db:live\ndb-live"
	if err := e.rdb.ZAdd(ctx, jobs.LeasesKeyForTest(e.conn), redis.Z{Score: float64(time.Now().Add(time.Hour).UnixMilli()), Member: live}).Err(); err != nil {
		t.Fatal(err)
	}
	rec := &recordingEnqueuer{}
	reaper, err := jobs.NewReaper(jobs.ReaperConfig{Redis: e.rdb, Enqueuer: rec})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := reaper.Reap(ctx); err != nil || n != len(conns) {
		t.Fatalf("Reap: %d, %v; want the %d dead leases handed on", n, err, len(conns))
	}
	var handed []string
	for _, task := range rec.tasks {
		var p jobs.DatabasePayload
		if err := json.Unmarshal(task.Payload(), &p); err != nil || task.Type() != jobs.TypeDatabase {
			t.Fatalf("task %s %s: %v", task.Type(), task.Payload(), err)
		}
		handed = append(handed, p.ConnID)
	}
	slices.Sort(handed)
	if !slices.Equal(handed, conns) {
		t.Fatalf("reaper handed on the tasks of %v, want one per connection %v", handed, conns)
	}
	if left, err := e.rdb.ZRange(ctx, jobs.LeasesKeyForTest(e.conn), 0, -1).Result(); err != nil || !slices.Equal(left, []string{live}) {
		t.Fatalf("lease index shard of %s after the reap: %q, %v; want the live lease only", e.conn, left, err)
	}

	// The errored index: an error in every shard; pages of 5 list them all
	// in id order; once half of them clear, only the others are listed
	// and the cleared ones are pruned from their shards.
	now := e.clock.Now()
	for _, c := range conns {
		if err := jobs.RecordErrorForTest(ctx, e.rdb, c, "obj", jobs.ErrorPermanent, "denied", now); err != nil {
			t.Fatal(err)
		}
	}
	r := jobs.NewStateReader(e.rdb, "")
	if got := erroredPages(t, r, 5); !slices.Equal(got, conns) {
		t.Fatalf("errored index lists %v, want %v", got, conns)
	}
	var kept []string
	for i, c := range conns {
		if i%2 == 0 {
			kept = append(kept, c)
			continue
		}
		if err := e.rdb.Del(ctx, jobs.SyncKey("", c)+":errors").Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got := erroredPages(t, r, 5); !slices.Equal(got, kept) {
		t.Fatalf("after half the errors cleared, the errored index lists %v, want %v", got, kept)
	}
	for i, c := range conns {
		_, err := e.rdb.ZScore(ctx, jobs.ErroredKey("", c), c).Result()
		if cleared := i%2 == 1; cleared != errors.Is(err, redis.Nil) {
			t.Errorf("%s (errors cleared %v): its errored index entry: %v", c, cleared, err)
		}
	}
	if n := refused.n.Load(); n != 0 {
		t.Fatalf("the cluster refused %d commands with CROSSSLOT", n)
	}
}

// erroredPages reads the whole errored index, size connections a page.
func erroredPages(t *testing.T, r *jobs.StateReader, size int) []string {
	t.Helper()
	var out []string
	after := ""
	for range 1000 {
		ids, next, err := r.ErroredPage(context.Background(), after, size)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) > size {
			t.Fatalf("a page of %d holds %d", size, len(ids))
		}
		out = append(out, ids...)
		if next == "" {
			return out
		}
		after = next
	}
	t.Fatal("the errored index does not end")
	return nil
}
