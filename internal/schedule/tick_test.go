package schedule_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/internal/schedule"
	"github.com/notionsync/notionsync/tokens"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	enq := &fakeEnqueuer{q: newQueue()}
	base := func() schedule.Config {
		return schedule.Config{Redis: e.rdb, Store: e.store, Enqueuer: enq}
	}
	cases := map[string]func(*schedule.Config){
		"no redis":                 func(c *schedule.Config) { c.Redis = nil },
		"no store":                 func(c *schedule.Config) { c.Store = nil },
		"no enqueuer":              func(c *schedule.Config) { c.Enqueuer = nil },
		"lease not above 2 ticks":  func(c *schedule.Config) { c.Tick, c.LeaseTTL = time.Second, 2*time.Second },
		"default lease vs tick":    func(c *schedule.Config) { c.Tick = 8 * time.Second },
		"interval below tick":      func(c *schedule.Config) { c.Tick, c.SyncInterval = 5*time.Second, time.Second },
		"negative tick":            func(c *schedule.Config) { c.Tick = -time.Second },
		"negative max refreshes":   func(c *schedule.Config) { c.MaxRefreshPerTick = -1 },
		"negative max sweeps":      func(c *schedule.Config) { c.MaxSweepsPerTick = -1 },
		"negative concurrency":     func(c *schedule.Config) { c.Concurrency = -1 },
		"negative park interval":   func(c *schedule.Config) { c.ParkInterval = -time.Minute },
		"negative discover budget": func(c *schedule.Config) { c.DiscoverPerTick = -5 },
	}
	for name, mod := range cases {
		cfg := base()
		mod(&cfg)
		if _, err := schedule.New(cfg); err == nil {
			t.Errorf("%s: New accepted an invalid config", name)
		}
	}
	cfg := base()
	cfg.RefreshLookahead, cfg.RescanPerTick = -1, -1 // both mean "none"
	if _, err := schedule.New(cfg); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
}

func TestRefreshEnqueuesOnlyWhatIsDue(t *testing.T) { testRefreshEnqueuesOnlyWhatIsDue(t, newEnv) }

func testRefreshEnqueuesOnlyWhatIsDue(t *testing.T, newEnv func(testing.TB) *env) {
	t.Parallel()
	e := newEnv(t)
	q := newQueue()
	e.connect("early", nil) // due t0+50m
	e.clock.Advance(20 * time.Minute)
	e.connect("late", nil)                                // due t0+70m
	s := e.scheduler(&fakeEnqueuer{name: "s", q: q}, nil) // Tick 5s, lookahead 10s

	e.clock.Set(t0.Add(dueAfter - time.Minute))
	if st := e.tick(s); st.RefreshDue != 0 || st.RefreshEnqueued != 0 {
		t.Fatalf("a minute before anything is due: %+v", st)
	}
	e.clock.Set(t0.Add(dueAfter - 8*time.Second)) // within the 10s lookahead
	st := e.tick(s)
	if st.RefreshDue != 1 || st.RefreshEnqueued != 1 {
		t.Fatalf("early within the lookahead: %+v", st)
	}
	if got, want := q.acceptedWith("refresh:"), []string{"refresh:early:v1"}; !slices.Equal(got, want) {
		t.Fatalf("refresh tasks = %v, want %v", got, want)
	}
	e.clock.Set(t0.Add(20*time.Minute + dueAfter))
	st = e.tick(s)
	if st.RefreshDue != 2 || st.RefreshEnqueued != 2 {
		t.Fatalf("both due: %+v", st)
	}
	// early was not refreshed (no worker here): asked again, same task id.
	if got, want := q.acceptedWith("refresh:"), []string{"refresh:early:v1", "refresh:late:v1"}; !slices.Equal(got, want) {
		t.Fatalf("refresh tasks = %v, want %v", got, want)
	}
}

func TestRefreshAtEnqueuerReceivesDueTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	q := newQueue()
	e.connect("a", nil)
	s := e.scheduler(&dueEnqueuer{fakeEnqueuer{name: "s", q: q}}, nil)
	e.clock.Set(t0.Add(dueAfter))
	e.tick(s)
	want := fmt.Sprintf("refreshat:a:v1:%d", t0.Add(dueAfter).UnixMilli())
	if got := q.acceptedWith("refresh"); !slices.Equal(got, []string{want}) {
		t.Fatalf("refresh tasks = %v, want [%s] (EnqueueRefreshAt preferred, with the due time)", got, want)
	}
}

