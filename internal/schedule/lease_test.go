package schedule_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/schedule"
	"github.com/notionsync/notionsync/tokens"
)

// replica is one scheduler process of a leader-election test: its own Redis
// client, store and enqueuer, its Run in a goroutine, and its hooks turned
// into observable events.
type replica struct {
	name   string
	s      *schedule.Scheduler
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // Run's result, valid once done is closed
	part   *partition

	ticks   atomic.Int64
	mu      sync.Mutex
	changes []leaderChange
	events  chan leaderChange
}

type leaderChange struct {
	leader bool
	at     time.Time
}

func (r *replica) lastChange() (leaderChange, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.changes) == 0 {
		return leaderChange{}, false
	}
	return r.changes[len(r.changes)-1], true
}

// waitLeader waits for the replica's next leader change to want.
func (r *replica) waitLeader(t *testing.T, want bool, timeout time.Duration) time.Time {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case c := <-r.events:
			if c.leader == want {
				return c.at
			}
		case <-timer.C:
			t.Fatalf("%s: no leader change to %v within %s", r.name, want, timeout)
		}
	}
}

// stop ends the replica's Run and waits for it.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("%s: Run returned %v", r.name, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Run did not return after its context was cancelled", r.name)
	}
}

type leaseTiming struct{ tick, ttl time.Duration }

