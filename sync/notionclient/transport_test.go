package notionclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jomei/notionapi"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/tokens"
)

const conn = "conn-1"

func TestBaseURLRewriteAndHeaders(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if strings.HasSuffix(r.URL.Path, "/children") {
			reply(w, 200, listJSON)
			return
		}
		reply(w, 200, pageJSON)
	})
	ts := newFakeTokens("tok-1")
	c := testClient(t, ts, Config{BaseURL: fake.URL + "/prefix/"})
	ctx := t.Context()

	nc := c.For(conn)
	if _, err := nc.Page.Get(ctx, "abc"); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Block.GetChildren(ctx, "blk", &notionapi.Pagination{StartCursor: "cur-1", PageSize: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, conn, http.MethodGet, "/v1/blocks/b2/children?page_size=5", nil); err != nil {
		t.Fatal(err)
	}

	raw, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.notion.com/v1/users/me", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Transport(conn).RoundTrip(raw)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.Request != raw || resp.Request.Header.Get("Authorization") != "" {
		t.Error("the response exposes the request that carried the token")
	}

	host := strings.TrimPrefix(fake.URL, "http://")
	want := []struct{ path, query string }{
		{"/prefix/v1/pages/abc", ""},
		{"/prefix/v1/blocks/blk/children", "page_size=10&start_cursor=cur-1"},
		{"/prefix/v1/blocks/b2/children", "page_size=5"},
		{"/prefix/v1/users/me", ""},
	}
	got := fake.requests()
	if len(got) != len(want) {
		t.Fatalf("fake saw %d requests, want %d", len(got), len(want))
	}
	for i, r := range got {
		if r.Path != want[i].path || r.RawQuery != want[i].query {
			t.Errorf("request %d: %s?%s, want %s?%s", i, r.Path, r.RawQuery, want[i].path, want[i].query)
		}
		if r.Host != host {
			t.Errorf("request %d: Host %q, want %q", i, r.Host, host)
		}
		if r.Auth != "Bearer tok-1" {
			t.Errorf("request %d: Authorization %q, want the connection's token", i, r.Auth)
		}
		if r.Version != DefaultNotionVersion {
			t.Errorf("request %d: Notion-Version %q", i, r.Version)
		}
	}
}

func TestNotionVersionConfigured(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, pageJSON) })
	c := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL, NotionVersion: "2025-09-03"})
	if _, err := c.For(conn).Page.Get(t.Context(), "abc"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(t.Context(), conn, http.MethodGet, "/v1/pages/abc", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range fake.requests() {
		if r.Version != "2025-09-03" {
			t.Errorf("Notion-Version %q, want the configured one", r.Version)
		}
	}
}

func TestTokenFetchedPerRequest(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, pageJSON) })
	ts := newFakeTokens("tok-a")
	c := testClient(t, ts, Config{BaseURL: fake.URL})
	nc := c.For(conn)
	for _, tok := range []string{"tok-a", "tok-b", "tok-c"} {
		ts.setCurrent(tok)
		if _, err := nc.Page.Get(t.Context(), "abc"); err != nil {
			t.Fatal(err)
		}
	}
	var auths []string
	for _, r := range fake.requests() {
		auths = append(auths, r.Auth)
		if strings.Contains(r.Auth, placeholderToken) {
			t.Errorf("notionapi's placeholder token reached Notion: %q", r.Auth)
		}
	}
	want := []string{"Bearer tok-a", "Bearer tok-b", "Bearer tok-c"}
	if fmt.Sprint(auths) != fmt.Sprint(want) {
		t.Errorf("Authorization headers %v, want %v", auths, want)
	}
}

func TestTokenSourceError(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, pageJSON) })
	ts := newFakeTokens("tok-1")
	ts.tokenErr = fmt.Errorf("stored: %w", tokens.ErrPaused)
	c := testClient(t, ts, Config{BaseURL: fake.URL})
	_, err := c.For(conn).Page.Get(t.Context(), "abc")
	if !errors.Is(err, tokens.ErrPaused) {
		t.Fatalf("err = %v, want tokens.ErrPaused", err)
	}
	if n := fake.count(); n != 0 {
		t.Errorf("%d requests sent without a token", n)
	}
}

// unauthorizedUnless answers 401 unless the bearer is good.
func unauthorizedUnless(good string, ok string) func(w http.ResponseWriter, r *http.Request, n int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("Authorization") != "Bearer "+good {
			reply(w, 401, errorBody(401, "unauthorized", "API token is invalid.", fmt.Sprintf("req-401-%d", n), nil))
			return
		}
		reply(w, 200, ok)
	}
}