func TestRefreshChecksTheRecordNotJustTheIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	q := newQueue()
	for _, id := range []string{"active", "paused", "reauth", "gone", "fresh"} {
		e.connect(id, nil)
	}
	must(t, e.store.Pause(ctx, "paused"))
	must(t, e.store.MarkNeedsReauth(ctx, "reauth", "test"))
	must(t, e.store.Disconnect(ctx, "gone"))
	e.clock.Set(t0.Add(dueAfter + time.Minute))

	// tokens keeps terminal connections out of the due index...
	due, err := e.store.Due(ctx, e.clock.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(due)
	if want := []string{"active", "fresh", "paused"}; !slices.Equal(due, want) {
		t.Fatalf("due index = %v, want %v", due, want)
	}
	// ...but the index may be read just before a status change lands, and
	// "fresh" may have been refreshed since: put all of them back into the
	// index as due, and move fresh's record into the future.
	past := float64(t0.UnixMilli())
	// (tokens' due index: shard keyspace.ShardOf(id) holds id.)
	dueKey := func(id string) string { return keyspace.Conn(e.prefix, id) + "due" }
	for _, id := range []string{"reauth", "gone", "ghost"} {
		must(t, e.rdb.ZAdd(ctx, dueKey(id), redis.Z{Score: past, Member: id}).Err())
	}
	e.connect("fresh", nil) // a new version, due in 50 minutes
	must(t, e.rdb.ZAdd(ctx, dueKey("fresh"), redis.Z{Score: past, Member: "fresh"}).Err())

	s := e.scheduler(&fakeEnqueuer{name: "s", q: q}, func(c *schedule.Config) { c.RescanPerTick = -1 })
	st := e.tick(s)
	if got, want := q.acceptedWith("refresh:"), []string{"refresh:active:v1", "refresh:paused:v1"}; !slices.Equal(got, want) {
		t.Fatalf("refresh tasks = %v, want %v (paused refreshed; needs_reauth, disconnected, missing and fresh skipped)", got, want)
	}
	if st.RefreshDue != 6 || st.RefreshEnqueued != 2 || st.Skipped != 4 || st.Errors != 0 {
		t.Fatalf("stats %+v, want 6 due, 2 enqueued, 4 skipped", st)
	}
}

