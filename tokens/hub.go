package tokens

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// hub owns one Redis subscription per Source to the notification channel.
// Every script that changes a connection publishes "<id> <version> <kind>";
// the hub wakes the goroutines waiting on that id and drops the id from the
// token cache. When the subscription breaks (Redis restart, network), the hub
// clears the whole cache, stops it serving until the subscription is back
// (messages may have been missed), and wakes every waiter; go-redis
// re-subscribes on the next receive.
//
// While Redis is unreachable the hub retries with exponential backoff
// (hubMinBackoff doubling up to hubMaxBackoff) and logs the outage when it
// starts, at most once per hubLogEvery while it lasts, and when it ends: a
// fixed 100 ms retry with a warn each time wrote 321 lines per process in a
// 30 s outage (issue 10) and buried everything else in the log.
type hub struct {
	ps    *redis.PubSub
	log   *zap.Logger
	cache *tokenCache
	now   func() time.Time
	// wait sleeps d between attempts; false means stop was closed. Tests
	// replace it to drive the loop without sleeping.
	wait func(stop <-chan struct{}, d time.Duration) bool

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}

	stop    chan struct{}
	done    chan struct{}
	closing atomic.Bool
}

// Backoff and logging of the hub's reconnects while Redis is unreachable.
// The log lines are bounded by hubLogEvery, not by the backoff; the cap
// bounds how long after Redis is back the hub still misses notifications
// (its token cache stays off and refresh waiters fall back to their lock-TTL
// timer), so it is short: a refused dial every 5 s costs nothing.
const (
	hubMinBackoff = 100 * time.Millisecond
	hubMaxBackoff = 5 * time.Second
	hubLogEvery   = time.Minute
)

func newHub(ctx context.Context, rdb redis.UniversalClient, channel string, cache *tokenCache, log *zap.Logger, now func() time.Time) (*hub, error) {
	ps := rdb.Subscribe(ctx, channel)
	// Wait for the subscription to be confirmed, so nothing published after
	// NewSource returns can be missed.
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, err
	}
	h := newHubFrom(ps, cache, log, now)
	go h.run()
	return h, nil
}

// newHubFrom builds a hub on a confirmed subscription without starting it.
func newHubFrom(ps *redis.PubSub, cache *tokenCache, log *zap.Logger, now func() time.Time) *hub {
	return &hub{ps: ps, log: log, cache: cache, now: now, wait: sleepUnlessStopped,
		waiters: map[string]map[chan struct{}]struct{}{}, stop: make(chan struct{}), done: make(chan struct{})}
}

func sleepUnlessStopped(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// outage tracks one interruption of the subscription: how many receives
// failed, since when, and when it was last logged.
type outage struct {
	failures int
	since    time.Time
	logged   time.Time
}

// backoff is the wait after the failures-th consecutive failure.
func (o *outage) backoff() time.Duration {
	d := hubMinBackoff
	for i := 1; i < o.failures && d < hubMaxBackoff; i++ {
		d *= 2
	}
	return min(d, hubMaxBackoff)
}

func (h *hub) run() {
	defer close(h.done)
	var out outage
	for {
		msg, err := h.ps.Receive(context.Background())
		if err != nil {
			if h.closing.Load() || errors.Is(err, redis.ErrClosed) {
				return
			}
			h.cache.setOffline(true)
			h.cache.clear()
			h.wakeAll()
			now := h.now()
			out.failures++
			if out.failures == 1 {
				out.since, out.logged = now, now
				h.log.Warn("token notifications interrupted; token cache off and waiters woken until Redis answers again",
					zap.Error(err), zap.Duration("retry_in", out.backoff()))
			} else if now.Sub(out.logged) >= hubLogEvery {
				out.logged = now
				h.log.Warn("token notifications still interrupted", zap.Error(err),
					zap.Int("attempts", out.failures), zap.Duration("down_for", now.Sub(out.since)),
					zap.Duration("retry_in", out.backoff()))
			}
			if !h.wait(h.stop, out.backoff()) {
				return
			}
			continue
		}
		if out.failures > 0 {
			h.log.Info("token notifications restored", zap.Int("attempts", out.failures),
				zap.Duration("down_for", h.now().Sub(out.since)))
			out = outage{}
		}
		switch m := msg.(type) {
		case *redis.Message:
			id, _, _ := strings.Cut(m.Payload, " ")
			h.cache.drop(id)
			h.wake(id)
		case *redis.Subscription:
			// A (re-)subscription: anything published while we were away is lost.
			h.cache.clear()
			h.cache.setOffline(false)
			h.wakeAll()
		}
	}
}

// subscribe registers interest in id; the returned channel is closed by the
// next notification for id. Call cancel when done waiting.
func (h *hub) subscribe(id string) (ch <-chan struct{}, cancel func()) {
	c := make(chan struct{})
	h.mu.Lock()
	set := h.waiters[id]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		h.waiters[id] = set
	}
	set[c] = struct{}{}
	h.mu.Unlock()
	return c, func() {
		h.mu.Lock()
		if set, ok := h.waiters[id]; ok {
			if _, ok := set[c]; ok {
				delete(set, c)
				if len(set) == 0 {
					delete(h.waiters, id)
				}
			}
		}
		h.mu.Unlock()
	}
}