func TestUnauthorizedRefreshesOnce(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, unauthorizedUnless("tok-2", pageJSON))
	ts := newFakeTokens("tok-1", "tok-2")
	c := testClient(t, ts, Config{BaseURL: fake.URL})

	req := &notionapi.PageCreateRequest{Parent: notionapi.Parent{Type: notionapi.ParentTypePageID, PageID: "parent"}}
	if _, err := c.For(conn).Page.Create(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if got := ts.failedTokens(); fmt.Sprint(got) != "[tok-1]" {
		t.Errorf("Invalidate called with %v, want [tok-1]", got)
	}
	reqs := fake.requests()
	if len(reqs) != 2 || reqs[0].Auth != "Bearer tok-1" || reqs[1].Auth != "Bearer tok-2" {
		t.Fatalf("requests %+v, want tok-1 then tok-2", reqs)
	}
	if len(reqs[0].Body) == 0 || !bytes.Equal(reqs[0].Body, reqs[1].Body) {
		t.Errorf("retried body %q differs from the first %q", reqs[1].Body, reqs[0].Body)
	}
}

func TestUnauthorizedTwiceIsAnError(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, unauthorizedUnless("never", pageJSON))
	ts := newFakeTokens("tok-1", "tok-2", "tok-3")
	c := testClient(t, ts, Config{BaseURL: fake.URL})

	_, err := c.For(conn).Page.Get(t.Context(), "abc")
	if !IsUnauthorized(err) {
		t.Fatalf("err = %v, want a 401 APIError", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.RequestID != "req-401-2" {
		t.Errorf("APIError %+v, want request id of the second answer", ae)
	}
	if got := ts.failedTokens(); fmt.Sprint(got) != "[tok-1]" {
		t.Errorf("Invalidate called with %v, want once with tok-1", got)
	}
	if n := fake.count(); n != 2 {
		t.Errorf("fake saw %d requests, want 2", n)
	}
}

func TestUnauthorizedReauthRequired(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, unauthorizedUnless("never", pageJSON))
	ts := newFakeTokens("tok-1")
	ts.invalidateErr = &tokens.ReauthError{ConnID: conn, Reason: tokens.ReasonRevoked}
	c := testClient(t, ts, Config{BaseURL: fake.URL})

	_, err := c.For(conn).Page.Get(t.Context(), "abc")
	if !errors.Is(err, tokens.ErrReauthRequired) {
		t.Fatalf("err = %v, want tokens.ErrReauthRequired", err)
	}
	var re *tokens.ReauthError
	if !errors.As(err, &re) || re.Reason != tokens.ReasonRevoked {
		t.Errorf("ReauthError not reachable: %v", err)
	}
	if n := fake.count(); n != 1 {
		t.Errorf("fake saw %d requests, want 1", n)
	}
}

// TestConcurrentUnauthorizedPassTheFailedToken holds 50 requests carrying the
// old token until all have arrived, then answers them all 401: every
// Invalidate must name that token, so that the token source refreshes once.
func TestConcurrentUnauthorizedPassTheFailedToken(t *testing.T) {
	t.Parallel()
	const workers = 50
	var (
		mu      sync.Mutex
		arrived int
		release = make(chan struct{})
	)
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("Authorization") == "Bearer tok-1" {
			mu.Lock()
			arrived++
			if arrived == workers {
				close(release)
			}
			mu.Unlock()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			reply(w, 401, errorBody(401, "unauthorized", "API token is invalid.", "", nil))
			return
		}
		reply(w, 200, pageJSON)
	})
	ts := newFakeTokens("tok-1", "tok-2", "tok-3")
	c := testClient(t, ts, Config{BaseURL: fake.URL, RatePerMinute: 6_000_000, Burst: 1000})
	nc := c.For(conn)

	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			_, err := nc.Page.Get(t.Context(), "abc")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	failed := ts.failedTokens()
	if len(failed) != workers {
		t.Fatalf("Invalidate called %d times, want %d", len(failed), workers)
	}
	for i, f := range failed {
		if f != "tok-1" {
			t.Errorf("Invalidate call %d named %q, want tok-1", i, f)
		}
	}
	if ts.rotations != 1 {
		t.Errorf("token rotated %d times, want 1", ts.rotations)
	}
}

func rateLimited(additional map[string]any) string {
	return errorBody(429, "rate_limited", "You have been rate limited. Please try again in a few minutes.", "req-429", additional)
}

