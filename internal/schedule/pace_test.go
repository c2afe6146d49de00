package schedule_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/internal/schedule"
	"github.com/notionsync/notionsync/tokens"
)

// keyCounter is a go-redis hook that counts the commands naming each key
// (as their first key argument: args[1], or a script's first key).
type keyCounter struct {
	mu sync.Mutex
	n  map[string]int
	// zs counts ZSCOREs per key, kept until reset.
	zs map[string]int
}

type keyCounts struct{ zscore int }

// snapshot returns the ZSCORE counts per key since the last reset.
func (k *keyCounter) snapshot() map[string]keyCounts {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]keyCounts, len(k.zs))
	for key, n := range k.zs {
		out[key] = keyCounts{zscore: n}
	}
	return out
}

// reset forgets every count.
func (k *keyCounter) reset() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.n, k.zs = nil, nil
}

func (k *keyCounter) add(cmd redis.Cmder) {
	args := cmd.Args()
	if len(args) < 2 {
		return
	}
	key, _ := args[1].(string)
	if n := cmd.Name(); (n == "evalsha" || n == "eval") && len(args) > 3 {
		key, _ = args[3].(string) // name, script, numkeys, key...
	}
	k.mu.Lock()
	if k.n == nil {
		k.n, k.zs = map[string]int{}, map[string]int{}
	}
	k.n[key]++
	if cmd.Name() == "zscore" {
		k.zs[key]++
	}
	k.mu.Unlock()
}

// count returns the commands so far whose key matches, and resets them.
func (k *keyCounter) take(match func(string) bool) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for key, c := range k.n {
		if match(key) {
			n += c
			delete(k.n, key)
		}
	}
	return n
}

func (k *keyCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (k *keyCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		k.add(cmd)
		return next(ctx, cmd)
	}
}

func (k *keyCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			k.add(c)
		}
		return next(ctx, cmds)
	}
}

