package control

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startAs opens /oauth/start (no connection id) as the client at xff (sent
// as X-Forwarded-For; "" sends none) and stops before Notion.
func (h *harness) startAs(xff string) response {
	h.t.Helper()
	b := h.browser()
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequest(http.MethodGet, h.ts.URL+StartPath, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	return h.do(b.c, req)
}

func retryAfterSeconds(t *testing.T, r response) int {
	t.Helper()
	n, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	return n
}

// Per-client limit on start and callback; X-Forwarded-For counts only from
// a trusted proxy.
func TestOAuthRateLimitedPerClient(t *testing.T) {
	t.Parallel()
	loopback := netip.MustParsePrefix("127.0.0.1/32")
	for _, trusted := range []bool{false, true} {
		t.Run("trusted="+strconv.FormatBool(trusted), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOptions{config: func(c *Config) {
				c.OAuthClientLimit = RateLimit{Every: time.Minute, Burst: 3}
				if trusted {
					c.TrustedProxies = []netip.Prefix{loopback}
				}
			}})
			for i := range 3 {
				if r := h.startAs("203.0.113.7"); r.status != http.StatusFound {
					t.Fatalf("start %d: %d", i+1, r.status)
				}
			}
			r := h.startAs("203.0.113.7")
			if r.status != http.StatusTooManyRequests {
				t.Fatalf("4th start: %d", r.status)
			}
			if n := retryAfterSeconds(t, r); n > 60 {
				t.Errorf("Retry-After %d s, want at most a minute", n)
			}
			// The callback shares the client's budget.
			req, _ := http.NewRequest(http.MethodGet, h.ts.URL+CallbackPath+"?state=x&code=y", nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
			if r := h.do(h.browser().c, req); r.status != http.StatusTooManyRequests {
				t.Errorf("callback: %d", r.status)
			}
			// Another client behind the proxy (a spoofed header when the
			// peer is not trusted; the limit must hold then).
			other := h.startAs("198.51.100.9")
			switch {
			case trusted && other.status != http.StatusFound:
				t.Errorf("another client behind a trusted proxy: %d", other.status)
			case !trusted && other.status != http.StatusTooManyRequests:
				t.Errorf("an untrusted X-Forwarded-For escaped the limit: %d", other.status)
			}
			// The bucket refills.
			h.clock.Advance(time.Minute)
			if r := h.startAs("203.0.113.7"); r.status != http.StatusFound {
				t.Errorf("after a minute: %d", r.status)
			}
		})
	}
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	s := &Server{cfg: Config{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}}
	for _, tc := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:5000", nil, "192.0.2.1"},
		{"192.0.2.1:5000", []string{"203.0.113.7"}, "192.0.2.1"}, // untrusted peer: header ignored
		{"10.1.2.3:5000", nil, "10.1.2.3"},
		{"10.1.2.3:5000", []string{"203.0.113.7"}, "203.0.113.7"},
		{"10.1.2.3:5000", []string{"6.6.6.6, 203.0.113.7"}, "203.0.113.7"},             // the client's own entry is not believed
		{"10.1.2.3:5000", []string{"6.6.6.6", "203.0.113.7, 10.9.9.9"}, "203.0.113.7"}, // two trusted hops
		{"10.1.2.3:5000", []string{"10.4.4.4"}, "10.4.4.4"},
		{"10.1.2.3:5000", []string{"junk, 203.0.113.7"}, "203.0.113.7"},
		{"10.1.2.3:5000", []string{"203.0.113.7, junk"}, "10.1.2.3"},
		{"[::1]:5000", []string{"2001:db8::1"}, "2001:db8::1"},
		{"[::ffff:10.1.2.3]:5000", []string{"203.0.113.7"}, "203.0.113.7"},
	} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := s.clientAddr(r).String(); got != tc.want {
			t.Errorf("%s %q: %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
	if clientKey(netip.MustParseAddr("2001:db8::1")) != clientKey(netip.MustParseAddr("2001:db8::ffff")) {
		t.Error("IPv6 addresses of one /64 have different keys")
	}
}

// The table of per-client buckets stays bounded, forgetting idle clients
// first.
func TestClientLimiterBounded(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Now()}
	l := newClientLimiter(RateLimit{Every: time.Second, Burst: 2}, c.Now)
	l.max = 100
	busy := netip.MustParseAddr("192.0.2.1")
	l.allow(busy)
	l.allow(busy)
	for i := range 1000 {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}))
		if n := len(l.buckets); n > l.max {
			t.Fatalf("%d buckets, cap %d", n, l.max)
		}
	}
}