// A connection whose refresh keeps failing is picked at most once per
// backoff period: the failure moves its due-index entry to the end of the
// backoff. The worker here is the real tokens.Source, run synchronously for
// every accepted task.
func TestFailingRefreshIsPickedOncePerBackoff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.connect("flaky", nil)

	var calls int
	var mu sync.Mutex
	provider := tokens.ProviderFunc(func(context.Context, string) (*tokens.Grant, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		return nil, &tokens.ProviderError{Kind: tokens.KindNotProcessed, StatusCode: 503, Description: "unavailable"}
	})
	const backoff = time.Minute
	src, err := tokens.NewSource(ctx, tokens.Config{
		Store: e.store, Provider: provider, Timing: timing,
		FailureBackoff: backoff, MaxFailureBackoff: backoff, CacheMaxAge: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	type pick struct{ at, retryAt time.Time }
	var picks []pick
	q := newQueue()
	q.retain = false // asynq without retention: a finished task's id is free again
	q.run = func(ctx context.Context, id string) {
		if !strings.HasPrefix(id, "refresh:") {
			return // the connection is also swept; no worker for that here
		}
		at := e.clock.Now()
		if err := src.Refresh(ctx, "flaky"); err != nil && !errors.Is(err, tokens.ErrTransient) {
			t.Errorf("refresh: %v", err)
		}
		c, err := e.store.Get(ctx, "flaky")
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		picks = append(picks, pick{at: at, retryAt: c.RetryAt})
		mu.Unlock()
	}
	s := e.scheduler(&fakeEnqueuer{name: "s", q: q}, func(c *schedule.Config) {
		c.RefreshLookahead = -1 // the worker refreshes only what is due (Source.Refresh)
		c.RescanPerTick = -1
	})

	e.clock.Set(t0.Add(dueAfter))
	const window = time.Hour
	ticks := int(window / (5 * time.Second))
	for range ticks {
		e.tick(s)
		e.clock.Advance(5 * time.Second)
	}
	mu.Lock()
	defer mu.Unlock()
	// Backoff is 1 min plus up to 50% jitter: between 40 and 60 picks in an
	// hour, where a scheduler ignoring the backoff would pick 720 times.
	if len(picks) < int(window/(backoff*3/2)) || len(picks) > int(window/backoff)+1 {
		t.Fatalf("%d picks in %s of %d ticks; want one per backoff period (%s-%s)", len(picks), window, ticks, backoff, backoff*3/2)
	}
	for i := 1; i < len(picks); i++ {
		if picks[i].at.Before(picks[i-1].retryAt) {
			t.Fatalf("pick %d at %s, before the backoff of pick %d ended (%s)", i, picks[i].at, i-1, picks[i-1].retryAt)
		}
	}
	if calls != len(picks) {
		t.Fatalf("token endpoint called %d times for %d picks", calls, len(picks))
	}
}

func TestNewConnectionsAreSpreadOverTheInterval(t *testing.T) {
	testNewConnectionsAreSpreadOverTheInterval(t, newEnv)
}

func testNewConnectionsAreSpreadOverTheInterval(t *testing.T, newEnv func(testing.TB) *env) {
	t.Parallel()
	e := newEnv(t)
	q := newQueue()
	const n = 100
	for i := range n {
		e.connect(fmt.Sprintf("c%03d", i), nil)
	}
	s := e.scheduler(&fakeEnqueuer{name: "s", q: q}, nil) // SyncInterval 5m
	const interval = 5 * time.Minute

	if st := e.tick(s); st.Discovered != n {
		t.Fatalf("first tick discovered %d, want %d", st.Discovered, n)
	}
	// check verifies that the n slots are distinct and stratified over the
	// interval from base: the k-th earliest lies in the k-th n-th of it.
	check := func(base time.Time) map[string]time.Time {
		t.Helper()
		sw := e.sweeps()
		if len(sw) != n {
			t.Fatalf("%d connections on the sweep schedule, want %d", len(sw), n)
		}
		slots := make([]time.Time, 0, n)
		for _, slot := range sw {
			slots = append(slots, slot)
		}
		slices.SortFunc(slots, func(a, b time.Time) int { return a.Compare(b) })
		width := interval / n
		for k, slot := range slots {
			if k > 0 && slot.Equal(slots[k-1]) {
				t.Fatalf("two connections share the slot %s", slot)
			}
			lo, hi := base.Add(time.Duration(k)*width), base.Add(time.Duration(k+1)*width)
			if slot.Before(lo) || !slot.Before(hi) {
				t.Fatalf("slot %d = +%s, want within [+%s, +%s)", k, slot.Sub(base), lo.Sub(base), hi.Sub(base))
			}
		}
		return sw
	}
	first := check(t0)

	e.clock.Set(t0.Add(-time.Second))
	if st := e.tick(s); st.Discovered != 0 || st.SweepsDue != 0 {
		t.Fatalf("a second tick re-added or swept something: %+v", st)
	}
	// Just before one interval has passed, every connection was swept once,
	// and the schedule keeps its spread: next = slot + interval.
	e.clock.Set(t0.Add(interval - time.Millisecond))
	if st := e.tick(s); st.SweepsEnqueued != n {
		t.Fatalf("%d sweeps after one interval, want %d (stats %+v)", st.SweepsEnqueued, n, st)
	}
	second := check(t0.Add(interval))
	for id, slot := range second {
		if want := first[id].Add(interval); !slot.Equal(want) {
			t.Errorf("%s moved to %s, want its previous slot + interval (%s)", id, slot, want)
		}
	}
}

func TestPerConnectionSyncInterval(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	q := newQueue()
	e.connect("fast", map[string]string{schedule.MetaSyncInterval: "1m"})
	e.connect("slow", nil)
	e.connect("bad", map[string]string{schedule.MetaSyncInterval: "banana"})
	e.connect("tiny", map[string]string{schedule.MetaSyncInterval: "1ms"})
	e.connect("hourly", map[string]string{schedule.MetaSyncInterval: " 1h "})
	s := e.scheduler(&fakeEnqueuer{name: "s", q: q}, func(c *schedule.Config) { c.RescanPerTick = -1 })

	// Discovery puts each first slot within the connection's own interval.
	e.tick(s)
	limits := map[string]time.Duration{"fast": time.Minute, "slow": 5 * time.Minute, "bad": 5 * time.Minute, "tiny": 5 * time.Second, "hourly": time.Hour}
	for id, slot := range e.sweeps() {
		if off := slot.Sub(t0); off < 0 || off >= limits[id] {
			t.Errorf("%s: first slot +%s, want within its interval %s", id, off, limits[id])
		}
	}

	// From a common slot, each moves on by its own interval.
	ids := []string{"fast", "slow", "bad", "tiny", "hourly"}
	e.setSlots(t0, ids...)
	e.clock.Set(t0.Add(time.Second))
	if st := e.tick(s); st.SweepsEnqueued != len(ids) {
		t.Fatalf("stats %+v", st)
	}
	sw := e.sweeps()
	for _, id := range ids {
		if got, want := sw[id], t0.Add(limits[id]); !got.Equal(want) {
			t.Errorf("%s: next slot %s, want %s (slot + its interval)", id, got, want)
		}
		if want := fmt.Sprintf("sweep:%s:%d", id, t0.UnixMilli()); !slices.Contains(q.acceptedWith("sweep:"), want) {
			t.Errorf("missing task %s", want)
		}
	}
}

func TestSweepsSkipParkAndResume(t *testing.T) { testSweepsSkipParkAndResume(t, newEnv) }

func testSweepsSkipParkAndResume(t *testing.T, newEnv func(testing.TB) *env) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	q := newQueue()
	for _, id := range []string{"active", "paused", "reauth", "gone"} {
		e.connect(id, nil)
	}
	must(t, e.store.Pause(ctx, "paused"))
	must(t, e.store.MarkNeedsReauth(ctx, "reauth", "test"))
	must(t, e.store.Disconnect(ctx, "gone"))
	s := e.scheduler(&fakeEnqueuer{name: "s", q: q}, func(c *schedule.Config) {
		c.RescanPerTick = -1
		c.RefreshLookahead = -1
	})
	e.tick(s) // discovery
	e.setSlots(t0, "active", "paused", "reauth", "gone", "ghost")
	e.clock.Set(t0.Add(time.Second))

	st := e.tick(s)
	if got, want := q.acceptedWith("sweep:"), []string{fmt.Sprintf("sweep:active:%d", t0.UnixMilli())}; !slices.Equal(got, want) {
		t.Fatalf("sweeps = %v, want %v", got, want)
	}
	if st.SweepsDue != 5 || st.SweepsEnqueued != 1 || st.Skipped != 4 {
		t.Fatalf("stats %+v", st)
	}
	sw := e.sweeps()
	if _, ok := sw["ghost"]; ok {
		t.Error("a connection without a record stays on the schedule")
	}
	if want := t0.Add(5 * time.Minute); !sw["paused"].Equal(want) {
		t.Errorf("paused moved to %s, want %s (its next slot, so it resumes on time)", sw["paused"], want)
	}
	for _, id := range []string{"reauth", "gone"} {
		if want := e.clock.Now().Add(time.Hour); !sw[id].Equal(want) {
			t.Errorf("%s parked until %s, want %s (ParkInterval)", id, sw[id], want)
		}
	}

	// Terminal connections cost nothing while parked; a resumed one is
	// swept at its next slot.
	must(t, e.store.Resume(ctx, "paused"))
	e.clock.Set(t0.Add(5*time.Minute + time.Second))
	st = e.tick(s)
	want := []string{
		fmt.Sprintf("sweep:active:%d", t0.UnixMilli()),
		fmt.Sprintf("sweep:active:%d", t0.Add(5*time.Minute).UnixMilli()),
		fmt.Sprintf("sweep:paused:%d", t0.Add(5*time.Minute).UnixMilli()),
	}
	if got := q.acceptedWith("sweep:"); !slices.Equal(got, want) {
		t.Fatalf("sweeps = %v, want %v", got, want)
	}
	if st.SweepsDue != 2 {
		t.Fatalf("parked connections were read again before ParkInterval: %+v", st)
	}
}

