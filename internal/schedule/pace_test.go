package schedule_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/schedule"
)

// keyCounter is a go-redis hook that counts the commands naming each key
// (as their first key argument: args[1], or a script's first key).
type keyCounter struct {
	mu sync.Mutex
	n  map[string]int
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
		k.n = map[string]int{}
	}
	k.n[key]++
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