func (h *hub) wake(id string) {
	h.mu.Lock()
	for c := range h.waiters[id] {
		close(c)
	}
	delete(h.waiters, id)
	h.mu.Unlock()
}

func (h *hub) wakeAll() {
	h.mu.Lock()
	for id, set := range h.waiters {
		for c := range set {
			close(c)
		}
		delete(h.waiters, id)
	}
	h.mu.Unlock()
}

func (h *hub) close() error {
	h.closing.Store(true)
	close(h.stop)
	err := h.ps.Close()
	<-h.done
	return err
}

// tokenCache keeps the last token read per connection, so the fast path of
// Source.Token costs no Redis round trip. An entry is served only while its
// refresh is not due and it is younger than maxAge; the hub drops it as soon
// as any process changes the connection.
type tokenCache struct {
	maxAge time.Duration
	now    func() time.Time

	mu sync.RWMutex
	m  map[string]cacheEntry
	// epoch grows with every drop or clear. A reader notes it before loading
	// from Redis and puts its result only if it has not moved: a notification
	// that arrived during the load would otherwise be overwritten by the
	// older value it announced the end of.
	epoch uint64
	// offline is set while the hub's subscription is broken: without
	// notifications an entry could outlive a change, so nothing is served
	// or kept until the hub has re-subscribed.
	offline bool
}

type cacheEntry struct {
	tok      Token
	due      time.Time
	storedAt time.Time
}

func (c *tokenCache) get(id string) (Token, bool) {
	if c == nil || c.maxAge <= 0 {
		return Token{}, false
	}
	c.mu.RLock()
	e, ok := c.m[id]
	offline := c.offline
	c.mu.RUnlock()
	if !ok || offline {
		return Token{}, false
	}
	now := c.now()
	if !now.Before(e.due) || now.Sub(e.storedAt) > c.maxAge {
		return Token{}, false
	}
	return e.tok, true
}

// mark returns the current epoch, to pass to put.
func (c *tokenCache) mark() uint64 {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.epoch
}

func (c *tokenCache) put(tok Token, due time.Time, epoch uint64) {
	if c == nil || c.maxAge <= 0 {
		return
	}
	c.mu.Lock()
	if c.epoch == epoch && !c.offline {
		c.m[tok.ConnID] = cacheEntry{tok: tok, due: due, storedAt: c.now()}
	}
	c.mu.Unlock()
}

func (c *tokenCache) drop(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.m, id)
	c.epoch++
	c.mu.Unlock()
}

func (c *tokenCache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	clear(c.m)
	c.epoch++
	c.mu.Unlock()
}

// setOffline turns the cache off (true) or back on (false).
func (c *tokenCache) setOffline(off bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.offline = off
	c.mu.Unlock()
}