func TestSweepFarBehindRestartsFromNowWithJitter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	q := newQueue()
	e.connect("a", nil)
	s := e.scheduler(&fakeEnqueuer{name: "s", q: q}, func(c *schedule.Config) { c.RescanPerTick = -1 })
	e.tick(s)
	e.setSlots(t0, "a")
	now := t0.Add(time.Hour) // 12 intervals behind
	e.clock.Set(now)
	e.tick(s)
	if got := q.acceptedWith("sweep:"); len(got) != 1 {
		t.Fatalf("sweeps = %v, want one sweep (no catch-up burst)", got)
	}
	next := e.sweeps()["a"]
	if next.Before(now.Add(150*time.Second)) || !next.Before(now.Add(5*time.Minute)) {
		t.Fatalf("next slot +%s from now, want within [2m30s, 5m)", next.Sub(now))
	}
}

// Two schedulers that both believe they lead, with clocks two seconds
// apart, act on the same due entries at the same time: what they enqueue is
// the same set of task ids, so a de-duplicating queue runs each once; and the
// stale one cannot move the schedule the other already moved.
func TestTwoLeadersEnqueueNoDuplicates(t *testing.T) { testTwoLeadersEnqueueNoDuplicates(t, newEnv) }

func testTwoLeadersEnqueueNoDuplicates(t *testing.T, newEnv func(testing.TB) *env) {
	t.Parallel()
	e := newEnv(t)
	q := newQueue()
	const n = 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%02d", i)
		e.connect(ids[i], nil)
	}
	clockB := newClock(t0)
	rdbB := e.client()
	storeB, err := tokens.NewStore(tokens.StoreConfig{Redis: rdbB, Keyring: e.keys, KeyPrefix: e.prefix, Now: clockB.Now})
	if err != nil {
		t.Fatal(err)
	}

	// A blocks in its first enqueue until B has finished its whole tick, so
	// both read the same due entries before either moves them.
	aBlocked, bDone := make(chan struct{}), make(chan struct{})
	var once sync.Once
	encA := &fakeEnqueuer{name: "A", q: q, before: func(ctx context.Context, id string) error {
		once.Do(func() {
			close(aBlocked)
			<-bDone
		})
		return nil
	}}
	a := e.scheduler(encA, func(c *schedule.Config) { c.RescanPerTick = -1; c.Concurrency = 1 })
	b := e.scheduler(&fakeEnqueuer{name: "B", q: q}, func(c *schedule.Config) {
		c.RescanPerTick = -1
		c.Redis, c.Store, c.Now = rdbB, storeB, clockB.Now
	})
	e.tick(a) // discovery only: nothing is due at t0
	// The slots are far behind (50 minutes), so each leader would pick a
	// random next slot: the stale leader's choice must not win.
	e.setSlots(t0, ids...)
	round := func(at time.Time) {
		e.clock.Set(at)
		clockB.Set(at.Add(2 * time.Second))
	}

	round(t0.Add(dueAfter)) // every refresh and every sweep is due
	var wg sync.WaitGroup
	var stA schedule.TickStats
	wg.Go(func() {
		var err error
		if stA, err = a.Tick(t.Context()); err != nil {
			t.Error(err)
		}
	})
	<-aBlocked
	stB := e.tick(b)
	afterB := e.sweeps()
	close(bDone)
	wg.Wait()
	if stA.RefreshEnqueued != n || stA.SweepsEnqueued != n || stB.RefreshEnqueued != n || stB.SweepsEnqueued != n {
		t.Fatalf("both leaders should have asked for everything: A %+v, B %+v", stA, stB)
	}
	if afterA := e.sweeps(); !maps.Equal(afterA, afterB) {
		t.Fatalf("the stale leader moved the schedule:\nafter B %v\nafter A %v", afterB, afterA)
	}

	// A second overlapping round, the two ticking concurrently.
	round(t0.Add(2 * dueAfter))
	wg.Go(func() {
		if _, err := a.Tick(t.Context()); err != nil {
			t.Error(err)
		}
	})
	e.tick(b)
	wg.Wait()

	if refresh := q.acceptedWith("refresh:"); len(refresh) != n {
		t.Errorf("%d refresh tasks for %d connections at one token version: %v", len(refresh), n, refresh)
	}
	sweeps := q.acceptedWith("sweep:")
	for _, id := range ids {
		want := []string{
			fmt.Sprintf("sweep:%s:%d", id, t0.UnixMilli()),
			fmt.Sprintf("sweep:%s:%d", id, afterB[id].UnixMilli()),
		}
		var got []string
		for _, task := range sweeps {
			if strings.HasPrefix(task, "sweep:"+id+":") {
				got = append(got, task)
			}
		}
		if slices.Sort(got); !slices.Equal(got, want) {
			t.Errorf("%s: sweep tasks %v, want one per slot %v", id, got, want)
		}
	}
	if got, tasks := q.attemptCount(), len(q.acceptedWith("")); got < tasks+2*n {
		t.Fatalf("the leaders barely overlapped (%d attempts for %d tasks): the test proves nothing", got, tasks)
	}
}

