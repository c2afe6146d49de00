package schedule_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/internal/schedule"
)

// The sweep schedule is 64 shards, each holding exactly the connections of
// its shard (env.sweeps fails otherwise), and nothing is written under the
// old single key. A tick takes the oldest due entries across every shard,
// up to MaxSweepsPerTick, and moves each in its own shard.
func TestSweepScheduleIsShardedAndReadAcrossShards(t *testing.T) { testSweepsAcrossShards(t, newEnv) }

func testSweepsAcrossShards(t *testing.T, newEnv func(testing.TB) *env) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	q := newQueue()
	const n = 200
	ids := make([]string, n)
	touched := map[int]bool{}
	for i := range ids {
		ids[i] = fmt.Sprintf("c%03d", i)
		touched[keyspace.ShardOf(ids[i])] = true
		e.connect(ids[i], nil)
	}
	if len(touched) < keyspace.Shards/2 {
		t.Fatalf("the test's %d connections touch only %d shards", n, len(touched))
	}
	const limit = 50
	s := e.scheduler(&fakeEnqueuer{name: "s", q: q}, func(c *schedule.Config) {
		c.RescanPerTick, c.RefreshLookahead, c.MaxSweepsPerTick = -1, -1, limit
	})
	if st := e.tick(s); st.Discovered != n {
		t.Fatalf("discovered %d, want %d", st.Discovered, n)
	}
	if got := len(e.sweeps()); got != n {
		t.Fatalf("%d connections on the sharded schedule, want %d", got, n)
	}
	if n, err := e.rdb.Exists(ctx, e.prefix+"sweeps").Result(); err != nil || n != 0 {
		t.Fatalf("the unsharded key %ssweeps exists (%d, %v)", e.prefix, n, err)
	}

	// Slots a millisecond apart, in an order unrelated to the shards: c<i>
	// at t0+i ms. The first tick must take c000..c049, whatever their shard.
	for i, id := range ids {
		e.setSlots(t0.Add(time.Duration(i)*time.Millisecond), id)
	}
	e.clock.Set(t0.Add(time.Second))
	st := e.tick(s)
	if st.SweepsDue != limit || st.SweepsEnqueued != limit {
		t.Fatalf("stats %+v, want %d due and enqueued", st, limit)
	}
	var want []string
	for i := range limit {
		want = append(want, fmt.Sprintf("sweep:%s:%d", ids[i], t0.Add(time.Duration(i)*time.Millisecond).UnixMilli()))
	}
	slices.Sort(want)
	if got := q.acceptedWith("sweep:"); !slices.Equal(got, want) {
		t.Fatalf("first tick swept %v,\nwant the %d oldest %v", got, limit, want)
	}
	// Each moved one interval on, in its own shard; the rest waits.
	sw := e.sweeps()
	for i, id := range ids {
		slot := t0.Add(time.Duration(i) * time.Millisecond)
		if i < limit {
			slot = slot.Add(5 * time.Minute)
		}
		if !sw[id].Equal(slot) {
			t.Fatalf("%s (shard %d) at %s, want %s", id, keyspace.ShardOf(id), sw[id], slot)
		}
	}
	// The remaining 150 in three more ticks; then nothing is due.
	for range 3 {
		if st := e.tick(s); st.SweepsEnqueued != limit {
			t.Fatalf("stats %+v, want %d enqueued", st, limit)
		}
	}
	if st := e.tick(s); st.SweepsDue != 0 {
		t.Fatalf("stats %+v after every connection was swept", st)
	}
	if got := len(q.acceptedWith("sweep:")); got != n {
		t.Fatalf("%d sweeps, want %d", got, n)
	}
}

// An entry that sits in the wrong shard (written by hand or by an old
// version) is moved within the shard it was read from, so it never sticks
// at the head of the schedule.
func TestSweepInAForeignShardStillMoves(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	q := newQueue()
	e.connect("a", nil)
	s := e.scheduler(&fakeEnqueuer{name: "s", q: q}, func(c *schedule.Config) { c.RescanPerTick, c.DiscoverPerTick = -1, 1 })
	e.tick(s) // discovery: a is on its own shard
	must(t, e.rdb.Del(ctx, e.sweepKey(keyspace.ShardOf("a"))).Err())
	other := (keyspace.ShardOf("a") + 1) % keyspace.Shards
	must(t, e.rdb.ZAdd(ctx, e.sweepKey(other), redis.Z{Score: float64(t0.UnixMilli()), Member: "a"}).Err())
	e.clock.Set(t0.Add(time.Second))
	if st := e.tick(s); st.SweepsEnqueued != 1 {
		t.Fatalf("stats %+v", st)
	}
	got, err := e.rdb.ZScore(ctx, e.sweepKey(other), "a").Result()
	if err != nil || int64(got) != t0.Add(5*time.Minute).UnixMilli() {
		t.Fatalf("foreign entry at %v (%v), want moved one interval on", got, err)
	}
}