// The outstanding states are capped: beyond it /oauth/start answers 503;
// a callback that takes a state, and expiry, make room. The index of
// states never holds more than the cap.
func TestOAuthStatesCapped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.MaxOAuthStates = 3 }})
	b := h.browser()
	cb := h.authorize(b, "")
	for i := range 2 {
		if r := h.startAs(""); r.status != http.StatusFound {
			t.Fatalf("start %d: %d", i+2, r.status)
		}
	}
	r := h.startAs("")
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("start beyond the cap: %d", r.status)
	}
	contains(t, r.body, "Too many sign-ins in progress")
	retryAfterSeconds(t, r)
	if n, _ := h.rdb.ZCard(context.Background(), h.prefix+"{oauth}:oauth:states").Result(); n != 3 {
		t.Errorf("state index holds %d, want 3", n)
	}
	// Finishing a flow frees its slot.
	if resp := h.get(b, cb.String()); resp.status != http.StatusOK {
		t.Fatalf("callback: %d %s", resp.status, resp.body)
	}
	if r := h.startAs(""); r.status != http.StatusFound {
		t.Fatalf("start after a callback: %d", r.status)
	}
	// Expired flows free theirs.
	h.clock.Advance(DefaultStateTTL + time.Second)
	for i := range 3 {
		if r := h.startAs(""); r.status != http.StatusFound {
			t.Fatalf("start %d after expiry: %d", i+1, r.status)
		}
	}
	if n, _ := h.rdb.ZCard(context.Background(), h.prefix+"{oauth}:oauth:states").Result(); n != 3 {
		t.Errorf("state index holds %d, want 3", n)
	}
}

// A callback with a state this server did not issue never reaches the
// token endpoint; code exchanges are bounded for all clients together.
func TestOAuthCodeExchangesBounded(t *testing.T) {
	t.Parallel()
	var outcomes list[OAuthOutcome]
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.ExchangeLimit = RateLimit{Every: time.Hour, Burst: 1}
		c.Hooks.OnOAuth = outcomes.add
	}})
	for _, q := range []string{"state=" + strings.Repeat("a", stateLen) + "&code=junk", "state=x&code=junk", "code=junk"} {
		if r := h.get(h.browser(), h.ts.URL+CallbackPath+"?"+q); r.status != http.StatusBadRequest {
			t.Errorf("callback %q: %d", q, r.status)
		}
	}
	if st := h.fake.Stats(); st.TokenRequests != 0 {
		t.Fatalf("callbacks with unknown states reached the token endpoint: %+v", st)
	}
	b1, b2 := h.browser(), h.browser()
	cb1, cb2 := h.authorize(b1, ""), h.authorize(b2, "")
	if r := h.get(b1, cb1.String()); r.status != http.StatusOK {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	r := h.get(b2, cb2.String())
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("second: %d %s", r.status, r.body)
	}
	if st := h.fake.Stats(); st.TokenRequests != 1 {
		t.Errorf("%d token requests, want 1", st.TokenRequests)
	}
	if o := outcomes.get(); len(o) == 0 || o[len(o)-1] != OAuthRateLimited {
		t.Errorf("outcomes %v", o)
	}
}

// Failed admin authentications are logged with the client's address (not
// the proxy's) and throttled per client: 429 with Retry-After, even for the
// right token, until the bucket refills; other clients are unaffected.
func TestAdminFailuresThrottledPerClient(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.AdminFailureLimit = RateLimit{Every: time.Minute, Burst: 3}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}})
	call := func(token, xff string) response {
		req, _ := http.NewRequest(http.MethodGet, h.ts.URL+"/api/v1/connections", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Forwarded-For", xff)
		return h.do(h.browser().c, req)
	}
	for i := range 3 {
		if r := call("wrong-token-0123456789", "203.0.113.7"); r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, r.status)
		}
	}
	r := call(testAdminToken, "203.0.113.7")
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("after 3 failures: %d %s", r.status, r.body)
	}
	if n := retryAfterSeconds(t, r); n > 60 {
		t.Errorf("Retry-After %d", n)
	}
	if r := call(testAdminToken, "198.51.100.9"); r.status != http.StatusOK {
		t.Errorf("another client: %d", r.status)
	}
	h.clock.Advance(time.Minute)
	if r := call(testAdminToken, "203.0.113.7"); r.status != http.StatusOK {
		t.Errorf("after a minute: %d", r.status)
	}
	var logged bool
	for _, l := range h.logText() {
		if strings.Contains(l, "wrong credential") {
			logged = true
			if !strings.Contains(l, "client=203.0.113.7") {
				t.Errorf("the failure is not logged with the client's address: %s", l)
			}
		}
	}
	if !logged {
		t.Error("no failure was logged")
	}
	h.assertNoSecrets([]string{"wrong-token-0123456789", testAdminToken}, nil)
}
