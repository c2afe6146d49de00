package jobs_test

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/jobs"
)

// roundTrips counts what a client sends: single commands and pipelines.
type roundTrips struct {
	commands, pipelines, pipelined atomic.Int32
}

func (*roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.commands.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		h.pipelined.Add(int32(len(cmds)))
		return next(ctx, cmds)
	}
}

// stateReaderClient is a client on a database of its own, written directly
// with the key layout documented in state.go.
func stateReaderClient(t *testing.T) *redis.Client {
	t.Helper()
	// One connection: after the first command, nothing but the test's own
	// commands goes through the hooks (no connection handshake).
	rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr(), DB: int(nextDB.Add(1)), PoolSize: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		// a: mid-sync, with two objects pending and a per-object error.
		p.HSet(ctx, jobs.SyncKey("", "a"), "cursor", ms(0), "target", ms(time.Minute), "last_sweep", ms(2*time.Minute),
			"last_sync", ms(3*time.Minute), "pages_synced", 42, "gen", 3)
		p.SAdd(ctx, jobs.SyncKey("", "a")+":pending", "page:p1", "sweep:search")
		p.HSet(ctx, jobs.SyncKey("", "a")+":errors", "db1", "database cannot be queried")
		// b: synced, nothing pending, no errors.
		p.HSet(ctx, jobs.SyncKey("", "b"), "cursor", ms(time.Hour), "target", ms(time.Hour), "pages_synced", 7)
		// Another prefix's state is not read.
		p.HSet(ctx, jobs.SyncKey("other:", "c"), "cursor", ms(0))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rdb
}

func TestStateReaderStates(t *testing.T) {
	t.Parallel()
	rdb := stateReaderClient(t)
	r := jobs.NewStateReader(rdb, "")
	ctx := context.Background()
	ids := []string{"b", "unknown", "a", "c", "b"}

	got, err := r.States(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ids) {
		t.Fatalf("States returned %d states for %d ids", len(got), len(ids))
	}
	for i, id := range ids {
		want, err := r.State(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("States[%d] (%s) = %+v, State = %+v", i, id, got[i], want)
		}
	}

	// The values themselves, so that States and State cannot agree on a
	// wrong reading.
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	a := got[2]
	if !a.Cursor.Equal(t0) || !a.Target.Equal(t0.Add(time.Minute)) || !a.LastSweep.Equal(t0.Add(2*time.Minute)) ||
		!a.LastSync.Equal(t0.Add(3*time.Minute)) || a.PagesSynced != 42 || a.Pending != 2 ||
		!maps.Equal(a.Errors, map[string]string{"db1": "database cannot be queried"}) {
		t.Errorf("a = %+v", a)
	}
	if b := got[0]; !b.Cursor.Equal(t0.Add(time.Hour)) || b.PagesSynced != 7 || b.Pending != 0 || len(b.Errors) != 0 || !b.LastSweep.IsZero() {
		t.Errorf("b = %+v", b)
	}
	for _, i := range []int{1, 3} { // unknown, and c (another prefix's)
		if st := got[i]; !st.Cursor.IsZero() || !st.Target.IsZero() || !st.LastSweep.IsZero() || !st.LastSync.IsZero() ||
			st.Pending != 0 || st.PagesSynced != 0 || len(st.Errors) != 0 {
			t.Errorf("%s = %+v, want zero", ids[i], st)
		}
	}
}

func TestStateReaderStatesIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	rdb := stateReaderClient(t) // its connection is open: no handshake below
	var rt roundTrips
	rdb.AddHook(&rt)
	r := jobs.NewStateReader(rdb, "")
	ids := []string{"a", "b", "unknown"}
	if _, err := r.States(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
	if c, p, n := rt.commands.Load(), rt.pipelines.Load(), rt.pipelined.Load(); c != 0 || p != 1 || n != int32(4*len(ids)) {
		t.Errorf("States of %d connections: %d commands and %d pipelines of %d commands, want 0 and 1 of %d",
			len(ids), c, p, n, 4*len(ids))
	}

	rt.pipelines.Store(0)
	got, err := r.States(context.Background(), nil)
	if err != nil || len(got) != 0 {
		t.Errorf("States(nil) = %v, %v; want no states", got, err)
	}
	if c, p := rt.commands.Load(), rt.pipelines.Load(); c != 0 || p != 0 {
		t.Errorf("States(nil) sent %d commands and %d pipelines, want none", c, p)
	}
}

func TestStateReaderStatesError(t *testing.T) {
	t.Parallel()
	rdb := stateReaderClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := jobs.NewStateReader(rdb, "").States(ctx, []string{"a", "b"}); !errors.Is(err, context.Canceled) {
		t.Errorf("States with a canceled context: %v, want context.Canceled", err)
	}
}