// The Redis commands of a tick depend on what is due, not on how many
// connections exist.
func TestTickCostFollowsTheNumberDue(t *testing.T) {
	t.Parallel()
	type cost struct{ cmds, trips, reads int64 }
	measure := func(t *testing.T, total, due int) cost {
		e := newEnv(t)
		ctx := t.Context()
		var cnt counter
		rdb := e.client(&cnt)
		store := e.newStore(rdb)
		// Real records for the due connections; the rest exists only in the
		// indexes (the scheduler reads no record it does not act on).
		real := make([]string, due)
		for i := range real {
			real[i] = fmt.Sprintf("real%04d", i)
			e.connect(real[i], nil)
		}
		fill(t, e.rdb, e.prefix, total-due, t0.Add(24*time.Hour))
		// Steady state: discovery is at the tail of the connection list.
		// (the newest of tokens' connections index: the last real one)
		last := []string{real[len(real)-1]}
		s := e.scheduler(&fakeEnqueuer{name: "s", q: newQueue()}, func(c *schedule.Config) {
			c.Redis, c.Store = rdb, store
		})
		e.clock.Set(t0.Add(dueAfter))
		prepare := func() {
			e.setSlots(t0, real...)
			must(t, e.rdb.HSet(ctx, e.prefix+"sweeps:cursor", "tail", last[0], "rescan", "").Err())
		}
		prepare()
		if _, err := s.Tick(ctx); err != nil { // loads the scripts
			t.Fatal(err)
		}
		prepare()
		before := cost{cnt.n.Load(), cnt.trips.Load(), cnt.reads.Load()}
		st, err := s.Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.RefreshEnqueued != due || st.SweepsEnqueued != due {
			t.Fatalf("stats %+v, want %d refreshes and sweeps", st, due)
		}
		return cost{cnt.n.Load() - before.cmds, cnt.trips.Load() - before.trips, cnt.reads.Load() - before.reads}
	}
	small := measure(t, 300, 10)
	large := measure(t, 30_000, 10)
	more := measure(t, 30_000, 20)
	t.Logf("commands/round trips/record reads per tick: 300 connections/10 due: %+v, 30000/10: %+v, 30000/20: %+v", small, large, more)
	if small != large {
		t.Errorf("a tick with 10 due costs %+v among 300 connections but %+v among 30000", small, large)
	}
	// A connection due for both a refresh and a sweep is read once.
	if more.reads-large.reads != 10 {
		t.Errorf("10 more due connections cost %d more record reads, want 10 (one each)", more.reads-large.reads)
	}
	// The schedule's shards are read and written in pipelines: more due
	// entries (in more shards) cost no more round trips.
	if more.trips != large.trips {
		t.Errorf("20 due connections cost %d round trips, 10 cost %d; want the same", more.trips, large.trips)
	}
	// Commands: one more read each, and at most one more reschedule script
	// per shard the 10 more touch.
	if d := more.cmds - large.cmds; d < 10 || d > 20 {
		t.Errorf("10 more due connections cost %d more commands, want 10 reads plus at most 10 scripts", d)
	}
}

