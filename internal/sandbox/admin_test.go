package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/notionsync/notionsync/internal/notionfake"
)

func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.Seed = notionfake.SeedSpec{
		Seed: 7, Pages: 4, NestedPages: 1, BlocksPerPage: 5, BlockDepth: 2,
		Databases: 1, RowsPerDatabase: 3, BlocksPerRow: 2, History: time.Hour,
	}
	return cfg
}

// startSandbox serves a Sandbox built from cfg on an httptest.Server, with a
// debug logger so that the access log (and its Hijack pass-through) is on.
func startSandbox(t *testing.T, cfg Config) (*Sandbox, *httptest.Server) {
	t.Helper()
	sb, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(sb.Handler())
	t.Cleanup(func() {
		sb.Close()
		ts.Close()
	})
	return sb, ts
}

// call sends an admin request with a JSON body (none if "") and decodes the
// answer into out unless out is nil. It returns the status and the raw body.
func call(t *testing.T, ts *httptest.Server, method, path, body string, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, string(raw)
}

// notion sends a data request as notionsync does and returns the response
// (body closed) and its body.
func notion(t *testing.T, ts *httptest.Server, token, method, path, body string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Notion-Version", "2022-06-28")
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(raw)
}

func search(t *testing.T, ts *httptest.Server, token string) int {
	t.Helper()
	resp, _ := notion(t, ts, token, http.MethodPost, "/v1/search", `{"page_size":5}`)
	return resp.StatusCode
}

// tokenResult is the part of a token response the tests read.
type tokenResult struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	WorkspaceID  string `json:"workspace_id"`
}

// grant posts a token request; err is the transport's (a dropped connection).
func grant(t *testing.T, ts *httptest.Server, body string) (int, tokenResult, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+"/v1/oauth/token", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(notionfake.DefaultClientID, notionfake.DefaultClientSecret)
	req.Header.Set("Notion-Version", "2022-06-28")
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		return 0, tokenResult{}, err
	}
	defer resp.Body.Close()
	var tr tokenResult
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, tr, nil
}

func refresh(t *testing.T, ts *httptest.Server, rt string) (int, tokenResult, error) {
	t.Helper()
	return grant(t, ts, `{"grant_type":"refresh_token","refresh_token":"`+rt+`"}`)
}

// connect authorizes the seeded workspace through a code exchange.
func connect(t *testing.T, sb *Sandbox, ts *httptest.Server) tokenResult {
	t.Helper()
	const redirect = "http://localhost/cb"
	code := sb.Fake().IssueCode(redirect)
	status, tr, err := grant(t, ts, `{"grant_type":"authorization_code","code":"`+code+`","redirect_uri":"`+redirect+`"}`)
	if err != nil || status != http.StatusOK {
		t.Fatalf("code exchange: status %d, %v", status, err)
	}
	if tr.WorkspaceID != sb.WorkspaceID() {
		t.Fatalf("exchange connected workspace %q, want %q", tr.WorkspaceID, sb.WorkspaceID())
	}
	return tr
}

func TestWorkspaceAndExpected(t *testing.T) {
	t.Parallel()
	sb, ts := startSandbox(t, smallConfig())
	seed := sb.Seed()

	var ws WorkspaceResponse
	if st, body := call(t, ts, http.MethodGet, "/_sandbox/workspace", "", &ws); st != http.StatusOK {
		t.Fatalf("workspace: %d %s", st, body)
	}
	if ws.WorkspaceID != "sandbox-ws" || ws.Counts.Pages != 4 || ws.Counts.Databases != 1 ||
		ws.Counts.Rows != 3 || ws.Counts.Blocks != seed.BlockCount || seed.BlockCount == 0 {
		t.Fatalf("workspace counts %+v, seed %+v", ws.Counts, seed)
	}
	if !slices.Equal(ws.PageIDs, seed.PageIDs) || !slices.Equal(ws.RowIDs, seed.RowIDs) || ws.LivePages != 7 {
		t.Fatalf("workspace ids %+v, seed %+v", ws, seed)
	}
	if ws.Seed.Pages != 4 || ws.Seed.Rows != 3 || ws.Seed.History != "1h0m0s" {
		t.Fatalf("seed spec %+v", ws.Seed)
	}

	var exp ExpectedResponse
	if st, body := call(t, ts, http.MethodGet, "/_sandbox/expected", "", &exp); st != http.StatusOK {
		t.Fatalf("expected: %d %s", st, body)
	}
	if exp.PageCount != 7 || len(exp.Pages) != 7 || exp.BlockCount != seed.BlockCount {
		t.Fatalf("expected %d pages / %d blocks, want 7 / %d", exp.PageCount, exp.BlockCount, seed.BlockCount)
	}
	for _, p := range exp.Pages {
		n, err := sb.Fake().PageBlockCount(sb.WorkspaceID(), p.ID)
		if err != nil || n != p.Blocks {
			t.Errorf("page %s: expected says %d blocks, fake %d (%v)", p.ID, p.Blocks, n, err)
		}
	}
}