// startReplica starts a scheduler process sharing e's Redis key space. The
// clock is real, and every connection of the test is permanently due for a
// refresh (nobody refreshes), so a replica that acts enqueues every tick.
func (e *env) startReplica(t *testing.T, name string, q *taskQueue, lt leaseTiming) *replica {
	t.Helper()
	r := &replica{name: name, done: make(chan struct{}), events: make(chan leaderChange, 16)}
	r.part = &partition{key: e.prefix + "scheduler:leader"}
	rdb := e.client(r.part)
	store, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: e.keys, KeyPrefix: e.prefix})
	if err != nil {
		t.Fatal(err)
	}
	r.s = e.scheduler(&fakeEnqueuer{name: name, q: q}, func(c *schedule.Config) {
		c.Redis, c.Store, c.Now = rdb, store, time.Now
		c.InstanceID = name
		c.Tick, c.LeaseTTL, c.SyncInterval = lt.tick, lt.ttl, time.Hour
		c.Hooks = schedule.Hooks{
			OnLeaderChange: func(leader bool) {
				ch := leaderChange{leader: leader, at: time.Now()}
				r.mu.Lock()
				r.changes = append(r.changes, ch)
				r.mu.Unlock()
				r.events <- ch
			},
			OnTick: func(schedule.TickStats) { r.ticks.Add(1) },
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	go func() {
		r.err = r.s.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// alwaysDue creates connections whose refresh is due a millisecond after
// they are written, on the real clock the replicas use.
func (e *env) alwaysDue(ids ...string) {
	e.t.Helper()
	e.clock.Set(time.Now())
	for _, id := range ids {
		e.connectTiming(id, nil, tokens.Timing{AccessTokenLifetime: 2 * time.Millisecond, RefreshMargin: time.Millisecond, RefreshJitter: time.Nanosecond})
	}
}

func TestOnlyOneReplicaActs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.alwaysDue("a", "b")
	q := newQueue()
	// Renewed every 600ms: 20 ticks span a few renewals, and only a stall
	// of seconds could let the lease lapse.
	lt := leaseTiming{tick: 20 * time.Millisecond, ttl: 3 * time.Second}
	r1 := e.startReplica(t, "r1", q, lt)
	r2 := e.startReplica(t, "r2", q, lt)

	var leader, standby *replica
	select {
	case <-r1.events:
		leader, standby = r1, r2
	case <-r2.events:
		leader, standby = r2, r1
	case <-time.After(5 * time.Second):
		t.Fatal("nobody became leader")
	}
	// Let the leader act for many ticks and several lease renewals.
	waitFor(t, 10*time.Second, "60 leader ticks", func() bool { return leader.ticks.Load() >= 60 })
	if n := standby.ticks.Load(); n != 0 {
		t.Fatalf("the standby ticked %d times while %s led", n, leader.name)
	}
	if len(q.attemptsBy(standby.name)) != 0 {
		t.Fatal("the standby enqueued tasks")
	}
	if len(q.attemptsBy(leader.name)) == 0 {
		t.Fatal("the leader enqueued nothing")
	}
	if !leader.s.IsLeader() || standby.s.IsLeader() {
		t.Fatalf("IsLeader: %s %v, %s %v", leader.name, leader.s.IsLeader(), standby.name, standby.s.IsLeader())
	}
	if _, changed := standby.lastChange(); changed {
		t.Fatal("the standby reported a leader change")
	}
	if err := leader.s.Run(t.Context()); !errors.Is(err, schedule.ErrAlreadyRunning) {
		t.Fatalf("a second Run returned %v, want ErrAlreadyRunning", err)
	}
}

// A leader that shuts down releases the lease: the standby takes over at its
// next attempt, long before the lease would have expired.
func TestReleaseHandsOverAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.alwaysDue("a")
	q := newQueue()
	lt := leaseTiming{tick: 20 * time.Millisecond, ttl: 4 * time.Second}
	r1 := e.startReplica(t, "r1", q, lt)
	r1.waitLeader(t, true, 5*time.Second)
	r2 := e.startReplica(t, "r2", q, lt)
	waitFor(t, 5*time.Second, "r1 to tick while r2 stands by", func() bool { return r1.ticks.Load() >= 10 })

	stopped := time.Now()
	r1.stop(t)
	if c, _ := r1.lastChange(); c.leader {
		t.Fatal("r1 did not report losing the lead when Run returned")
	}
	took := r2.waitLeader(t, true, lt.ttl).Sub(stopped)
	t.Logf("handover after release: %s (lease TTL %s)", took, lt.ttl)
	if took >= lt.ttl/2 {
		t.Fatalf("handover took %s: the lease was not released (TTL %s)", took, lt.ttl)
	}
	if n, err := e.rdb.Get(t.Context(), e.prefix+"scheduler:leader").Result(); err != nil || n != "r2" {
		t.Fatalf("lease holder %q (%v), want r2", n, err)
	}
}

// A leader cut off from its lease (it can neither renew nor release, like a
// process that is killed or loses its network) stops acting before its lease
// can expire, and the standby takes over once it has expired.
func TestLeaderThatCannotRenewStopsAndIsTakenOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.alwaysDue("a", "b", "c")
	q := newQueue()
	lt := leaseTiming{tick: 50 * time.Millisecond, ttl: time.Second} // renew every 200ms, act up to 500ms after
	r1 := e.startReplica(t, "r1", q, lt)
	r1.waitLeader(t, true, 5*time.Second)
	r2 := e.startReplica(t, "r2", q, lt)
	waitFor(t, 5*time.Second, "r1 to act", func() bool { return r1.ticks.Load() >= 5 })

	// Cut r1 off, and note when Redis will expire its lease.
	pttl, err := e.rdb.PTTL(t.Context(), e.prefix+"scheduler:leader").Result()
	if err != nil || pttl <= 0 {
		t.Fatalf("lease PTTL %s (%v)", pttl, err)
	}
	cut := time.Now()
	r1.part.on.Store(true)
	expires := cut.Add(pttl)
	down := r1.waitLeader(t, false, 2*lt.ttl)
	up := r2.waitLeader(t, true, 3*lt.ttl)
	t.Logf("cut at 0: r1 stepped down at +%s, its lease expired at +%s, r2 took over at +%s (TTL %s)",
		down.Sub(cut), expires.Sub(cut), up.Sub(cut), lt.ttl)

	// r1 acts only within LeaseTTL/2 of its last successful renewal and
	// notices at its next renewal attempt; it could not release the lease,
	// so r2 had to wait for Redis to expire it.
	if !down.Before(expires) {
		t.Errorf("r1 stepped down at +%s, not before its lease expired (+%s)", down.Sub(cut), expires.Sub(cut))
	}
	if up.Before(expires.Add(-5 * time.Millisecond)) {
		t.Errorf("r2 took over at +%s, before r1's lease expired (+%s)", up.Sub(cut), expires.Sub(cut))
	}
	if up.Sub(expires) > lt.tick+time.Second {
		t.Errorf("r2 took over %s after the lease expired (tick %s)", up.Sub(expires), lt.tick)
	}
	for _, a := range q.attemptsBy("r1") {
		if a.at.After(expires) {
			t.Fatalf("r1 enqueued %s at +%s, after its lease expired", a.id, a.at.Sub(cut))
		}
	}
	waitFor(t, 5*time.Second, "r2 to act", func() bool { return len(q.attemptsBy("r2")) > 0 })

	// Reconnected, r1 stays a standby: the lease is r2's.
	r1.part.on.Store(false)
	before := r2.ticks.Load()
	waitFor(t, 5*time.Second, "r2 to keep ticking", func() bool { return r2.ticks.Load() >= before+10 })
	if r1.s.IsLeader() {
		t.Fatal("r1 took the lead back from r2")
	}
	if c, _ := r1.lastChange(); c.leader {
		t.Fatal("r1 reported leading again")
	}
}