// fill puts n connections into the due index, the sweep schedule and the
// connection list (created before everything else), all due after at. Only
// the index entries exist: no records.
func fill(tb testing.TB, rdb redis.UniversalClient, prefix string, n int, at time.Time) {
	tb.Helper()
	ctx := tb.Context()
	const batch = 10_000
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		due := make([]redis.Z, 0, end-start)
		var sweeps [keyspace.Shards][]redis.Z
		all := make([]redis.Z, 0, end-start)
		for i := start; i < end; i++ {
			id := "f" + strconv.Itoa(1_000_000+i)
			due = append(due, redis.Z{Score: float64(at.UnixMilli() + int64(i)), Member: id})
			sh := keyspace.ShardOf(id)
			sweeps[sh] = append(sweeps[sh], redis.Z{Score: float64(at.UnixMilli() + int64(i%300_000)), Member: id})
			all = append(all, redis.Z{Score: float64(i), Member: id})
		}
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			// tokens' indexes and the sweep schedule are sharded by
			// connection (internal/keyspace).
			for i := range due {
				shard := keyspace.Conn(prefix, due[i].Member.(string))
				p.ZAdd(ctx, shard+"due", due[i])
				p.ZAdd(ctx, shard+"connections", all[i])
			}
			for sh, zs := range sweeps {
				if len(zs) > 0 {
					p.ZAdd(ctx, keyspace.Shard(prefix, sh)+"sweeps", zs...)
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// batchEnqueuer also implements schedule.SweepBatchEnqueuer.
type batchEnqueuer struct {
	fakeEnqueuer
	mu      sync.Mutex
	batches [][]string // "<conn>:<slot ms>" per sweep
	fail    bool
}

func (f *batchEnqueuer) EnqueueSweeps(ctx context.Context, connIDs []string, slots []time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("queue unavailable")
	}
	b := make([]string, len(connIDs))
	for i, id := range connIDs {
		b[i] = fmt.Sprintf("%s:%d", id, slots[i].UnixMilli())
	}
	f.batches = append(f.batches, b)
	return nil
}

// With a SweepBatchEnqueuer, a tick's due sweeps of active connections go
// out in batches of at most SweepBatch, each with its own slot; inactive
// connections are left out as before; a batch that cannot be enqueued is
// tried again at the next tick (not after the 30 s error retry: a Redis
// master's failover is over in seconds), not lost and not moved on.
func TestSweepsAreHandedOutInBatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ids []string
	for i := range 7 {
		id := fmt.Sprintf("c%d", i)
		e.connect(id, nil)
		ids = append(ids, id)
	}
	e.connect("paused", nil)
	must(t, e.store.Pause(t.Context(), "paused"))
	enq := &batchEnqueuer{fakeEnqueuer: fakeEnqueuer{name: "s", q: newQueue()}}
	s := e.scheduler(enq, func(c *schedule.Config) {
		c.RescanPerTick = -1
		c.RefreshLookahead = -1
		c.SweepBatch = 3
	})
	e.tick(s) // discovery
	e.setSlots(t0, append(ids, "paused")...)
	e.clock.Set(t0.Add(time.Second))
	st := e.tick(s)
	if st.SweepsEnqueued != 7 || st.Skipped != 1 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
	if got := len(enq.fakeEnqueuer.q.acceptedWith("sweep:")); got != 0 {
		t.Fatalf("%d sweeps enqueued on their own", got)
	}
	var all []string
	for _, b := range enq.batches {
		if len(b) > 3 {
			t.Fatalf("batch of %d, want at most 3", len(b))
		}
		all = append(all, b...)
	}
	slices.Sort(all)
	var want []string
	for _, id := range ids {
		want = append(want, fmt.Sprintf("%s:%d", id, t0.UnixMilli()))
	}
	if len(enq.batches) != 3 || !slices.Equal(all, want) {
		t.Fatalf("batches %v, want the 7 active connections in 3 batches", enq.batches)
	}
	sw := e.sweeps()
	for _, id := range ids {
		if want := t0.Add(5 * time.Minute); !sw[id].Equal(want) {
			t.Errorf("%s moved to %s, want its next slot %s", id, sw[id], want)
		}
	}

	// The queue fails: the entries wait for the next tick, then go out.
	enq.fail = true
	e.clock.Set(t0.Add(5*time.Minute + time.Second))
	st, err := s.Tick(t.Context())
	if err != nil || st.Errors != 7 || st.SweepsEnqueued != 0 {
		t.Fatalf("tick with a failing queue: %+v, %v", st, err)
	}
	sw = e.sweeps()
	for _, id := range ids {
		if want := e.clock.Now().Add(5 * time.Second); !sw[id].Equal(want) {
			t.Errorf("%s moved to %s after a failed batch, want the next tick %s", id, sw[id], want)
		}
	}
	enq.fail = false
	e.clock.Advance(5 * time.Second)
	if st := e.tick(s); st.SweepsEnqueued != 7 {
		t.Fatalf("after the queue came back: %+v", st)
	}
}

// countingReaper counts Reap calls and reports n reaped per call.
type countingReaper struct {
	calls atomic.Int32
	n     int
}

func (r *countingReaper) Reap(context.Context) (int, error) {
	r.calls.Add(1)
	return r.n, nil
}

// Every tick runs the Reaper (a dead worker's work is handed on within a
// tick, not at the connection's next sweep) and reports what it reaped;
// a tick without a Reaper is unchanged.
func TestTickRunsTheReaper(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := &countingReaper{n: 2}
	s := e.scheduler(&fakeEnqueuer{name: "s", q: newQueue()}, func(c *schedule.Config) { c.Reaper = r })
	for i := 1; i <= 2; i++ {
		if st := e.tick(s); st.Reaped != 2 || int(r.calls.Load()) != i {
			t.Fatalf("tick %d: Reaped %d, %d calls; want 2 and %d", i, st.Reaped, r.calls.Load(), i)
		}
	}
	if st := e.tick(e.scheduler(&fakeEnqueuer{name: "s2", q: newQueue()}, nil)); st.Reaped != 0 {
		t.Fatalf("tick without a Reaper: Reaped %d", st.Reaped)
	}
}

// reconEnqueuer also implements schedule.ReconcileEnqueuer.
type reconEnqueuer struct {
	fakeEnqueuer
}

func (f *reconEnqueuer) EnqueueReconcile(ctx context.Context, connID string, slot time.Time) error {
	return f.add(ctx, fmt.Sprintf("reconcile:%s:%d", connID, slot.UnixMilli()))
}

// Each active connection gets one reconciliation pass per
// ReconcileInterval, asked for by the sweep whose slot window holds the
// connection's period boundary; the boundaries are spread by the
// connection's id. A paused connection gets none.
func TestReconcilePassesOncePerIntervalSpreadOverIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	q := newQueue()
	ids := []string{"r1", "r2", "r3", "r4"}
	for _, id := range ids {
		e.connect(id, nil)
	}
	e.connect("paused", nil)
	if err := e.store.Pause(t.Context(), "paused"); err != nil {
		t.Fatal(err)
	}
	const interval = time.Hour
	s := e.scheduler(&reconEnqueuer{fakeEnqueuer{name: "s", q: q}}, func(c *schedule.Config) {
		c.RescanPerTick, c.ReconcileInterval = -1, interval
	})
	total := 0
	for i := 0; i <= 24; i++ { // two hours of 5-minute ticks
		e.clock.Set(t0.Add(time.Duration(i)*5*time.Minute + time.Second))
		total += e.tick(s).ReconcilesEnqueued
	}
	got := q.acceptedWith("reconcile:")
	offsets := map[time.Duration]bool{}
	for _, id := range ids {
		var mine []string
		for _, g := range got {
			if strings.HasPrefix(g, "reconcile:"+id+":") {
				mine = append(mine, g)
			}
		}
		// Boundaries in (first sweep, t0+2h]: two, each asked for once.
		if len(mine) != 2 {
			t.Errorf("%s: %d passes in two hours (%v), want 2", id, len(mine), mine)
		}
		off := schedule.ReconcileOffset(id, interval)
		offsets[off] = true
		for _, g := range mine {
			ms, _ := strconv.ParseInt(g[strings.LastIndex(g, ":")+1:], 10, 64)
			if slot := time.UnixMilli(ms); !schedule.ReconcileSlot(id, interval, slot).Equal(slot) {
				t.Errorf("%s: pass slot %v is not a period boundary", id, slot)
			}
		}
	}
	if len(offsets) < 3 {
		t.Errorf("offsets %v: connections not spread over the interval", offsets)
	}
	if slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, "reconcile:paused:") }) {
		t.Error("a paused connection got a reconciliation pass")
	}
	if total != len(got) {
		t.Errorf("ticks reported %d passes, %d enqueued", total, len(got))
	}
}

