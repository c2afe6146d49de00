package notionfake

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jomei/notionapi"
)

func TestFailDataNext(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 20, Pages: 2})
	ctx := context.Background()
	page := notionapi.PageID(h.seed.PageIDs[0])

	for _, tc := range []struct {
		status int
		code   string
	}{
		{503, "service_unavailable"}, {500, "internal_server_error"}, {502, "bad_gateway"},
		{504, "gateway_timeout"}, {409, "conflict_error"}, {529, "service_overload"},
	} {
		h.s.FailDataNext(1, tc.status)
		_, err := h.api.Page.Get(ctx, page)
		wantAPIError(t, err, tc.status, tc.code)
		if _, err := h.api.Page.Get(ctx, page); err != nil {
			t.Fatalf("after one %d: %v", tc.status, err)
		}
	}
	// The error body carries the request id of its header.
	h.s.FailDataNext(1, 500)
	r := h.raw("POST", "/v1/search", map[string]any{})
	if m := r.json(t); r.status != 500 || m["request_id"] == "" || m["request_id"] != r.header.Get("x-notion-request-id") {
		t.Fatalf("500: %v, header %q", m, r.header.Get("x-notion-request-id"))
	}
	st := h.s.DataStats()
	if st.InjectedFaults != 7 || st.Count(EndpointGetPage, 409) != 1 || st.Count(EndpointGetPage, 200) != 6 {
		t.Errorf("stats %+v", st)
	}
	defer func() {
		if recover() == nil {
			t.Error("FailDataNext(1, 200) did not panic")
		}
	}()
	h.s.FailDataNext(1, 200)
}

func TestFaultsAreServedInOrderToAuthenticatedRequests(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 21, Pages: 1})
	path := "/v1/pages/" + h.seed.PageIDs[0]
	h.s.FailDataNext(1, 502)
	h.s.UnauthorizedNext(2)
	h.s.HTMLErrorNext(1)
	if n := h.s.PendingDataFaults(); n != 4 {
		t.Fatalf("pending %d", n)
	}
	// A request that fails authentication does not take a fault.
	if r := h.raw("GET", path, nil, withToken("ntn_bogus")); r.status != 401 {
		t.Fatalf("bogus token: %d", r.status)
	}
	for i, want := range []int{502, 401, 401, 403, 200} {
		if r := h.raw("GET", path, nil); r.status != want {
			t.Fatalf("request %d: status %d, want %d", i, r.status, want)
		}
	}
	if _, err := h.s.CheckAccessToken(h.pair.AccessToken); err != nil {
		t.Fatalf("UnauthorizedNext invalidated the token: %v", err)
	}
	if got := h.s.RequestCount(h.ws); got != 5 {
		t.Errorf("RequestCount %d, want 5", got)
	}
}

