package control

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// RateLimit is a token bucket: Burst events at once, then one per Every.
type RateLimit struct {
	Every time.Duration
	Burst int
}

func (l RateLimit) limit() rate.Limit { return rate.Every(l.Every) }

// Defaults of the anonymous-load limits (see Config).
var (
	// DefaultOAuthClientLimit: /oauth/start and /oauth/callback together,
	// per client address: 30 at once, then one per 2 s (a person needs 2
	// per connect).
	DefaultOAuthClientLimit = RateLimit{Every: 2 * time.Second, Burst: 30}
	// DefaultExchangeLimit: code exchanges of all clients together, per
	// process: 20 at once, then 5 per second.
	DefaultExchangeLimit = RateLimit{Every: 200 * time.Millisecond, Burst: 20}
	// DefaultAdminFailureLimit: failed admin authentications per client
	// address: 10, then one per minute; beyond that every admin request
	// from the address is answered 429 until the bucket refills.
	DefaultAdminFailureLimit = RateLimit{Every: time.Minute, Burst: 10}
)

// DefaultMaxOAuthStates caps the OAuth flows in progress (states stored in
// Redis), all clients together.
const DefaultMaxOAuthStates = 10000

// maxTrackedClients bounds the per-address limiter tables: an attacker with
// many addresses (an IPv6 block) must not grow the process's memory
// without bound either.
const maxTrackedClients = 100000

// clientKey is what a per-client limit is keyed by: the address, or its
// /64 for IPv6 (one subscriber usually holds a whole /64).
func clientKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// clientAddr returns the address of the client that made r: the TCP peer,
// unless the peer is a trusted proxy (Config.TrustedProxies); then the
// rightmost X-Forwarded-For entry that is not itself a trusted proxy (the
// entries to its left were written by the client and prove nothing). An
// unparsable entry ends the walk at the last trusted hop.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() || !s.trusted(peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	addr := peer
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a := parseAddr(strings.TrimSpace(parts[j]))
			if !a.IsValid() {
				return addr
			}
			addr = a
			if !s.trusted(a) {
				return a
			}
		}
	}
	return addr
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddr parses "ip", "ip:port" or "[ipv6]:port".
func parseAddr(v string) netip.Addr {
	if ap, err := netip.ParseAddrPort(v); err == nil {
		return ap.Addr().Unmap()
	}
	if host, _, err := net.SplitHostPort(v); err == nil {
		v = host
	}
	a, err := netip.ParseAddr(strings.Trim(v, "[]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}

// clientLimiter is a table of token buckets, one per client key. It holds
// at most maxTrackedClients entries: when full, entries whose bucket is
// full again (idle clients, which lose nothing by being forgotten) are
// dropped; if none is, the table is cleared. It is safe for concurrent use.
type clientLimiter struct {
	limit RateLimit
	now   func() time.Time
	max   int

	mu      sync.Mutex
	buckets map[netip.Prefix]*rate.Limiter
}

func newClientLimiter(l RateLimit, now func() time.Time) *clientLimiter {
	return &clientLimiter{limit: l, now: now, max: maxTrackedClients, buckets: make(map[netip.Prefix]*rate.Limiter)}
}

func (c *clientLimiter) bucket(k netip.Prefix, now time.Time) *rate.Limiter {
	b, ok := c.buckets[k]
	if ok {
		return b
	}
	if len(c.buckets) >= c.max {
		for key, b := range c.buckets {
			if b.TokensAt(now) >= float64(c.limit.Burst) {
				delete(c.buckets, key)
			}
		}
		if len(c.buckets) >= c.max {
			clear(c.buckets)
		}
	}
	b = rate.NewLimiter(c.limit.limit(), c.limit.Burst)
	c.buckets[k] = b
	return b
}

// allow takes one token for the client; when there is none it returns
// false and how long until there is.
func (c *clientLimiter) allow(a netip.Addr) (bool, time.Duration) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.bucket(clientKey(a), now)
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// blocked reports whether the client has no token left (without taking
// one), and how long until it has.
func (c *clientLimiter) blocked(a netip.Addr) (bool, time.Duration) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.buckets[clientKey(a)]
	if !ok || b.TokensAt(now) >= 1 {
		return false, 0
	}
	r := b.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return true, d
}

// take takes one token even if that leaves the bucket in debt (a failure
// has happened, whatever the bucket says).
func (c *clientLimiter) take(a netip.Addr) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bucket(clientKey(a), now).ReserveN(now, 1)
}

// retryAfter formats d as whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// limitOAuth wraps the OAuth start and callback with the per-client limit.
// The answer is a page (a person reads it) with Retry-After.
func (s *Server) limitOAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		addr := s.clientAddr(r)
		if ok, wait := s.oauthLimiter.allow(addr); !ok {
			// Debug: a flood must not turn into a flood of log lines.
			s.log.Debug("control: oauth request rate-limited", zap.String("client", addr.String()), zap.String("path", r.URL.Path))
			if r.URL.Path == CallbackPath {
				if f := s.hooks.OnOAuth; f != nil {
					f(OAuthRateLimited)
				}
			}
			w.Header().Set("Retry-After", retryAfter(wait))
			s.writePage(w, page{Status: http.StatusTooManyRequests, Title: "Too many requests",
				Message: "Too many sign-in requests came from your network. Please wait a minute and try again."})
			return
		}
		h(w, r)
	}
}