// TestRateLimitBackoffIsShared: a 429 seen by one client stops another
// client that shares only Redis, without a request reaching Notion.
func TestRateLimitBackoffIsShared(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			reply(w, 429, rateLimited(nil), "Retry-After", "1")
			return
		}
		reply(w, 200, pageJSON)
	})
	ts := newFakeTokens("tok-1")
	prefix := redistest.UniquePrefix(t) // shared by the clients below
	obsA, obsB, obsC := &recorder{}, &recorder{}, &recorder{}
	a := testClient(t, ts, Config{BaseURL: fake.URL, KeyPrefix: prefix, MaxWait: -1, Observer: obsA})
	b := testClient(t, ts, Config{BaseURL: fake.URL, KeyPrefix: prefix, MaxWait: -1, Observer: obsB})
	cc := testClient(t, ts, Config{BaseURL: fake.URL, KeyPrefix: prefix, MaxWait: 2 * time.Second, Observer: obsC})

	_, err := a.For(conn).Page.Get(t.Context(), "abc")
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.Reason != ReasonRetryAfter || rl.RetryAfter != time.Second || rl.ConnID != conn {
		t.Fatalf("worker A: err = %v, want RateLimitError{1s, retry_after}", err)
	}
	if !errors.Is(err, ErrRateLimited) {
		t.Error("RateLimitError does not match ErrRateLimited")
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 429 || ae.RequestID != "req-429" {
		t.Errorf("429 APIError not reachable: %+v", ae)
	}
	if d, ok := RetryAfter(err); !ok || d != time.Second {
		t.Errorf("RetryAfter(err) = %s, %v", d, ok)
	}

	ttl, err := a.rdb.PTTL(t.Context(), a.keys(conn)[0]).Result()
	if err != nil || ttl <= 0 || ttl > time.Second {
		t.Fatalf("backoff key TTL %s (%v), want (0, 1s]", ttl, err)
	}

	_, err = b.For(conn).Page.Get(t.Context(), "abc")
	if !errors.As(err, &rl) || rl.Reason != ReasonBackoff || rl.RetryAfter <= 0 || rl.RetryAfter > time.Second {
		t.Fatalf("worker B: err = %v, want RateLimitError{(0,1s], backoff}", err)
	}
	if n := fake.count(); n != 1 {
		t.Fatalf("fake saw %d requests while backing off, want 1", n)
	}
	if ev := obsB.limitEvents(); len(ev) != 1 || ev[0].Reason != ReasonBackoff {
		t.Errorf("worker B observer: %v", ev)
	}

	// A worker that may wait long enough waits out the shared backoff.
	if _, err := cc.For(conn).Page.Get(t.Context(), "abc"); err != nil {
		t.Fatalf("worker C: %v", err)
	}
	if n := fake.count(); n != 2 {
		t.Errorf("fake saw %d requests, want 2", n)
	}
	waits := obsC.waitEvents()
	if len(waits) == 0 || waits[0].Reason != ReasonBackoff || waits[0].D <= 0 || waits[0].D > time.Second {
		t.Errorf("worker C waits %v, want one backoff wait in (0, 1s]", waits)
	}
}

func TestRateLimitWaitsInProcess(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			reply(w, 429, rateLimited(nil), "Retry-After", "1")
			return
		}
		reply(w, 200, pageJSON)
	})
	obs := &recorder{}
	c := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL, MaxWait: 2 * time.Second, Observer: obs})
	req := &notionapi.PageCreateRequest{Parent: notionapi.Parent{Type: notionapi.ParentTypePageID, PageID: "parent"}}
	start := time.Now()
	if _, err := c.For(conn).Page.Create(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("returned after %s, before Retry-After passed", el)
	}
	reqs := fake.requests()
	if len(reqs) != 2 || !bytes.Equal(reqs[0].Body, reqs[1].Body) || len(reqs[1].Body) == 0 {
		t.Fatalf("want the same body sent twice, got %d requests", len(reqs))
	}
	if w := obs.waitEvents(); len(w) != 1 || w[0] != (limitEvent{ReasonRetryAfter, time.Second}) {
		t.Errorf("waits %v, want one retry_after wait of 1s", w)
	}
	if l := obs.limitEvents(); len(l) != 1 || l[0] != (limitEvent{ReasonRetryAfter, time.Second}) {
		t.Errorf("rate-limit events %v", l)
	}
}