func TestUnauthorizedNextThroughNotionapi(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 22, Pages: 1})
	h.s.UnauthorizedNext(1)
	_, err := h.api.Search.Do(context.Background(), &notionapi.SearchRequest{})
	wantAPIError(t, err, 401, "unauthorized")
	if _, err := h.api.Search.Do(context.Background(), &notionapi.SearchRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestRateLimitDataNext(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 23, Pages: 1})
	h.s.RateLimitDataNext(1, 1500*time.Millisecond, "")
	h.s.RateLimitDataNext(1, 0, RateLimitReasonBlocked)

	r := h.raw("POST", "/v1/search", map[string]any{})
	m := r.json(t)
	ad, _ := m["additional_data"].(map[string]any)
	if r.status != 429 || m["code"] != "rate_limited" || r.header.Get("Retry-After") != "2" ||
		ad["retry_after"] != 2.0 || ad["rate_limit_reason"] != "connection" {
		t.Fatalf("429: %d %v, Retry-After %q", r.status, m, r.header.Get("Retry-After"))
	}
	r = h.raw("POST", "/v1/search", map[string]any{})
	ad, _ = r.json(t)["additional_data"].(map[string]any)
	if r.status != 429 || ad["rate_limit_reason"] != RateLimitReasonBlocked || r.header.Get("Retry-After") != "0" {
		t.Fatalf("blocked: %d %s", r.status, r.body)
	}

	// notionapi with WithRetry(1) gives up on the first 429. It never closes
	// a 429's body: cancelling the request's context frees the connection.
	h.s.RateLimitDataNext(1, time.Second, "")
	ctx, cancel := context.WithCancel(context.Background())
	_, err := h.api.Search.Do(ctx, &notionapi.SearchRequest{})
	cancel()
	var rl *notionapi.RateLimitedError
	if !errors.As(err, &rl) {
		t.Fatalf("notionapi error %v (%T)", err, err)
	}
	if st := h.s.DataStats(); st.Count(EndpointSearch, 429) != 3 || st.RateLimited != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestMalformedNext(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 24, Pages: 3, BlocksPerPage: 3})
	h.s.MalformedNext(2)
	r := h.raw("GET", "/v1/blocks/"+h.seed.PageIDs[0]+"/children", nil)
	if r.status != 200 || json.Valid(r.body) || len(r.body) == 0 || r.body[0] != '{' {
		t.Fatalf("malformed: %d %q", r.status, r.body)
	}
	if r.header.Get("x-notion-request-id") == "" {
		t.Error("malformed response lacks x-notion-request-id")
	}
	_, err := h.api.Search.Do(context.Background(), &notionapi.SearchRequest{})
	var ne *notionapi.Error
	if err == nil || errors.As(err, &ne) {
		t.Fatalf("notionapi on truncated JSON: %v", err)
	}
	if _, err := h.api.Search.Do(context.Background(), &notionapi.SearchRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestHTMLErrorNext(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 25, Pages: 1})
	h.s.HTMLErrorNext(2)
	r := h.raw("GET", "/v1/pages/"+h.seed.PageIDs[0], nil)
	if r.status != 403 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(r.body), "Cloudflare") || json.Valid(r.body) {
		t.Fatalf("html: %d %s %q", r.status, r.header.Get("Content-Type"), r.body)
	}
	if r.header.Get("x-notion-request-id") != "" {
		t.Error("Cloudflare answer carries a Notion request id")
	}
	_, err := h.api.Page.Get(context.Background(), notionapi.PageID(h.seed.PageIDs[0]))
	var ne *notionapi.Error
	if err == nil || errors.As(err, &ne) {
		t.Fatalf("notionapi on HTML: %v", err)
	}
	if st := h.s.DataStats(); st.Count(EndpointGetPage, 403) != 2 {
		t.Errorf("stats %+v", st.Requests)
	}
	// The request never reaches Notion: nothing changes.
	h.s.HTMLErrorNext(1)
	if r := h.raw("PATCH", "/v1/pages/"+h.seed.PageIDs[0], map[string]any{"archived": true}); r.status != 403 {
		t.Fatalf("PATCH: %d", r.status)
	}
	if ids := h.s.AllPageIDs(h.ws); len(ids) != 1 {
		t.Fatal("a blocked PATCH archived the page")
	}
}

