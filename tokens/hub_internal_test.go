package tokens

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/notionsync/notionsync/internal/redistest"
)

// fakeClock is a clock the test advances by the hub's backoff waits.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestHubBacksOffAndRateLimitsLogsWhileRedisIsDown stops a real
// redis-server under a hub and drives its retry loop through an injected
// wait that advances a fake clock instead of sleeping: the retries back off
// exponentially to hubMaxBackoff, the outage is logged once when it starts
// and at most once per hubLogEvery after that, and once when it ends. On the
// old loop (a fixed 100 ms sleep and a warn per failure) the 40 failures
// below were 40 warn lines.
func TestHubBacksOffAndRateLimitsLogsWhileRedisIsDown(t *testing.T) {
	srv := redistest.StartTB(t, redistest.Options{})
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ps := rdb.Subscribe(ctx, "hub-test")
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	clock := &fakeClock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	cache := &tokenCache{maxAge: time.Minute, now: clock.Now, m: map[string]cacheEntry{}}
	h := newHubFrom(ps, cache, zap.New(core), clock.Now)

	const failures = 40
	var (
		mu      sync.Mutex
		delays  []time.Duration
		reached = make(chan struct{})
		resume  = make(chan struct{})
	)
	h.wait = func(stop <-chan struct{}, d time.Duration) bool {
		mu.Lock()
		delays = append(delays, d)
		n := len(delays)
		mu.Unlock()
		clock.Advance(d)
		if n == failures {
			close(reached)
			select {
			case <-resume:
			case <-stop:
				return false
			}
		}
		return true
	}
	go h.run()
	t.Cleanup(func() { _ = h.close() })

	srv.Kill() // Redis is down; every receive now fails
	select {
	case <-reached:
	case <-ctx.Done():
		t.Fatal("the hub did not retry 40 times")
	}

	mu.Lock()
	got := append([]time.Duration(nil), delays...)
	mu.Unlock()
	var downFor time.Duration
	for i, d := range got {
		want := min(hubMinBackoff<<i, hubMaxBackoff)
		if i >= 30 {
			want = hubMaxBackoff
		}
		if d != want {
			t.Errorf("wait %d = %s, want %s", i+1, d, want)
		}
		downFor += d
	}
	warns := logs.FilterLevelExact(zapcore.WarnLevel).Len()
	// One when the outage starts, then at most one per hubLogEvery.
	if maxWarns := 1 + int(downFor/hubLogEvery); warns > maxWarns || warns < 2 {
		t.Errorf("%d warn lines over %d failures in %s of outage, want 2..%d", warns, failures, downFor, maxWarns)
	}
	if n := logs.FilterMessage("token notifications interrupted; token cache off and waiters woken until Redis answers again").Len(); n != 1 {
		t.Errorf("%d outage-start lines, want 1", n)
	}
	if _, ok := cache.get("c1"); ok {
		t.Error("the cache serves while the subscription is down")
	}

	// Redis comes back: the next attempt re-subscribes, which wakes every
	// waiter; by then the recovery has been logged.
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	woken, stopWaiting := h.subscribe("c1")
	defer stopWaiting()
	close(resume)
	select {
	case <-woken:
	case <-ctx.Done():
		t.Fatal("the hub did not re-subscribe after Redis came back")
	}
	restored := logs.FilterMessage("token notifications restored").All()
	if len(restored) != 1 {
		t.Fatalf("%d recovery lines, want 1 (logs: %v)", len(restored), logs.All())
	}
	if f := restored[0].ContextMap(); f["attempts"] != int64(failures) {
		t.Errorf("recovery line %v, want attempts=%d", f, failures)
	}
	cache.put(Token{ConnID: "c1", AccessToken: "x"}, clock.Now().Add(time.Hour), cache.mark())
	if _, ok := cache.get("c1"); !ok {
		t.Error("the cache stays off after the subscription is back")
	}
}