func TestRateLimitLongerThanMaxWait(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		headers []string
		extra   map[string]any
		status  int
	}{
		{"header", []string{"Retry-After", "30"}, nil, 429},
		{"additional_data", nil, map[string]any{"retry_after": 30, "rate_limit_reason": "integration_rate_limit"}, 429},
		{"529", []string{"Retry-After", "30"}, nil, 529},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) {
				reply(w, tc.status, errorBody(tc.status, "rate_limited", "slow down", "req-x", tc.extra), tc.headers...)
			})
			obs := &recorder{}
			c := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL, MaxWait: 2 * time.Second, Observer: obs})
			nc := c.For(conn)

			_, err := nc.Page.Get(t.Context(), "abc")
			var rl *RateLimitError
			if !errors.As(err, &rl) || rl.RetryAfter != 30*time.Second || rl.Reason != ReasonRetryAfter {
				t.Fatalf("err = %v, want RateLimitError{30s}", err)
			}
			if w := obs.waitEvents(); len(w) != 0 {
				t.Errorf("waited %v in-process, want none", w)
			}
			// Later requests are refused without being sent.
			_, err = nc.Page.Get(t.Context(), "abc")
			if !errors.As(err, &rl) || rl.Reason != ReasonBackoff || rl.RetryAfter < 29*time.Second || rl.RetryAfter > 30*time.Second {
				t.Fatalf("second request: err = %v, want a backoff refusal of about 30s", err)
			}
			if n := fake.count(); n != 1 {
				t.Errorf("fake saw %d requests, want 1", n)
			}
		})
	}
}

func TestRateLimitBackoffKeepsTheLonger(t *testing.T) {
	t.Parallel()
	retry := []string{"30", "1"}
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) {
		reply(w, 429, rateLimited(nil), "Retry-After", retry[n-1])
	})
	c := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL, MaxWait: -1})
	ctx := t.Context()
	keys := c.keys(conn)
	if _, err := c.For(conn).Page.Get(ctx, "abc"); !errors.Is(err, ErrRateLimited) {
		t.Fatal(err)
	}
	// Simulate a slower worker whose 429 (Retry-After 1) lands after the
	// 30s one: the stored backoff must stay at about 30s.
	got, err := c.setBackoff(ctx, keys, time.Second, "rate_limited")
	if err != nil {
		t.Fatal(err)
	}
	if got < 29*time.Second {
		t.Errorf("backoff in force %s, want the longer 30s", got)
	}
	if ttl := c.rdb.PTTL(ctx, keys[0]).Val(); ttl < 29*time.Second {
		t.Errorf("backoff key TTL %s shortened", ttl)
	}
}

