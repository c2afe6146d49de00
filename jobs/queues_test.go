package jobs_test

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/jobs"
)

// queueRecorder is an Enqueuer that records the queue each task was given.
type queueRecorder struct{ queues map[string]string } // task id -> queue

func (r *queueRecorder) EnqueueContext(_ context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	id, q := "", "default"
	for _, o := range opts {
		switch o.Type() {
		case asynq.TaskIDOpt:
			id = o.Value().(string)
		case asynq.QueueOpt:
			q = o.Value().(string)
		}
	}
	r.queues[id] = q
	return &asynq.TaskInfo{ID: id, Queue: q}, nil
}

// connInShard returns a connection id of shard i.
func connInShard(i int) string {
	for k := 0; ; k++ {
		if id := fmt.Sprintf("conn-%d", k); keyspace.ShardOf(id) == i {
			return id
		}
	}
}

func TestQueueForSpreadsByShard(t *testing.T) {
	t.Parallel()
	if q := jobs.QueueFor(jobs.QueueSync, "c1", 1); q != jobs.QueueSync {
		t.Errorf("one part: %q, want the base name", q)
	}
	// With 3 parts, the three thirds of the shards (the three masters'
	// share of the connection keys) go to three queues whose slots lie in
	// the three thirds of the slot space.
	for _, base := range []string{jobs.QueueTokens, jobs.QueueSync, jobs.QueueBackfill} {
		for shard := range keyspace.Shards {
			conn := connInShard(shard)
			q := jobs.QueueFor(base, conn, 3)
			j := shard * 3 / keyspace.Shards
			if want := keyspace.SpreadName(base, j, 3); q != want {
				t.Fatalf("QueueFor(%s, shard %d) = %q, want part %d %q", base, shard, q, j, want)
			}
			// asynq's keys of the queue are tagged {q}.
			lo, hi := j*(keyspace.SlotCount/3), (j+1)*(keyspace.SlotCount/3)
			if j == 2 {
				hi = keyspace.SlotCount
			}
			if s := keyspace.Slot("asynq:{" + q + "}:pending"); s < lo || s >= hi {
				t.Errorf("queue %q of part %d is in slot %d", q, j, s)
			}
		}
	}
}

func TestSpreadQueuesEnqueuer(t *testing.T) {
	t.Parallel()
	rec := &queueRecorder{queues: map[string]string{}}
	c := jobs.NewClient(jobs.SpreadQueues(rec, 3))
	ctx := context.Background()
	conns := []string{connInShard(0), connInShard(30), connInShard(63)}
	for _, conn := range conns {
		if err := c.EnqueueRefresh(ctx, conn, 1); err != nil {
			t.Fatal(err)
		}
		if err := c.SyncNow(ctx, conn); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.EnqueueSweeps(ctx, conns, nil); err == nil {
		t.Fatal("EnqueueSweeps with no slots succeeded")
	}
	seen := map[string]bool{}
	for id, q := range rec.queues {
		var conn, base string
		for _, c := range conns {
			if fmt.Sprintf("refresh:%s:v1", c) == id {
				conn, base = c, jobs.QueueTokens
			} else if len(id) > len("sweep:"+c) && id[:len("sweep:"+c)+1] == "sweep:"+c+":" {
				conn, base = c, jobs.QueueSync
			}
		}
		if conn == "" {
			t.Fatalf("unexpected task %q", id)
		}
		if want := jobs.QueueFor(base, conn, 3); q != want {
			t.Errorf("task %s went to %q, want %q", id, q, want)
		}
		seen[q] = true
	}
	if len(seen) != 6 {
		t.Errorf("3 connections in 3 thirds x 2 queues used %d queues, want 6: %v", len(seen), rec.queues)
	}

	// A task that names no connection is placed by its id.
	if _, err := jobs.SpreadQueues(rec, 3).EnqueueContext(ctx, asynq.NewTask("t", []byte("not json")),
		asynq.Queue(jobs.QueueSync), asynq.TaskID("batch-1")); err != nil {
		t.Fatal(err)
	}
	if q, want := rec.queues["batch-1"], jobs.QueueFor(jobs.QueueSync, "batch-1", 3); q != want {
		t.Errorf("task without a connection went to %q, want %q", q, want)
	}

	// One part: the Enqueuer is unchanged and the names are today's.
	rec = &queueRecorder{queues: map[string]string{}}
	if err := jobs.NewClient(jobs.SpreadQueues(rec, 1)).EnqueueRefresh(ctx, conns[2], 1); err != nil {
		t.Fatal(err)
	}
	if q := rec.queues["refresh:"+conns[2]+":v1"]; q != jobs.QueueTokens {
		t.Errorf("one part: queue %q", q)
	}
}

func TestServedQueues(t *testing.T) {
	t.Parallel()
	base := map[string]int{"tokens": 6, "sync": 3, "backfill": 1}
	if got := jobs.ServedQueues(base, 1, []string{"tokens", "sync", "other"}); !maps.Equal(got, base) {
		t.Errorf("one part: %v", got)
	}
	got := jobs.ServedQueues(base, 3, nil)
	if len(got) != 9 {
		t.Errorf("3 parts of 3 queues: %d queues, want 9: %v", len(got), got)
	}
	for b, w := range base {
		if _, ok := got[b]; ok {
			t.Errorf("base %s served though it does not exist", b)
		}
		for j := range 3 {
			if q := keyspace.SpreadName(b, j, 3); got[q] != w {
				t.Errorf("part %s: weight %d, want %d", q, got[q], w)
			}
		}
	}
	// Parts left over from another number are served with their base's
	// weight; unrelated queues are not.
	old := keyspace.SpreadName("sync", 1, 2)
	got = jobs.ServedQueues(base, 3, []string{old, "unrelated.1", "sync-x", keyspace.SpreadName("backfill", 4, 5), "tokens"})
	if got[old] != 3 || got[keyspace.SpreadName("backfill", 4, 5)] != 1 || got["tokens"] != 6 || len(got) != 12 {
		t.Errorf("leftover parts not served with their base's weight: %v", got)
	}
	if _, ok := got["unrelated.1"]; ok {
		t.Errorf("served a queue of no configured base: %v", got)
	}
	if _, ok := got["sync-x"]; ok {
		t.Errorf("served sync-x: %v", got)
	}
}
