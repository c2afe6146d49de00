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
// clears the whole cache and wakes every waiter, since messages may have been
// missed; go-redis re-subscribes on the next receive.
type hub struct {
	ps    *redis.PubSub
	log   *zap.Logger
	cache *tokenCache

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}

	done    chan struct{}
	closing atomic.Bool
}

func newHub(ctx context.Context, rdb redis.UniversalClient, channel string, cache *tokenCache, log *zap.Logger) (*hub, error) {
	ps := rdb.Subscribe(ctx, channel)
	// Wait for the subscription to be confirmed, so nothing published after
	// NewSource returns can be missed.
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, err
	}
	h := &hub{ps: ps, log: log, cache: cache, waiters: map[string]map[chan struct{}]struct{}{}, done: make(chan struct{})}
	go h.run()
	return h, nil
}

func (h *hub) run() {
	defer close(h.done)
	for {
		msg, err := h.ps.Receive(context.Background())
		if err != nil {
			if h.closing.Load() || errors.Is(err, redis.ErrClosed) {
				return
			}
			h.log.Warn("token notifications interrupted; clearing cache and waking waiters", zap.Error(err))
			h.cache.clear()
			h.wakeAll()
			// Back off a little so a Redis outage does not spin this loop.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		switch m := msg.(type) {
		case *redis.Message:
			id, _, _ := strings.Cut(m.Payload, " ")
			h.cache.drop(id)
			h.wake(id)
		case *redis.Subscription:
			// A (re-)subscription: anything published while we were away is lost.
			h.cache.clear()
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
	c.mu.RUnlock()
	if !ok {
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
	if c.epoch == epoch {
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