func TestRateLimitBlockedIsNotRetried(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) {
		reply(w, 429, rateLimited(map[string]any{"rate_limit_reason": RateLimitReasonBlocked, "retry_after": 1}), "Retry-After", "1")
	})
	c := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL, MaxWait: 5 * time.Second})
	_, err := c.For(conn).Page.Get(t.Context(), "abc")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 429 || ae.RateLimitReason != RateLimitReasonBlocked {
		t.Fatalf("err = %v, want the blocked 429 as APIError", err)
	}
	if errors.Is(err, ErrRateLimited) || ae.Retryable() {
		t.Error("a blocked integration must not look retryable")
	}
	if _, ok := RetryAfter(err); ok {
		t.Error("RetryAfter suggests retrying a blocked integration")
	}
	if n := fake.count(); n != 1 {
		t.Errorf("fake saw %d requests, want 1", n)
	}
	if n := c.rdb.Exists(t.Context(), c.keys(conn)[0]).Val(); n != 0 {
		t.Error("a blocked answer set the retry backoff")
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	page := &notionapi.PageCreateRequest{Parent: notionapi.Parent{Type: notionapi.ParentTypePageID, PageID: "parent"}}
	for _, tc := range []struct {
		name       string
		statuses   []int // answers before a 200 (the last repeats if needed)
		maxRetries int
		call       func(ctx context.Context, nc *notionapi.Client) error
		wantSent   int
		wantStatus int // 0: success
	}{
		{"GET 500 502 retried", []int{500, 502}, 0, getPage, 3, 0},
		{"GET 503 504 exhausted", []int{503, 504, 503}, 2, getPage, 3, 503},
		{"GET 400 not retried", []int{400}, 0, getPage, 1, 400},
		{"GET 404 not retried", []int{404}, 0, getPage, 1, 404},
		{"GET 403 not retried", []int{403}, 0, getPage, 1, 403},
		{"POST pages 500 not retried", []int{500}, 0, func(ctx context.Context, nc *notionapi.Client) error {
			_, err := nc.Page.Create(ctx, page)
			return err
		}, 1, 500},
		{"PATCH page 503 not retried", []int{503}, 0, func(ctx context.Context, nc *notionapi.Client) error {
			_, err := nc.Page.Update(ctx, "abc", &notionapi.PageUpdateRequest{Properties: notionapi.Properties{}})
			return err
		}, 1, 503},
		{"POST pages 409 retried", []int{409}, 0, func(ctx context.Context, nc *notionapi.Client) error {
			_, err := nc.Page.Create(ctx, page)
			return err
		}, 2, 0},
		{"POST search 503 retried", []int{503, 500}, 0, func(ctx context.Context, nc *notionapi.Client) error {
			_, err := nc.Search.Do(ctx, &notionapi.SearchRequest{Query: "q", PageSize: 100})
			return err
		}, 3, 0},
		{"POST database query 504 retried", []int{504}, 0, func(ctx context.Context, nc *notionapi.Client) error {
			_, err := nc.Database.Query(ctx, "db1", &notionapi.DatabaseQueryRequest{PageSize: 100})
			return err
		}, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n <= len(tc.statuses) {
					s := tc.statuses[n-1]
					reply(w, s, errorBody(s, "some_error", "failed", fmt.Sprintf("req-%d", n), nil))
					return
				}
				if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/pages/") || r.URL.Path == "/v1/pages" || r.Method == http.MethodPatch {
					reply(w, 200, pageJSON)
					return
				}
				reply(w, 200, listJSON)
			})
			obs := &recorder{}
			c := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL, MaxRetries: tc.maxRetries, Observer: obs})
			err := tc.call(t.Context(), c.For(conn))
			if tc.wantStatus == 0 && err != nil {
				t.Fatalf("err = %v, want success", err)
			}
			if tc.wantStatus != 0 {
				var ae *APIError
				if !errors.As(err, &ae) || ae.Status != tc.wantStatus {
					t.Fatalf("err = %v, want APIError %d", err, tc.wantStatus)
				}
				if want := fmt.Sprintf("req-%d", tc.wantSent); ae.RequestID != want {
					t.Errorf("RequestID %q, want %q (the last answer's)", ae.RequestID, want)
				}
			}
			reqs := fake.requests()
			if len(reqs) != tc.wantSent {
				t.Fatalf("fake saw %d requests, want %d", len(reqs), tc.wantSent)
			}
			for i, r := range reqs[1:] {
				if !bytes.Equal(r.Body, reqs[0].Body) {
					t.Errorf("attempt %d body %q, first %q", i+2, r.Body, reqs[0].Body)
				}
				if r.Method == http.MethodPost && len(r.Body) == 0 {
					t.Errorf("attempt %d sent an empty body", i+2)
				}
			}
			for _, w := range obs.waitEvents() {
				if w.Reason != ReasonServerError {
					t.Errorf("unexpected wait %v", w)
				}
			}
			if got := len(obs.waitEvents()); got != tc.wantSent-1 {
				t.Errorf("%d backoff waits, want %d", got, tc.wantSent-1)
			}
		})
	}
}

func getPage(ctx context.Context, nc *notionapi.Client) error {
	_, err := nc.Page.Get(ctx, "abc")
	return err
}

// TestNetworkErrorRetriedForReadsOnly drops the connection of the first
// request without an answer.
func TestNetworkErrorRetriedForReadsOnly(t *testing.T) {
	t.Parallel()
	handler := func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		reply(w, 200, pageJSON)
	}
	t.Run("GET", func(t *testing.T) {
		t.Parallel()
		fake := newFakeNotion(t, handler)
		c := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL})
		if err := getPage(t.Context(), c.For(conn)); err != nil {
			t.Fatal(err)
		}
		if n := fake.count(); n != 2 {
			t.Errorf("fake saw %d requests, want 2", n)
		}
	})
	t.Run("POST pages", func(t *testing.T) {
		t.Parallel()
		fake := newFakeNotion(t, handler)
		c := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL})
		_, err := c.Do(t.Context(), conn, http.MethodPost, "/v1/pages", map[string]any{"parent": map[string]any{"page_id": "p"}})
		if err == nil {
			t.Fatal("a write whose outcome is unknown was retried or succeeded")
		}
		var ae *APIError
		if errors.As(err, &ae) {
			t.Errorf("network error reported as APIError %v", ae)
		}
		if n := fake.count(); n != 1 {
			t.Errorf("fake saw %d requests, want 1", n)
		}
	})
}