func TestRateLimitEmulation(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 26, Pages: 1})
	other := h.s.SeedConnection("")
	h.s.SetRateLimit(3)
	get := func(mods ...reqMod) rawReply {
		t.Helper()
		return h.raw("GET", "/v1/pages/"+h.seed.PageIDs[0], nil, mods...)
	}
	for i := range 3 {
		if r := get(); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
		h.clock.Advance(10 * time.Second)
	}
	// 30 s into the window: 30 s left.
	r := get()
	m := r.json(t)
	ad, _ := m["additional_data"].(map[string]any)
	if r.status != 429 || r.header.Get("Retry-After") != "30" || ad["retry_after"] != 30.0 ||
		ad["rate_limit_reason"] != "connection" || m["code"] != "rate_limited" {
		t.Fatalf("over budget: %d %v, Retry-After %q", r.status, m, r.header.Get("Retry-After"))
	}
	// Another connection has its own budget (and gets 404: not its workspace).
	if r := get(withToken(other.AccessToken)); r.status != 404 {
		t.Fatalf("other connection: %d", r.status)
	}
	h.clock.Advance(29*time.Second + 500*time.Millisecond)
	if r := get(); r.status != 429 || r.header.Get("Retry-After") != "1" {
		t.Fatalf("0.5 s left: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	h.clock.Advance(500 * time.Millisecond)
	if r := get(); r.status != 200 {
		t.Fatalf("new window: %d", r.status)
	}
	// A re-authorization is a new connection with a fresh budget.
	fresh := h.s.SeedConnection(h.ws)
	for i := range 3 {
		if r := get(withToken(fresh.AccessToken)); r.status != 200 {
			t.Fatalf("fresh connection request %d: %d", i, r.status)
		}
	}
	if st := h.s.DataStats(); st.RateLimited != 2 {
		t.Errorf("RateLimited %d", st.RateLimited)
	}
	h.s.SetRateLimit(0)
	for range 5 {
		if r := get(withToken(fresh.AccessToken)); r.status != 200 {
			t.Fatalf("limit off: %d", r.status)
		}
	}
}

func TestDataLatency(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 27, Pages: 1})
	const d = 40 * time.Millisecond
	h.s.SetDataLatency(d)
	start := time.Now()
	if r := h.raw("POST", "/v1/search", map[string]any{}); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if el := time.Since(start); el < d {
		t.Fatalf("answered after %v, latency %v", el, d)
	}

	// A client that gives up is not held.
	h.s.SetDataLatency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.api.Search.Do(ctx, &notionapi.SearchRequest{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled request: %v", err)
	}
	// After Close, delayed requests are dropped without an answer.
	h.s.Close()
	req, _ := http.NewRequest("POST", h.ts.URL+"/v1/search", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+h.pair.AccessToken)
	req.Header.Set("Notion-Version", "2022-06-28")
	if resp, err := h.ts.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("closed fake answered %d", resp.StatusCode)
	}
}

func TestConcurrentRequestsEditsAndFaults(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 28, Pages: 10, NestedPages: 4, BlocksPerPage: 6, BlockDepth: 2,
		Databases: 2, RowsPerDatabase: 5})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 6 {
		wg.Go(func() {
			api := h.client(h.pair.AccessToken)
			for i := range 15 {
				var err error
				switch (w + i) % 4 {
				case 0:
					_, err = api.Search.Do(ctx, &notionapi.SearchRequest{PageSize: 5})
				case 1:
					_, err = api.Page.Get(ctx, notionapi.PageID(h.seed.PageIDs[i%10]))
				case 2:
					_, err = api.Block.GetChildren(ctx, notionapi.BlockID(h.seed.PageIDs[i%10]), nil)
				case 3:
					_, err = api.Database.Query(ctx, notionapi.DatabaseID(h.seed.DatabaseIDs[i%2]), &notionapi.DatabaseQueryRequest{})
				}
				var ne *notionapi.Error
				if err != nil && !(errors.As(err, &ne) && ne.Status == 503) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			h.s.FailDataNext(1, 503)
			id := h.seed.PageIDs[i%10]
			if err := h.s.TouchPage(h.ws, id, "edit"); err != nil {
				errs <- err
				return
			}
			if _, err := h.s.AddPage(h.ws, PageParent(id), "new", TextBlock("paragraph", "x")); err != nil {
				errs <- err
				return
			}
			_ = h.s.DataStats()
			h.clock.Advance(time.Second)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := h.s.DataStats(); st.Total() != 90 || st.InjectedFaults+h.s.PendingDataFaults() != 20 {
		t.Errorf("total %d, faults %d+%d", st.Total(), st.InjectedFaults, h.s.PendingDataFaults())
	}
}