// Run's ticks leave out what cannot find anything: the refresh-due index
// is read once per lookahead while nothing is due (and a refresh is still
// enqueued by its due time), discovery runs every DiscoverInterval (and
// still finds a new connection).
func TestRunPacesIdleReads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	var keys keyCounter
	rdb := e.client(&keys)
	store := e.newStore(rdb)
	q := newQueue()
	e.connect("a", nil) // refresh due at t0+50m
	s := e.scheduler(&fakeEnqueuer{name: "s", q: q}, func(c *schedule.Config) {
		c.Redis, c.Store = rdb, store
		c.Tick, c.LeaseTTL, c.DiscoverInterval = time.Second, 3*time.Second, 5*time.Second // lookahead 2s
	})
	isDue := func(k string) bool { return strings.HasSuffix(k, "due") }
	isCursor := func(k string) bool { return k == e.prefix+"sweeps:cursor" }
	var p schedule.Pace
	tick := func(at time.Duration) schedule.TickStats {
		t.Helper()
		e.clock.Set(t0.Add(at))
		st, err := s.TickPaced(ctx, &p)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := tick(0); st.Discovered != 1 {
		t.Fatalf("first tick: %+v, want a discovered", st)
	}
	if d, c := keys.take(isDue), keys.take(isCursor); d == 0 || c == 0 {
		t.Fatalf("first tick read the due index %d times and the cursor %d times; want both read", d, c)
	}
	e.clock.Set(t0.Add(500 * time.Millisecond))
	e.connect("b", nil)
	var dueReads, cursorReads []int
	for sec := 1; sec <= 10; sec++ {
		st := tick(time.Duration(sec) * time.Second)
		if keys.take(isDue) > 0 {
			dueReads = append(dueReads, sec)
		}
		if keys.take(isCursor) > 0 {
			cursorReads = append(cursorReads, sec)
		}
		if st.Discovered > 0 && sec != 5 {
			t.Fatalf("b discovered at +%ds, want at the discovery pass (+5s)", sec)
		}
	}
	if want := []int{2, 4, 6, 8, 10}; !equalInts(dueReads, want) {
		t.Errorf("due index read at +%vs, want every lookahead (+%vs)", dueReads, want)
	}
	if want := []int{5, 10}; !equalInts(cursorReads, want) {
		t.Errorf("discovery at +%vs, want every DiscoverInterval (+%vs)", cursorReads, want)
	}
	if _, ok := e.sweeps()["b"]; !ok {
		t.Fatal("b is not on the sweep schedule after a discovery pass")
	}

	// A refresh is still enqueued by its due time, whatever the phase of
	// the reads, for refreshes due on and between ticks.
	for _, off := range []time.Duration{0, 300 * time.Millisecond, 700 * time.Millisecond} {
		p = schedule.Pace{}
		q2 := newQueue()
		s2 := e.scheduler(&fakeEnqueuer{name: "s2", q: q2}, func(c *schedule.Config) {
			c.Redis, c.Store = rdb, store
			c.Tick, c.LeaseTTL, c.DiscoverInterval = time.Second, 3*time.Second, 5*time.Second
		})
		due := t0.Add(dueAfter)
		for at := due.Add(-20*time.Second + off); ; at = at.Add(time.Second) {
			e.clock.Set(at)
			if _, err := s2.TickPaced(ctx, &p); err != nil {
				t.Fatal(err)
			}
			if len(q2.acceptedWith("refresh:a:")) > 0 {
				if at.After(due) {
					t.Fatalf("offset %s: refresh enqueued at %s, after its due time %s", off, at, due)
				}
				break
			}
			if at.After(due.Add(5 * time.Second)) {
				t.Fatalf("offset %s: the refresh was never enqueued", off)
			}
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A discovery pass over an unchanged list does not look up where its
// cursors stand: they hold index positions (creation time and id), so the
// pass is the cursors' read, one index read per cursor and the rescanned
// records; no ZSCORE of the connection index. A cursor a former version
// stored as a bare id still works (one lookup) and is rewritten as a
// position. New connections are found either way, and the rescan still
// repairs the schedule.
func TestDiscoveryCursorsNeedNoLookup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	var keys keyCounter
	rdb := e.client(&keys)
	store := e.newStore(rdb)
	for _, id := range []string{"a", "b", "c"} {
		e.connect(id, nil)
		e.clock.Advance(time.Millisecond)
	}
	s := e.scheduler(&fakeEnqueuer{name: "s", q: newQueue()}, func(c *schedule.Config) {
		c.Redis, c.Store = rdb, store
		c.RescanPerTick = 2 // the rescan stops mid-list: both cursors non-empty
	})
	// zscores counts ZSCOREs of the connection index (Store.List's lookup
	// of a cursor's position).
	var zscores int
	counting := func() {
		zscores = 0
		for k, n := range keys.snapshot() {
			if strings.HasSuffix(k, ":connections") && n.zscore > 0 {
				zscores += n.zscore
			}
		}
	}
	e.tick(s) // the first pass: tail to the end, rescan after b
	keys.reset()
	for range 3 {
		e.clock.Advance(time.Second)
		e.tick(s)
	}
	counting()
	if zscores != 0 {
		t.Errorf("3 discovery passes looked up their cursors' positions %d times; want none", zscores)
	}
	cur, err := e.rdb.HGetAll(ctx, e.prefix+"sweeps:cursor").Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, perr := tokens.ParsePageCursor(cur["tail"]); perr != nil || !strings.HasSuffix(cur["tail"], ".c") {
		t.Errorf("tail cursor %q, want the position of c", cur["tail"])
	}

	// A new connection is found after the tail; one the schedule lost comes
	// back with the rescan.
	e.connect("d", nil)
	if err := e.rdb.ZRem(ctx, e.sweepKey(keyspace.ShardOf("a")), "a").Err(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		e.clock.Advance(time.Second)
		e.tick(s)
	}
	for _, id := range []string{"a", "d"} {
		if _, ok := e.sweeps()[id]; !ok {
			t.Errorf("%s is not on the sweep schedule", id)
		}
	}

	// A bare id (the former format) as the tail: read once with List's
	// lookup, then stored as a position.
	if err := e.rdb.HSet(ctx, e.prefix+"sweeps:cursor", "tail", "b").Err(); err != nil {
		t.Fatal(err)
	}
	e.connect("e", nil)
	e.clock.Advance(time.Second)
	e.tick(s)
	if _, ok := e.sweeps()["e"]; !ok {
		t.Error("e, created after a bare-id tail, is not on the sweep schedule")
	}
	tail, err := e.rdb.HGet(ctx, e.prefix+"sweeps:cursor", "tail").Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, perr := tokens.ParsePageCursor(tail); perr != nil || !strings.HasSuffix(tail, ".e") {
		t.Errorf("tail after a bare-id cursor: %q, want the position of e", tail)
	}
}