func TestAPIErrorThroughNotionapi(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.Path {
		case "/v1/pages/body-id":
			reply(w, 404, errorBody(404, "object_not_found", "Could not find page with ID: body-id.", "req-body",
				map[string]any{"hint": "share it"}), "X-Notion-Request-Id", "req-header")
		default:
			w.Header().Set("X-Notion-Request-Id", "req-header-only")
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"object":"error","status":404,"code":"object_not_found","message":"nope"}`))
		}
	})
	c := testClient(t, newFakeTokens("secret-tok"), Config{BaseURL: fake.URL})
	nc := c.For(conn)

	_, err := nc.Page.Get(t.Context(), "body-id")
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err %T %v: *APIError not reachable through notionapi", err, err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Errorf("expected net/http's *url.Error around it, got %T", err)
	}
	if !IsNotFound(err) || ae.Code != "object_not_found" || ae.RequestID != "req-body" || ae.Method != "GET" || ae.Path != "/v1/pages/body-id" {
		t.Errorf("APIError %+v", ae)
	}
	if string(ae.AdditionalData) != `{"hint":"share it"}` {
		t.Errorf("AdditionalData %s", ae.AdditionalData)
	}
	if !strings.Contains(err.Error(), "req-body") || strings.Contains(err.Error(), "secret-tok") {
		t.Errorf("error text %q: want the request id and no token", err)
	}
	if _, ok := RetryAfter(err); ok {
		t.Error("a 404 has no retry delay")
	}

	_, err = nc.Page.Get(t.Context(), "other")
	if !errors.As(err, &ae) || ae.RequestID != "req-header-only" {
		t.Errorf("header request id not used: %+v", ae)
	}
	// Do returns the same typed error, without the url.Error layer.
	_, err = c.Do(t.Context(), conn, http.MethodGet, "/v1/pages/body-id", nil)
	if !errors.As(err, &ae) || ae.RequestID != "req-body" {
		t.Errorf("Do: err = %v", err)
	}
	if errors.As(err, &ue) {
		t.Error("Do wrapped its error in url.Error")
	}
}

func TestNonJSONForbidden(t *testing.T) {
	t.Parallel()
	const html = "<html><body><h1>Attention Required! | Cloudflare</h1>ray id 1234</body></html>"
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(403)
		_, _ = w.Write([]byte(html))
	})
	c := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL})
	_, err := c.For(conn).Page.Get(t.Context(), "abc")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 403 || ae.Code != CodeNonJSON {
		t.Fatalf("err = %v, want 403 %s", err, CodeNonJSON)
	}
	msg := err.Error()
	if !strings.Contains(ae.Message, "403") || !strings.Contains(ae.Message, fmt.Sprint(len(html))) {
		t.Errorf("message %q lacks status or length", ae.Message)
	}
	if strings.Contains(msg, "Cloudflare") || strings.Contains(msg, "<html") {
		t.Errorf("error %q dumps the body", msg)
	}
	if n := fake.count(); n != 1 {
		t.Errorf("fake saw %d requests, want 1", n)
	}
}

func TestDoReturnsRawJSON(t *testing.T) {
	t.Parallel()
	const block = `{"object":"block","id":"b1","type":"future_block","has_children":true,"future_block":{"x":[1,2,{"y":null}]}}`
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, block) })
	c := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL + "/api"})
	ctx := t.Context()

	raw, err := c.Do(ctx, conn, http.MethodGet, "/v1/blocks/b1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != block {
		t.Errorf("Do returned %s, want the body verbatim", raw)
	}
	if _, err := c.Do(ctx, conn, http.MethodPost, "/v1/search", map[string]any{"query": "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, conn, http.MethodPost, "/v1/search", json.RawMessage(`{"query":"raw"}`)); err != nil {
		t.Fatal(err)
	}
	reqs := fake.requests()
	if reqs[0].Path != "/api/v1/blocks/b1" || len(reqs[0].Body) != 0 {
		t.Errorf("GET sent %+v", reqs[0])
	}
	if string(reqs[1].Body) != `{"query":"x"}` || reqs[1].ContentType != "application/json" {
		t.Errorf("POST sent %q (%s)", reqs[1].Body, reqs[1].ContentType)
	}
	if string(reqs[2].Body) != `{"query":"raw"}` {
		t.Errorf("POST raw sent %q", reqs[2].Body)
	}

	for _, bad := range []string{"v1/pages", "https://evil.example/v1/pages", "//evil.example/v1"} {
		if _, err := c.Do(ctx, conn, http.MethodGet, bad, nil); err == nil {
			t.Errorf("Do accepted path %q", bad)
		}
	}
	if _, err := c.Do(ctx, "", http.MethodGet, "/v1/pages/x", nil); err == nil {
		t.Error("Do accepted an empty connection id")
	}
	if n := fake.count(); n != 3 {
		t.Errorf("fake saw %d requests, want 3", n)
	}
}

func TestDoBoundsTheResponse(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) {
		reply(w, 200, `{"object":"list","results":["`+strings.Repeat("x", 200)+`"]}`)
	})
	c := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL, MaxResponseBytes: 100})
	if _, err := c.Do(t.Context(), conn, http.MethodGet, "/v1/users", nil); err == nil || !strings.Contains(err.Error(), "larger than 100") {
		t.Errorf("err = %v, want a size error", err)
	}
}

func TestLimiterBurstThenRefuses(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, pageJSON) })
	obs := &recorder{}
	c := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL, RatePerMinute: 60, Burst: 2, MaxWait: -1, Observer: obs})
	nc := c.For(conn)
	var ok, refused int
	for range 5 {
		_, err := nc.Page.Get(t.Context(), "abc")
		var rl *RateLimitError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &rl):
			refused++
			if rl.Reason != ReasonLocalBudget || rl.RetryAfter <= 0 || rl.RetryAfter > time.Second {
				t.Errorf("refusal %+v, want local_budget within one emission interval", rl)
			}
		default:
			t.Fatal(err)
		}
	}
	if ok != 2 || refused != 3 {
		t.Errorf("%d sent, %d refused; want 2 and 3", ok, refused)
	}
	if n := fake.count(); n != 2 {
		t.Errorf("fake saw %d requests, want 2", n)
	}
	if n := len(obs.limitEvents()); n != 3 {
		t.Errorf("%d OnRateLimited events, want 3", n)
	}
}

// TestLimiterConcurrentExact: refusals spend no budget, so with a budget
// that does not refill during the test exactly Burst requests pass.
func TestLimiterConcurrentExact(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, pageJSON) })
	const burst, workers = 5, 30
	// Two clients share the budget, as two worker processes would.
	prefix := redistest.UniquePrefix(t) // shared by the clients below
	clients := []*Client{
		testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL, KeyPrefix: prefix, RatePerMinute: 1, Burst: burst, MaxWait: -1}),
		testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL, KeyPrefix: prefix, RatePerMinute: 1, Burst: burst, MaxWait: -1}),
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, refused int
	for i := range workers {
		nc := clients[i%2].For(conn)
		wg.Go(func() {
			_, err := nc.Page.Get(t.Context(), "abc")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrRateLimited):
				refused++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != burst || refused != workers-burst {
		t.Errorf("%d sent, %d refused; want %d and %d", ok, refused, burst, workers-burst)
	}
	if n := fake.count(); n != burst {
		t.Errorf("fake saw %d requests, want %d", n, burst)
	}
}

func TestLimiterWaitsWithinMaxWait(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, pageJSON) })
	prefix := redistest.UniquePrefix(t) // shared by the clients below
	patient := &recorder{}
	a := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL, KeyPrefix: prefix, RatePerMinute: 60, Burst: 1, MaxWait: 2 * time.Second, Observer: patient})
	b := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL, KeyPrefix: prefix, RatePerMinute: 60, Burst: 1, MaxWait: 500 * time.Millisecond})

	if err := getPage(t.Context(), a.For(conn)); err != nil {
		t.Fatal(err)
	}
	// The next slot is about 1s away: more than b may wait.
	var rl *RateLimitError
	if err := getPage(t.Context(), b.For(conn)); !errors.As(err, &rl) || rl.Reason != ReasonLocalBudget || rl.RetryAfter <= 500*time.Millisecond {
		t.Fatalf("err = %v, want a local_budget refusal over 500ms", err)
	}
	start := time.Now()
	if err := getPage(t.Context(), a.For(conn)); err != nil {
		t.Fatal(err)
	}
	w := patient.waitEvents()
	if len(w) != 1 || w[0].Reason != ReasonLocalBudget || w[0].D <= 0 || w[0].D > time.Second {
		t.Fatalf("waits %v, want one local_budget wait in (0, 1s]", w)
	}
	if el := time.Since(start); el < w[0].D {
		t.Errorf("request went after %s, before its reserved slot (%s)", el, w[0].D)
	}
	if n := fake.count(); n != 2 {
		t.Errorf("fake saw %d requests, want 2", n)
	}
}

func TestOneRedisCommandPerRequest(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, pageJSON) })
	rdb := redisSrv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	counter := &cmdCounter{}
	rdb.AddHook(counter)
	c := testClientOn(t, rdb, newFakeTokens("tok-1"), Config{BaseURL: fake.URL, RatePerMinute: 6_000_000, Burst: 1000})
	nc := c.For(conn)
	if err := getPage(t.Context(), nc); err != nil { // may load the script
		t.Fatal(err)
	}
	before := counter.n.Load()
	const n = 20
	for range n {
		if err := getPage(t.Context(), nc); err != nil {
			t.Fatal(err)
		}
	}
	if got := counter.n.Load() - before; got != n {
		t.Errorf("%d Redis commands for %d requests, want one each", got, n)
	}
}

func TestContextCanceledWhileWaiting(t *testing.T) {
	t.Parallel()
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) {
		reply(w, 429, rateLimited(nil), "Retry-After", "3")
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	obs := &recorder{onWait: func(string, time.Duration) { cancel() }}
	c := testClient(t, newFakeTokens("tok-1"), Config{BaseURL: fake.URL, MaxWait: 10 * time.Second, Observer: obs})
	start := time.Now()
	err := getPage(ctx, c.For(conn))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if el := time.Since(start); el >= 3*time.Second {
		t.Errorf("cancellation took %s: the wait ignored ctx", el)
	}
	if n := fake.count(); n != 1 {
		t.Errorf("fake saw %d requests, want 1", n)
	}
}

func TestNoTokenInLogsOrErrors(t *testing.T) {
	t.Parallel()
	const secret1, secret2 = "secret_access_one", "secret_access_two"
	fake := newFakeNotion(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case r.URL.Path == "/v1/pages/limited":
			reply(w, 429, rateLimited(nil), "Retry-After", "30")
		case r.Header.Get("Authorization") == "Bearer "+secret2:
			reply(w, 200, pageJSON, "X-Notion-Request-Id", "req-ok")
		default:
			reply(w, 401, errorBody(401, "unauthorized", "API token is invalid.", "req-401", nil))
		}
	})
	core, logs := observer.New(zapcore.DebugLevel)
	ts := newFakeTokens(secret1, secret2)
	c := testClient(t, ts, Config{BaseURL: fake.URL, Logger: zap.New(core)})
	nc := c.For(conn)

	var errs []error
	if err := getPage(t.Context(), nc); err != nil {
		t.Fatal(err)
	}
	_, err := nc.Page.Get(t.Context(), "limited")
	errs = append(errs, err)
	ts.invalidateErr = &tokens.TransientError{ConnID: conn, RetryAfter: time.Second}
	ts.setCurrent(secret1)
	errs = append(errs, getPage(t.Context(), c.For("conn-2")))
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		if s := fmt.Sprintf("%v %+v %#v", err, err, err); strings.Contains(s, "secret_access") {
			t.Errorf("token in error: %s", s)
		}
	}

	var debug, warn int
	for _, e := range logs.All() {
		s := fmt.Sprintf("%s %v", e.Message, e.ContextMap())
		if strings.Contains(s, "secret_access") {
			t.Errorf("token in log: %s", s)
		}
		switch e.Level {
		case zapcore.DebugLevel:
			debug++
			m := e.ContextMap()
			if m["conn_id"] == nil || m["request_id"] == nil || m["status"] == nil || m["duration"] == nil || m["path"] == nil {
				t.Errorf("debug entry lacks fields: %v", m)
			}
		case zapcore.WarnLevel:
			warn++
			if m := e.ContextMap(); m["request_id"] != "req-429" || m["backoff"] == nil {
				t.Errorf("429 warning %v", m)
			}
		}
	}
	if debug != fake.count() || warn != 1 {
		t.Errorf("%d debug entries for %d requests, %d warnings; want one per request and one warning", debug, fake.count(), warn)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	rdb := redisSrv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	ts := newFakeTokens("x")
	if _, err := New(nil, ts, Config{}); err == nil {
		t.Error("nil redis accepted")
	}
	if _, err := New(rdb, nil, Config{}); err == nil {
		t.Error("nil token source accepted")
	}
	for _, cfg := range []Config{
		{BaseURL: "api.notion.com"},
		{BaseURL: "ftp://api.notion.com"},
		{BaseURL: "https://user:pw@api.notion.com"},
		{BaseURL: "https://api.notion.com?x=1"},
		{RatePerMinute: -1},
		{RatePerMinute: 60_000_001},
		{Burst: -1},
		{RetryBaseDelay: -time.Second},
	} {
		if _, err := New(rdb, ts, cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("error %q shows the URL password", err)
		}
	}
	c, err := New(rdb, ts, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c.baseURL.String() != DefaultBaseURL || c.version != DefaultNotionVersion || c.burst != DefaultBurst ||
		c.intervalMicros != 333333 || c.maxWait != DefaultMaxWait || c.maxRetries != DefaultMaxRetries || c.keyPrefix != DefaultKeyPrefix {
		t.Errorf("defaults not applied: %+v", c)
	}
	c, err = New(rdb, ts, Config{MaxWait: -1, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if c.maxWait != 0 || c.maxRetries != 0 {
		t.Errorf("negative MaxWait/MaxRetries not read as zero: %s %d", c.maxWait, c.maxRetries)
	}
}