// A sweep whose enqueue fails (its queue's Redis master is failing over)
// is tried again at the next tick, not after the 30 s error retry, and goes
// out once the queue answers.
func TestFailedSweepEnqueueRetriedNextTick(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.connect("c0", nil)
	failing := true
	enq := &fakeEnqueuer{name: "s", q: newQueue(), before: func(context.Context, string) error {
		if failing {
			return errors.New("CLUSTERDOWN The cluster is down")
		}
		return nil
	}}
	s := e.scheduler(enq, func(c *schedule.Config) {
		c.RescanPerTick, c.RefreshLookahead = -1, -1
		c.Tick, c.SyncInterval = 2*time.Second, 15*time.Second
	})
	e.tick(s) // discovery
	e.setSlots(t0, "c0")
	e.clock.Set(t0.Add(time.Second))
	st, err := s.Tick(t.Context())
	if err != nil || st.Errors != 1 || st.SweepsEnqueued != 0 {
		t.Fatalf("tick with a failing queue: %+v, %v", st, err)
	}
	if got, want := e.sweeps()["c0"], e.clock.Now().Add(2*time.Second); !got.Equal(want) {
		t.Fatalf("c0 moved to %s after a failed enqueue, want the next tick %s", got, want)
	}
	failing = false
	e.clock.Advance(2 * time.Second)
	if st := e.tick(s); st.SweepsEnqueued != 1 {
		t.Fatalf("after the queue came back: %+v", st)
	}
	if got := enq.q.acceptedWith("sweep:c0:"); len(got) != 1 {
		t.Fatalf("sweeps of c0 enqueued: %v", got)
	}
}
