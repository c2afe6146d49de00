package jobs

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/redistest"
)

// The errored index holds every connection with a per-object error,
// whichever writer recorded it; a connection whose errors cleared is
// pruned by the reader and not listed; pages split by id without
// duplicates.
func TestErroredIndex(t *testing.T) {
	rdb := redistest.StartTB(t, redistest.Options{}).Client()
	t.Cleanup(func() { rdb.Close() })
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
	if n, err := rdb.ZScore(ctx, s.erroredKey(), "c2").Result(); err != redis.Nil {
		t.Fatalf("c2 still indexed: %v %v", n, err)
	}
}

func TestRunningTasks(t *testing.T) {
	rdb := redistest.StartTB(t, redistest.Options{}).Client()
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	s := &state{rdb: rdb, prefix: "notionsync:", claimTTL: time.Minute}
	for _, m := range []string{leaseMember(leaseSweep, "a", "sweep:a:1"), leaseMember(leaseDrain, "b", "drain:b"),
		leaseMember(leaseDB, "a", "db:a:x:1:2", "x")} {
		if err := s.addLease(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := (&StateReader{s: s}).RunningTasks(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(x, y TaskRef) int { return cmpString(x.ID, y.ID) })
	want := []TaskRef{{Kind: "db", Queue: QueueSync, ID: "db:a:x:1:2"}, {Kind: "sweep", Queue: QueueSync, ID: "sweep:a:1"}}
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
