package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/redistest"
)

// The errored index holds every connection with a per-object error,
// whichever writer recorded it; a connection whose errors cleared is
// pruned by the reader and not listed; pages split by id without
// duplicates.
func TestErroredIndex(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		rdb := redistest.StartTB(t, redistest.Options{}).Client()
		t.Cleanup(func() { rdb.Close() })
		testErroredIndex(t, rdb)
	})
	t.Run("cluster", func(t *testing.T) { testErroredIndex(t, ClusterForTest(t)) })
}

func testErroredIndex(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	now := time.Now()
	s := &state{rdb: rdb, prefix: "notionsync:", claimTTL: time.Minute}
	r := &StateReader{s: s}

	// Three writers: setError, done with an error, deferTodo with a message.
	for i := range 5 {
		if err := s.setError(ctx, fmt.Sprintf("c%d", i), "obj", ErrorPermanent, "denied", now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.done(ctx, "d1", doneArgs{objectID: "p1", errMsg: "capped"}, now); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, s.todoKey("t1"), "p2", "{}").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.deferTodo(ctx, "t1", todoItem{ID: "p2"}, "rate limited", now); err != nil {
		t.Fatal(err)
	}
	// c2's error clears (a later success).
	if _, err := s.done(ctx, "c2", doneArgs{objectID: "obj"}, now); err != nil {
		t.Fatal(err)
	}

	want := []string{"c0", "c1", "c3", "c4", "d1", "t1"}
	for _, size := range []int{1, 2, 4, 100} {
		var got []string
		after := ""
		for range 100 {
			ids, next, err := r.ErroredPage(ctx, after, size)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) > size {
				t.Fatalf("page of %d holds %d", size, len(ids))
			}
			got = append(got, ids...)
			if next == "" {
				break
			}
			after = next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages of %d: %v, want %v", size, got, want)
		}
	}
	// The cleared connection was pruned from the index itself.
	if n, err := rdb.ZScore(ctx, s.erroredKey("c2"), "c2").Result(); err != redis.Nil {
		t.Fatalf("c2 still indexed: %v %v", n, err)
	}
}

func TestRunningTasks(t *testing.T) {
	rdb := redistest.StartTB(t, redistest.Options{}).Client()
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	s := &state{rdb: rdb, prefix: "notionsync:", claimTTL: time.Minute}
	// A sweep in the sync queue, a database task of a first sync in the
	// backfill queue, another connection's drain, and a lease whose task
	// asynq no longer has.
	client := asynq.NewClientFromRedisClient(rdb)
	for _, task := range []struct{ id, queue string }{{"sweep:a:1", QueueSync}, {"g1:db:a:x:1:2", QueueBackfill}, {"drain:b", QueueSync}} {
		if _, err := client.EnqueueContext(ctx, asynq.NewTask(TypeSweep, nil), asynq.TaskID(task.id), asynq.Queue(task.queue)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{leaseMember(leaseSweep, "a", "sweep:a:1"), leaseMember(leaseDrain, "b", "drain:b"),
		leaseMember(leaseDB, "a", "g1:db:a:x:1:2", "x"), leaseMember(leaseDrain, "a", "drain:a:gone")} {
		if err := s.addLease(ctx, strings.Split(m, "\n")[1], m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := (&StateReader{s: s}).RunningTasks(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(x, y TaskRef) int { return cmpString(x.ID, y.ID) })
	want := []TaskRef{
		{Kind: "drain", ID: "drain:a:gone"},
		{Kind: "db", ID: "g1:db:a:x:1:2", Queue: QueueBackfill, State: "pending"},
		{Kind: "sweep", ID: "sweep:a:1", Queue: QueueSync, State: "pending"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("RunningTasks(a) = %+v, want %+v", got, want)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