func TestPagesAddTouchArchive(t *testing.T) {
	t.Parallel()
	sb, ts := startSandbox(t, smallConfig())
	ws := sb.WorkspaceID()
	expected := func() ExpectedResponse {
		var exp ExpectedResponse
		if st, body := call(t, ts, http.MethodGet, "/_sandbox/expected", "", &exp); st != http.StatusOK {
			t.Fatalf("expected: %d %s", st, body)
		}
		return exp
	}
	before := expected()

	// A top-level page with one paragraph.
	var added struct{ ID string }
	if st, body := call(t, ts, http.MethodPost, "/_sandbox/pages", `{"title":"New page","text":"hello"}`, &added); st != http.StatusCreated {
		t.Fatalf("add page: %d %s", st, body)
	}
	after := expected()
	if after.PageCount != before.PageCount+1 || after.BlockCount != before.BlockCount+1 {
		t.Fatalf("after add: %d pages / %d blocks, before %d / %d", after.PageCount, after.BlockCount, before.PageCount, before.BlockCount)
	}

	// A child page adds a page and a child_page block to its parent.
	parent := sb.Seed().PageIDs[0]
	var child struct{ ID string }
	if st, body := call(t, ts, http.MethodPost, "/_sandbox/pages", `{"title":"Child","parent_id":"`+parent+`"}`, &child); st != http.StatusCreated {
		t.Fatalf("add child page: %d %s", st, body)
	}
	if got := expected(); got.PageCount != after.PageCount+1 || got.BlockCount != after.BlockCount+1 {
		t.Fatalf("after child: %d pages / %d blocks, want %d / %d", got.PageCount, got.BlockCount, after.PageCount+1, after.BlockCount+1)
	}
	var row struct{ ID string }
	if st, body := call(t, ts, http.MethodPost, "/_sandbox/pages", `{"title":"Row","database_id":"`+sb.Seed().DatabaseIDs[0]+`"}`, &row); st != http.StatusCreated {
		t.Fatalf("add row: %d %s", st, body)
	}

	// Touch: the first paragraph gets the text.
	if st, body := call(t, ts, http.MethodPost, "/_sandbox/pages/"+added.ID+"/touch", `{"text":"edited"}`, nil); st != http.StatusOK {
		t.Fatalf("touch: %d %s", st, body)
	}
	var text string
	if err := sb.Fake().ViewPage(ws, added.ID, func(p *notionfake.Page) {
		text = p.Blocks[0].Payload["rich_text"].([]any)[0].(map[string]any)["plain_text"].(string)
	}); err != nil {
		t.Fatal(err)
	}
	if text != "edited" {
		t.Fatalf("touched paragraph says %q", text)
	}
	// Without a body the text is a default one.
	var touched struct{ Text string }
	if st, body := call(t, ts, http.MethodPost, "/_sandbox/pages/"+sb.Seed().PageIDs[1]+"/touch", "", &touched); st != http.StatusOK ||
		!strings.HasPrefix(touched.Text, "Edited through the sandbox admin API at ") {
		t.Fatalf("touch without body: %d %s", st, body)
	}

	// Archive: the page leaves what a complete sync holds.
	if st, body := call(t, ts, http.MethodPost, "/_sandbox/pages/"+added.ID+"/archive", "", nil); st != http.StatusOK {
		t.Fatalf("archive: %d %s", st, body)
	}
	for _, p := range expected().Pages {
		if p.ID == added.ID {
			t.Fatal("archived page still expected")
		}
	}

	bad := []struct {
		method, path, body string
		status             int
	}{
		{http.MethodPost, "/_sandbox/pages", `{}`, http.StatusBadRequest},
		{http.MethodPost, "/_sandbox/pages", `{"title":"x","parent_id":"a","database_id":"b"}`, http.StatusBadRequest},
		{http.MethodPost, "/_sandbox/pages", `{"title":"x","parent_id":"no-such-page"}`, http.StatusNotFound},
		{http.MethodPost, "/_sandbox/pages", `{"title":1}`, http.StatusBadRequest},
		{http.MethodPost, "/_sandbox/pages", `{"title":"x"} {}`, http.StatusBadRequest},
		{http.MethodPost, "/_sandbox/pages/no-such-page/touch", "", http.StatusNotFound},
		{http.MethodPost, "/_sandbox/pages/no-such-page/archive", "", http.StatusNotFound},
		{http.MethodPost, "/_sandbox/pages/" + parent + "/touch", `{"txt":"typo"}`, http.StatusBadRequest},
		{http.MethodGet, "/_sandbox/nope", "", http.StatusNotFound},
		{http.MethodPost, "/_sandbox/stats", "", http.StatusNotFound},
	}
	for _, b := range bad {
		var e adminError
		st, body := call(t, ts, b.method, b.path, b.body, nil)
		if st != b.status {
			t.Errorf("%s %s %s: status %d, want %d (%s)", b.method, b.path, b.body, st, b.status, body)
			continue
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" || e.Message == "" {
			t.Errorf("%s %s: error body %s", b.method, b.path, body)
		}
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	sb, ts := startSandbox(t, smallConfig())
	tr := connect(t, sb, ts)
	if st := search(t, ts, tr.AccessToken); st != http.StatusOK {
		t.Fatalf("search before revoke: %d", st)
	}

	var res struct {
		WorkspaceID string `json:"workspace_id"`
		Revoked     bool   `json:"revoked"`
	}
	if st, body := call(t, ts, http.MethodPost, "/_sandbox/revoke", "", &res); st != http.StatusOK || !res.Revoked || res.WorkspaceID != "sandbox-ws" {
		t.Fatalf("revoke: %d %s", st, body)
	}
	if st := search(t, ts, tr.AccessToken); st != http.StatusUnauthorized {
		t.Fatalf("search after revoke: %d, want 401", st)
	}
	if st, _, err := refresh(t, ts, tr.RefreshToken); err != nil || st != http.StatusBadRequest {
		t.Fatalf("refresh after revoke: %d %v, want 400 invalid_grant", st, err)
	}
	if _, body := call(t, ts, http.MethodPost, "/_sandbox/revoke?workspace=sandbox-ws", "", &res); res.Revoked {
		t.Fatalf("second revoke revoked again: %s", body)
	}
	if _, body := call(t, ts, http.MethodPost, "/_sandbox/revoke?workspace=unknown", "", &res); res.Revoked || res.WorkspaceID != "unknown" {
		t.Fatalf("revoke of an unknown workspace: %s", body)
	}
	st := sb.Stats()
	if st.Connected || st.Tokens.Revocations != 1 || st.Tokens.InvalidGrants != 1 {
		t.Fatalf("stats after revoke: %+v", st)
	}

	// Re-authorizing resumes the workspace.
	tr = connect(t, sb, ts)
	if st := search(t, ts, tr.AccessToken); st != http.StatusOK {
		t.Fatalf("search after re-authorization: %d", st)
	}
}

func TestDataFaults(t *testing.T) {
	t.Parallel()
	sb, ts := startSandbox(t, smallConfig())
	tr := connect(t, sb, ts)

	var fs FaultState
	if st, body := call(t, ts, http.MethodPost, "/_sandbox/faults", `{"fail_next":2,"status":502}`, &fs); st != http.StatusOK || fs.PendingDataFaults != 2 {
		t.Fatalf("faults: %d %s", st, body)
	}
	for i := range 2 {
		resp, body := notion(t, ts, tr.AccessToken, http.MethodPost, "/v1/search", `{}`)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, `"code":"bad_gateway"`) {
			t.Fatalf("request %d: %d %s, want 502 bad_gateway", i, resp.StatusCode, body)
		}
	}
	if st := search(t, ts, tr.AccessToken); st != http.StatusOK {
		t.Fatalf("after the faults: %d", st)
	}

	call(t, ts, http.MethodPost, "/_sandbox/faults", `{"rate_limit_next":1,"retry_after":"1500ms"}`, nil)
	resp, body := notion(t, ts, tr.AccessToken, http.MethodGet, "/v1/pages/"+sb.Seed().PageIDs[0], "")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" || !strings.Contains(body, "rate_limited") {
		t.Fatalf("rate_limit_next: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}

	call(t, ts, http.MethodPost, "/_sandbox/faults", `{"unauthorized_next":1,"target":"data"}`, nil)
	if st := search(t, ts, tr.AccessToken); st != http.StatusUnauthorized {
		t.Fatalf("unauthorized_next: %d", st)
	}
	if st := search(t, ts, tr.AccessToken); st != http.StatusOK {
		t.Fatalf("after unauthorized_next: %d", st)
	}

	// The rate limit: 2 per minute, then 429 until it is turned off.
	call(t, ts, http.MethodPost, "/_sandbox/faults", `{"rate_limit":2}`, nil)
	for i, want := range []int{200, 200, 429} {
		if st := search(t, ts, tr.AccessToken); st != want {
			t.Fatalf("rate-limited request %d: %d, want %d", i, st, want)
		}
	}
	call(t, ts, http.MethodPost, "/_sandbox/faults", `{"rate_limit":0}`, nil)
	if st := search(t, ts, tr.AccessToken); st != http.StatusOK {
		t.Fatalf("rate limit off: %d", st)
	}

	var stats StatsResponse
	if st, body := call(t, ts, http.MethodGet, "/_sandbox/stats", "", &stats); st != http.StatusOK {
		t.Fatalf("stats: %d %s", st, body)
	}
	d := stats.Data
	if d.InjectedFaults != 4 || d.RateLimited != 1 || d.ByStatus[502] != 2 || d.ByStatus[429] != 2 ||
		d.ByEndpoint["search"][502] != 2 || d.ByEndpoint["pages.retrieve"][429] != 1 || d.Workspaces["sandbox-ws"] != d.Requests {
		t.Fatalf("data stats %+v", d)
	}
	if stats.Faults.PendingDataFaults != 0 || stats.Faults.RateLimit != 0 {
		t.Fatalf("fault state %+v", stats.Faults)
	}
}

func TestTokenFaults(t *testing.T) {
	t.Parallel()
	sb, ts := startSandbox(t, smallConfig())
	tr := connect(t, sb, ts)

	call(t, ts, http.MethodPost, "/_sandbox/faults", `{"fail_next":1,"target":"token"}`, nil)
	if st, _, err := refresh(t, ts, tr.RefreshToken); err != nil || st != http.StatusServiceUnavailable {
		t.Fatalf("token fail_next: %d %v, want 503", st, err)
	}
	call(t, ts, http.MethodPost, "/_sandbox/faults", `{"rate_limit_next":1,"target":"token","retry_after":"3s"}`, nil)
	if st, _, err := refresh(t, ts, tr.RefreshToken); err != nil || st != http.StatusTooManyRequests {
		t.Fatalf("token rate_limit_next: %d %v, want 429", st, err)
	}
	// Nothing was rotated: the refresh token still works.
	st, next, err := refresh(t, ts, tr.RefreshToken)
	if err != nil || st != http.StatusOK || next.RefreshToken == tr.RefreshToken {
		t.Fatalf("refresh after faults: %d %v", st, err)
	}

	// Rotate, then drop: the rotation is committed, the client gets no answer.
	call(t, ts, http.MethodPost, "/_sandbox/faults", `{"rotate_then_drop_next":1}`, nil)
	if _, _, err := refresh(t, ts, next.RefreshToken); err == nil {
		t.Fatal("rotate_then_drop_next: the refresh got an answer")
	}
	if st, _, err := refresh(t, ts, next.RefreshToken); err != nil || st != http.StatusBadRequest {
		t.Fatalf("reusing the dropped rotation's token: %d %v, want 400 invalid_grant", st, err)
	}

	stats := sb.Stats()
	tk := stats.Tokens
	if tk.Exchanges != 1 || tk.RefreshGrants != 2 || tk.WorkspaceRefreshGrants != 2 || tk.InjectedFailures != 1 ||
		tk.RateLimited != 1 || tk.Dropped != 1 || tk.InvalidGrants != 1 || tk.TokenRequests != 6 {
		t.Fatalf("token stats %+v", tk)
	}
	if !stats.Connected {
		t.Fatal("the connection should still be live (its current refresh token is the dropped rotation's)")
	}
}

func TestFaultsValidation(t *testing.T) {
	t.Parallel()
	_, ts := startSandbox(t, smallConfig())
	bodies := []string{
		``,
		`{}`,
		`{"target":"data"}`,
		`[`,
		`{"fail_next":1} {"fail_next":1}`,
		`{"fail_next":1,"status":200}`,
		`{"fail_next":1,"status":600}`,
		`{"status":503}`,
		`{"fail_next":-1}`,
		`{"fail_next":10001}`,
		`{"rate_limit_next":1,"retry_after":"soon"}`,
		`{"rate_limit_next":1,"retry_after":"2h"}`,
		`{"retry_after":"1s"}`,
		`{"latency":"-1s"}`,
		`{"latency":"11m"}`,
		`{"latency":"fast"}`,
		`{"fail_rate":1.5}`,
		`{"fail_rate":-0.1}`,
		`{"rate_limit":-1}`,
		`{"target":"both","fail_next":1}`,
		`{"unauthorized_next":1,"target":"token"}`,
		`{"rotate_then_drop_next":1,"target":"data"}`,
		`{"fail_nxt":1}`,
		// One bad field: nothing of the request is applied.
		`{"fail_next":1,"fail_rate":2}`,
		`{"fail_next":1,"latency":"1h"}`,
	}
	for _, body := range bodies {
		if st, resp := call(t, ts, http.MethodPost, "/_sandbox/faults", body, nil); st != http.StatusBadRequest {
			t.Errorf("faults %s: %d %s, want 400", body, st, resp)
		}
	}
	var fs FaultState
	call(t, ts, http.MethodGet, "/_sandbox/faults", "", &fs)
	if fs != (FaultState{DataLatency: "0s", TokenLatency: "0s"}) {
		t.Fatalf("rejected requests changed the faults: %+v", fs)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	cfg.Latency = 20 * time.Millisecond
	sb, ts := startSandbox(t, cfg)
	if fs := sb.FaultState(); fs.DataLatency != "20ms" || fs.TokenLatency != "20ms" {
		t.Fatalf("-latency sets both: %+v", fs)
	}
	tr := connect(t, sb, ts)

	const d = 150 * time.Millisecond
	var fs FaultState
	call(t, ts, http.MethodPost, "/_sandbox/faults", `{"latency":"150ms","target":"data"}`, &fs)
	if fs.DataLatency != "150ms" || fs.TokenLatency != "20ms" {
		t.Fatalf("data latency: %+v", fs)
	}
	start := time.Now()
	if st := search(t, ts, tr.AccessToken); st != http.StatusOK {
		t.Fatalf("search: %d", st)
	}
	if took := time.Since(start); took < d {
		t.Fatalf("search took %v with %v latency", took, d)
	}
	call(t, ts, http.MethodPost, "/_sandbox/faults", `{"latency":"0s"}`, &fs)
	if fs.DataLatency != "0s" || fs.TokenLatency != "0s" {
		t.Fatalf("latency off: %+v", fs)
	}
}

func TestFailRate(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	cfg.FailRate = 0.5
	cfg.Rand = func() float64 { return 0.3 } // below 0.5: every data request draws a failure
	sb, ts := startSandbox(t, cfg)
	tr := connect(t, sb, ts)

	for i := range 3 {
		resp, body := notion(t, ts, tr.AccessToken, http.MethodPost, "/v1/search", `{}`)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"service_unavailable"`) ||
			resp.Header.Get("x-notion-request-id") == "" {
			t.Fatalf("request %d: %d %s, want Notion's 503", i, resp.StatusCode, body)
		}
	}
	// The token endpoint is not affected.
	if st, _, err := refresh(t, ts, tr.RefreshToken); err != nil || st != http.StatusOK {
		t.Fatalf("refresh with a fail rate: %d %v", st, err)
	}
	// 0.3 is not below 0.2: no more failures.
	call(t, ts, http.MethodPost, "/_sandbox/faults", `{"fail_rate":0.2}`, nil)
	if st := search(t, ts, tr.AccessToken); st != http.StatusOK {
		t.Fatalf("fail rate 0.2: %d", st)
	}
	st := sb.Stats()
	if st.Faults.RandomFailuresQueued != 3 || st.Data.InjectedFaults != 3 || st.Data.ByStatus[503] != 3 || st.Faults.FailRate != 0.2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAdminShowsNoSecrets(t *testing.T) {
	t.Parallel()
	sb, ts := startSandbox(t, smallConfig())
	tr := connect(t, sb, ts)
	search(t, ts, tr.AccessToken)
	for _, path := range []string{"/_sandbox/stats", "/_sandbox/workspace", "/_sandbox/expected", "/_sandbox/faults", "/_sandbox/health"} {
		st, body := call(t, ts, http.MethodGet, path, "", nil)
		if st != http.StatusOK {
			t.Fatalf("%s: %d", path, st)
		}
		for _, secret := range []string{tr.AccessToken, tr.RefreshToken, notionfake.DefaultClientSecret} {
			if strings.Contains(body, secret) {
				t.Fatalf("%s shows a secret", path)
			}
		}
	}
}

// FuzzFaults checks that no faults body panics the sandbox (notionfake
// panics on statuses outside 400..599) and that only valid ones are applied.
func FuzzFaults(f *testing.F) {
	for _, s := range []string{
		`{"fail_next":1,"status":503}`, `{"rate_limit_next":2,"retry_after":"2s","target":"token"}`,
		`{"rotate_then_drop_next":1}`, `{"latency":"200ms"}`, `{"fail_rate":0.1,"rate_limit":180}`,
		`{"fail_next":1,"status":99}`, `{"unauthorized_next":3}`, `{"latency":"-5ns"}`, `nul`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		cfg := DefaultConfig()
		cfg.Seed = notionfake.SeedSpec{}
		sb, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer sb.Close()
		rec := httptest.NewRecorder()
		sb.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/_sandbox/faults", strings.NewReader(body)))
		switch rec.Code {
		case http.StatusOK:
			var req faultsRequest
			if err := json.Unmarshal([]byte(body), &req); err != nil {
				t.Fatalf("accepted %q that does not decode: %v", body, err)
			}
			if _, err := req.validate(); err != nil {
				t.Fatalf("accepted invalid %q: %v", body, err)
			}
		case http.StatusBadRequest:
			if fs := sb.FaultState(); fs != (FaultState{DataLatency: "0s", TokenLatency: "0s"}) {
				t.Fatalf("rejected %q but changed the faults: %+v", body, fs)
			}
		default:
			t.Fatalf("faults %q: status %d", body, rec.Code)
		}
	})
}

// GET /_sandbox/ lists the admin routes (it answered not_found), every
// listed route is served, and an unknown one points to the list.
func TestAdminIndex(t *testing.T) {
	t.Parallel()
	_, ts := startSandbox(t, smallConfig())
	var idx IndexResponse
	if st, body := call(t, ts, http.MethodGet, "/_sandbox/", "", &idx); st != http.StatusOK {
		t.Fatalf("GET /_sandbox/: %d %s", st, body)
	}
	if !slices.Equal(idx.Routes, AdminRoutes()) || len(idx.Routes) < 16 {
		t.Fatalf("index lists %+v, want %+v", idx.Routes, AdminRoutes())
	}
	for _, r := range idx.Routes {
		if r.Summary == "" {
			t.Errorf("%s %s has no summary", r.Method, r.Path)
		}
		path := strings.ReplaceAll(r.Path, "{id}", "no-such-id")
		if _, body := call(t, ts, r.Method, path, "", nil); strings.Contains(body, "no admin route") {
			t.Errorf("listed %s %s is not served: %s", r.Method, r.Path, body)
		}
	}
	st, body := call(t, ts, http.MethodGet, "/_sandbox/nope", "", nil)
	if st != http.StatusNotFound || !strings.Contains(body, "GET /_sandbox/ lists them") {
		t.Errorf("GET /_sandbox/nope: %d %s", st, body)
	}
}
