package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/tokens"
)

func TestAdminAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.seed("c1", "")
	send := func(mod func(*http.Request)) response {
		req, _ := http.NewRequest(http.MethodGet, h.ts.URL+"/api/v1/connections/c1", nil)
		mod(req)
		return h.do(h.browser().c, req)
	}
	unauthorized := []struct {
		name string
		mod  func(*http.Request)
	}{
		{"no credential", func(*http.Request) {}},
		{"wrong bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer wrong-token-0123456789") }},
		{"bearer prefix of the token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testAdminToken[:20]) }},
		{"empty bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }},
		{"wrong basic password", func(r *http.Request) { r.SetBasicAuth("admin", "nope") }},
		{"token as basic user name", func(r *http.Request) { r.SetBasicAuth(testAdminToken, "") }},
		{"unknown scheme", func(r *http.Request) { r.Header.Set("Authorization", "Token "+testAdminToken) }},
	}
	for _, tc := range unauthorized {
		resp := send(tc.mod)
		if resp.status != http.StatusUnauthorized {
			t.Errorf("%s: status %d", tc.name, resp.status)
		}
		if !strings.Contains(strings.Join(resp.header.Values("WWW-Authenticate"), ","), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %v", tc.name, resp.header.Values("WWW-Authenticate"))
		}
		if e := decode[apiError](t, resp); e.Error != "unauthorized" || strings.Contains(resp.body, "c1") {
			t.Errorf("%s: body %s", tc.name, resp.body)
		}
	}
	for name, mod := range map[string]func(*http.Request){
		"bearer":           func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testAdminToken) },
		"bearer lowercase": func(r *http.Request) { r.Header.Set("Authorization", "bearer "+testAdminToken) },
		"basic":            func(r *http.Request) { r.SetBasicAuth("anyone", testAdminToken) },
	} {
		if resp := send(mod); resp.status != http.StatusOK {
			t.Errorf("%s: status %d", name, resp.status)
		}
	}
	// Unknown admin routes answer 401 before 404.
	if resp := h.apiAs("", http.MethodGet, "/api/v2/whatever", nil); resp.status != http.StatusUnauthorized {
		t.Errorf("unknown route without credential: %d", resp.status)
	}
	if resp := h.api(http.MethodGet, "/api/v2/whatever", nil); resp.status != http.StatusNotFound {
		t.Errorf("unknown route: %d", resp.status)
	}
	// A browser's cross-site POST is refused even with cached credentials.
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/api/v1/connections/c1/pause", nil)
	req.SetBasicAuth("admin", testAdminToken)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp := h.do(h.browser().c, req); resp.status != http.StatusForbidden {
		t.Errorf("cross-site POST: %d", resp.status)
	}
	if h.conn("c1").Status != tokens.StatusActive {
		t.Error("the cross-site POST paused the connection")
	}
}

func TestAPIListAndGet(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.SyncInfo = func(_ context.Context, id string) (any, error) {
			if id == "c3" {
				return nil, errTest
			}
			return map[string]string{"last": "yesterday"}, nil
		}
	}})
	for _, id := range []string{"c1", "c2", "c3"} {
		h.seed(id, "")
		h.clock.Advance(time.Millisecond) // distinct creation times keep the order
	}
	if err := h.store.MarkNeedsReauth(context.Background(), "c2", "testing"); err != nil {
		t.Fatal(err)
	}

	var all []ConnectionView
	after := ""
	for page := 0; ; page++ {
		resp := h.api(http.MethodGet, "/api/v1/connections?limit=2&after="+after, nil)
		if resp.status != http.StatusOK {
			t.Fatalf("list: %d %s", resp.status, resp.body)
		}
		l := decode[ConnectionList](t, resp)
		all = append(all, l.Connections...)
		if l.Next == "" {
			break
		}
		after = l.Next
		if page > 3 {
			t.Fatal("pagination does not end")
		}
	}
	if len(all) != 3 || all[0].ID != "c1" || all[1].ID != "c2" || all[2].ID != "c3" {
		t.Fatalf("listed %+v", all)
	}
	c1, c2 := all[0], all[1]
	if c1.Status != tokens.StatusActive || c1.AccessExpiresAt.IsZero() || c1.RefreshDueAt.IsZero() ||
		c1.CreatedAt.IsZero() || !c1.HasRefreshToken || c1.Meta[MetaWorkspaceID] == "" || c1.Version != 1 || c1.KeyID != "k1" {
		t.Errorf("c1 %+v", c1)
	}
	if c1.Sync == nil || all[2].Sync != nil {
		t.Errorf("sync info: %v / %v", c1.Sync, all[2].Sync)
	}
	if c2.Status != tokens.StatusNeedsReauth || c2.Reason != tokens.ReasonOperator || c2.Detail != "testing" ||
		!strings.HasPrefix(c2.ReconnectURL, h.ts.URL+"/oauth/start?connection_id=c2&expires=") || !strings.Contains(c2.ReconnectURL, "&sig=") {
		t.Errorf("c2 %+v", c2)
	}
	resp := h.api(http.MethodGet, "/api/v1/connections", nil)
	if strings.Contains(resp.body, "retry_at") {
		t.Errorf("zero times are not omitted: %s", resp.body)
	}

	if resp := h.api(http.MethodGet, "/api/v1/connections/c1", nil); resp.status != http.StatusOK || decode[ConnectionView](t, resp).ID != "c1" {
		t.Errorf("get: %d %s", resp.status, resp.body)
	}
	for path, want := range map[string]int{
		"/api/v1/connections/nope":           http.StatusNotFound,
		"/api/v1/connections/nope/events":    http.StatusNotFound,
		"/api/v1/connections/bad%20id":       http.StatusBadRequest,
		"/api/v1/connections?limit=0":        http.StatusBadRequest,
		"/api/v1/connections?limit=x":        http.StatusBadRequest,
		"/api/v1/connections?limit=1000000":  http.StatusBadRequest,
		"/api/v1/connections?after=bad%20id": http.StatusBadRequest,
	} {
		resp := h.api(http.MethodGet, path, nil)
		if resp.status != want {
			t.Errorf("GET %s: %d, want %d", path, resp.status, want)
		}
		if e := decode[apiError](t, resp); e.Error == "" || e.Message == "" {
			t.Errorf("GET %s: error body %s", path, resp.body)
		}
	}
}

func TestAPIEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.seed("c1", "")
	h.api(http.MethodPost, "/api/v1/connections/c1/pause", nil)
	resp := h.api(http.MethodGet, "/api/v1/connections/c1/events", nil)
	if resp.status != http.StatusOK {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	body := decode[struct {
		ConnectionID string         `json:"connection_id"`
		Events       []tokens.Event `json:"events"`
	}](t, resp)
	if body.ConnectionID != "c1" || len(body.Events) != 2 || body.Events[0].Kind != tokens.EventPaused ||
		body.Events[1].Kind != tokens.EventConnected {
		t.Errorf("events %+v", body)
	}
}

func TestAPIPauseResumeSyncRefresh(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.seed("c1", "")
	post := func(path string) response { return h.api(http.MethodPost, "/api/v1/connections/c1/"+path, nil) }
	expect := func(r response, status int, code string) {
		t.Helper()
		if r.status != status {
			t.Errorf("status %d, want %d: %s", r.status, status, r.body)
		}
		if code != "" && decode[apiError](t, r).Error != code {
			t.Errorf("error %s, want %s", r.body, code)
		}
	}

	r := post("pause")
	expect(r, http.StatusOK, "")
	if decode[ConnectionView](t, r).Status != tokens.StatusPaused {
		t.Errorf("pause answered %s", r.body)
	}
	expect(post("pause"), http.StatusConflict, "wrong_status")
	expect(post("sync"), http.StatusConflict, "wrong_status")
	expect(post("refresh"), http.StatusAccepted, "") // paused connections are still refreshed
	expect(post("resume"), http.StatusOK, "")
	expect(post("resume"), http.StatusConflict, "wrong_status")
	if h.conn("c1").Status != tokens.StatusActive {
		t.Error("not resumed")
	}
	expect(post("sync"), http.StatusAccepted, "")
	if n := h.enq.syncCount("c1"); n != 1 {
		t.Errorf("%d syncs, want 1", n)
	}
	if n := h.enq.refreshCount(); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}

	// A synchronous refresh goes to Notion and answers with the new state.
	before := h.conn("c1")
	r = post("refresh?wait=1")
	expect(r, http.StatusOK, "")
	if v := decode[ConnectionView](t, r); v.Version != before.Version+1 || v.RefreshedAt.IsZero() {
		t.Errorf("after refresh: %+v", v)
	}
	expect(post("refresh?wait=maybe"), http.StatusBadRequest, "invalid_wait")

	h.enq.setErr(errTest)
	expect(post("sync"), http.StatusServiceUnavailable, "enqueue_failed")
	expect(post("refresh"), http.StatusServiceUnavailable, "enqueue_failed")
	h.enq.setErr(nil)

	// needs_reauth: nothing but disconnect and reconnect applies.
	if err := h.store.MarkNeedsReauth(context.Background(), "c1", ""); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"pause", "resume", "sync", "refresh", "refresh?wait=1"} {
		expect(post(p), http.StatusConflict, "wrong_status")
	}
	for _, p := range []string{"pause", "resume", "sync", "refresh", "disconnect"} {
		expect(h.api(http.MethodPost, "/api/v1/connections/nope/"+p, nil), http.StatusNotFound, "not_found")
	}
	// Wrong method.
	if r := h.api(http.MethodGet, "/api/v1/connections/c1/pause", nil); r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET pause: %d", r.status)
	}
}

func TestAPIRefreshWaitReportsNeedsReauth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	p := h.seed("c1", "")
	h.fake.Revoke(p.WorkspaceID)
	r := h.api(http.MethodPost, "/api/v1/connections/c1/refresh?wait=1", nil)
	if r.status != http.StatusConflict || decode[apiError](t, r).Error != "needs_reauth" {
		t.Errorf("%d %s", r.status, r.body)
	}
	if c := h.conn("c1"); c.Status != tokens.StatusNeedsReauth || c.Reason != tokens.ReasonRevoked {
		t.Errorf("connection %s/%s", c.Status, c.Reason)
	}
}

func TestAPIImport(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	p := h.fake.SeedConnection("")
	body := ImportRequest{ConnectionID: "imp-1", AccessToken: p.AccessToken, RefreshToken: p.RefreshToken,
		ExpiresIn: 1800, Meta: map[string]string{MetaWorkspaceID: p.WorkspaceID, "tenant": "t-9"}}

	bad := map[string]any{
		"not json":         "{",
		"array":            "[]",
		"two objects":      `{"connection_id":"a"} {}`,
		"unknown field":    `{"connection_id":"a","access_token":"` + p.AccessToken + `","refresh_token":"x","scope":"y"}`,
		"wrong type":       `{"connection_id":"a","access_token":["` + p.AccessToken + `"]}`,
		"no id":            ImportRequest{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken},
		"bad id":           ImportRequest{ConnectionID: "a b", AccessToken: p.AccessToken, RefreshToken: p.RefreshToken},
		"no access token":  ImportRequest{ConnectionID: "a", RefreshToken: p.RefreshToken},
		"no refresh token": ImportRequest{ConnectionID: "a", AccessToken: p.AccessToken},
		"negative expiry":  ImportRequest{ConnectionID: "a", AccessToken: p.AccessToken, RefreshToken: p.RefreshToken, ExpiresIn: -1},
		"huge expiry":      ImportRequest{ConnectionID: "a", AccessToken: p.AccessToken, RefreshToken: p.RefreshToken, ExpiresIn: 1 << 62},
		"space in token":   ImportRequest{ConnectionID: "a", AccessToken: p.AccessToken + " x", RefreshToken: p.RefreshToken},
		"too large":        `{"connection_id":"a","access_token":"` + strings.Repeat("x", maxImportBody) + `"}`,
	}
	for name, b := range bad {
		r := h.api(http.MethodPost, "/api/v1/connections/import", b)
		if r.status != http.StatusBadRequest || decode[apiError](t, r).Error != "invalid_body" {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
		if strings.Contains(r.body, p.AccessToken) || strings.Contains(r.body, p.RefreshToken) {
			t.Errorf("%s: the answer quotes a token", name)
		}
	}
	if h.connectionCount() != 0 {
		t.Fatal("a bad import stored something")
	}

	r := h.api(http.MethodPost, "/api/v1/connections/import", body)
	if r.status != http.StatusCreated {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	v := decode[ConnectionView](t, r)
	if v.ID != "imp-1" || v.Status != tokens.StatusActive || v.Meta["tenant"] != "t-9" {
		t.Errorf("imported %+v", v)
	}
	if d := v.AccessExpiresAt.Sub(h.clock.Now()); d < 29*time.Minute || d > 31*time.Minute {
		t.Errorf("expiry in %s, want 30m (expires_in)", d)
	}
	tok, err := h.source.Token(context.Background(), "imp-1")
	if err != nil || tok.AccessToken != p.AccessToken {
		t.Errorf("Token after import: %v", err)
	}
	events, _ := h.store.Events(context.Background(), "imp-1")
	if events[0].Kind != tokens.EventImported {
		t.Errorf("events %+v", events)
	}
	if h.enq.syncCount("imp-1") != 1 {
		t.Error("no first sync enqueued")
	}
	// The imported grant really works: a refresh spends it at Notion.
	if r := h.api(http.MethodPost, "/api/v1/connections/imp-1/refresh?wait=1", nil); r.status != http.StatusOK {
		t.Errorf("refresh of the imported grant: %d %s", r.status, r.body)
	}

	// Importing over a live connection needs replace=1.
	p2 := h.fake.SeedConnection(p.WorkspaceID)
	body.AccessToken, body.RefreshToken = p2.AccessToken, p2.RefreshToken
	if r := h.api(http.MethodPost, "/api/v1/connections/import", body); r.status != http.StatusConflict {
		t.Errorf("import over a live connection: %d", r.status)
	}
	if r := h.api(http.MethodPost, "/api/v1/connections/import?replace=1", body); r.status != http.StatusCreated {
		t.Errorf("import with replace: %d %s", r.status, r.body)
	}
	if tok, _ := h.source.Token(context.Background(), "imp-1"); tok.AccessToken != p2.AccessToken {
		t.Error("replace did not store the new pair")
	}
	h.assertNoSecrets([]string{p.AccessToken, p.RefreshToken, p2.AccessToken, p2.RefreshToken}, nil)
}

func TestAPIDisconnect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	p := h.seed("c1", "")
	r := h.api(http.MethodPost, "/api/v1/connections/c1/disconnect", nil)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	body := decode[struct {
		Connection ConnectionView `json:"connection"`
		Revoked    bool           `json:"revoked"`
	}](t, r)
	if !body.Revoked || body.Connection.Status != tokens.StatusDisconnected || body.Connection.HasRefreshToken {
		t.Errorf("answer %+v", body)
	}
	if st := h.fake.Stats(); st.Revocations != 1 {
		t.Errorf("fake saw %d revocations", st.Revocations)
	}
	if _, ok := h.fake.CurrentPair(p.WorkspaceID); ok {
		t.Error("the grant is still live at Notion")
	}
	if _, err := h.source.Token(context.Background(), "c1"); !errors.Is(err, tokens.ErrDisconnected) {
		t.Errorf("Token after disconnect: %v", err)
	}
	// The secrets are gone from Redis.
	fields := h.rdb.HGetAll(context.Background(), keyspace.Conn(h.prefix, "c1")+"conn:c1").Val()
	if fields["at"] != "" || fields["rt"] != "" {
		t.Errorf("secrets left: at=%d rt=%d bytes", len(fields["at"]), len(fields["rt"]))
	}
	// Idempotent.
	r = h.api(http.MethodPost, "/api/v1/connections/c1/disconnect", nil)
	if r.status != http.StatusOK || strings.Contains(r.body, `"revoked":true`) {
		t.Errorf("second disconnect: %d %s", r.status, r.body)
	}
	if st := h.fake.Stats(); st.Revocations != 1 {
		t.Errorf("revoked twice: %d", st.Revocations)
	}
	events, _ := h.store.Events(context.Background(), "c1")
	if events[0].Kind != tokens.EventDisconnected || events[1].Kind == tokens.EventDisconnected {
		t.Errorf("events %+v", events)
	}
}

// A connection that is not active (here: marked needs_reauth by an
// operator) is still revoked at Notion with its stored pair; one whose grant
// is already dead there is disconnected all the same (revoking is best
// effort; an OAuth revoke of a dead token answers 200, RFC 7009).
func TestAPIDisconnectWhenNotActive(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.seed("c1", "")
	if err := h.store.MarkNeedsReauth(context.Background(), "c1", ""); err != nil {
		t.Fatal(err)
	}
	r := h.api(http.MethodPost, "/api/v1/connections/c1/disconnect", nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, `"revoked":true`) {
		t.Errorf("%d %s", r.status, r.body)
	}
	if st := h.fake.Stats(); st.Revocations != 1 {
		t.Errorf("revocations %d, want 1", st.Revocations)
	}

	h.seed("c2", "")
	ws := h.conn("c2").Meta["workspace_id"]
	h.fake.Revoke(ws) // the user removed the integration at Notion
	r = h.api(http.MethodPost, "/api/v1/connections/c2/disconnect", nil)
	if r.status != http.StatusOK {
		t.Errorf("%d %s", r.status, r.body)
	}
	if h.conn("c2").Status != tokens.StatusDisconnected {
		t.Error("not disconnected")
	}
}

func TestAsynqmonMountRequiresAdmin(t *testing.T) {
	t.Parallel()
	var seenList list[string]
	dummy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenList.add(r.URL.Path)
		fmt.Fprint(w, "asynqmon")
	})
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.Asynqmon = dummy }})
	get := func(path string, basic bool) response {
		req, _ := http.NewRequest(http.MethodGet, h.ts.URL+path, nil)
		if basic {
			req.SetBasicAuth("", testAdminToken)
		}
		return h.do(h.browser().c, req)
	}
	r := get("/admin/asynqmon/", false)
	if r.status != http.StatusUnauthorized || !strings.Contains(strings.Join(r.header.Values("WWW-Authenticate"), ","), "Basic") {
		t.Errorf("without credential: %d %v", r.status, r.header)
	}
	if r := get("/admin/asynqmon/api/queues", false); r.status != http.StatusUnauthorized {
		t.Errorf("api without credential: %d", r.status)
	}
	if seen := seenList.get(); len(seen) != 0 {
		t.Fatalf("asynqmon served without credential: %v", seen)
	}
	if r := get("/admin/asynqmon/api/queues", true); r.status != http.StatusOK || r.body != "asynqmon" {
		t.Errorf("with credential: %d %s", r.status, r.body)
	}
	if seen := seenList.get(); len(seen) != 1 || seen[0] != "/admin/asynqmon/api/queues" {
		t.Errorf("asynqmon saw %v (want the full path)", seen)
	}
	if r := get("/admin/other", true); r.status != http.StatusNotFound {
		t.Errorf("/admin/other: %d", r.status)
	}
}

func TestHealthReady(t *testing.T) {
	t.Parallel()
	var routes []string
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.Hooks.OnRequest = func(route string, status int, _ time.Duration) {
			routes = append(routes, fmt.Sprintf("%s %d", route, status))
		}
	}})
	serve := func(s *Server, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ok\n"} {
		if rec := serve(h.srv, path); rec.Code != http.StatusOK || rec.Body.String() != want {
			t.Errorf("%s: %d %q", path, rec.Code, rec.Body.String())
		}
	}
	// Metrics are not served here: this server faces browsers.
	if rec := serve(h.srv, "/metrics"); rec.Code != http.StatusNotFound {
		t.Errorf("/metrics on the control server: %d, want 404", rec.Code)
	}
	if len(routes) != 3 || !strings.Contains(strings.Join(routes, ","), "GET /readyz 200") {
		t.Errorf("OnRequest saw %v", routes)
	}
	if rec := serve(h.srv, "/readyz"); rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", rec.Header())
	}

	// Redis unreachable: not ready, still alive.
	cfg := h.cfg
	dead := deadRedis(t)
	cfg.Redis = dead
	cfg.Hooks = Hooks{}
	s := h.newServer(cfg)
	if rec := serve(s, "/readyz"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz with Redis down: %d", rec.Code)
	}
	if rec := serve(s, "/healthz"); rec.Code != http.StatusOK {
		t.Errorf("healthz with Redis down: %d", rec.Code)
	}
	// Shutting down: not ready.
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if rec := serve(h.srv, "/readyz"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz after Close: %d", rec.Code)
	}
}

func TestPanicIsRecovered(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.Asynqmon = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })
	}})
	r := h.api(http.MethodGet, "/admin/asynqmon/", nil)
	if r.status != http.StatusInternalServerError {
		t.Errorf("status %d", r.status)
	}
	if h.logs.FilterMessage("control: panic while serving a request").Len() != 1 {
		t.Error("panic not logged")
	}
}

// POST /api/v1/connections/{id}/reconcile enqueues a pass of an active
// connection (Reconciler), and refuses the others.
func TestAPIReconcile(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.seed("c1", "")
	post := func(id string) response { return h.api(http.MethodPost, "/api/v1/connections/"+id+"/reconcile", nil) }
	if r := post("c1"); r.status != http.StatusAccepted {
		t.Fatalf("reconcile: %d %s", r.status, r.body)
	}
	h.enq.mu.Lock()
	got := append([]string(nil), h.enq.recons...)
	h.enq.mu.Unlock()
	if len(got) != 1 || got[0] != "c1" {
		t.Errorf("reconciliations enqueued %v, want [c1]", got)
	}
	h.enq.setErr(errTest)
	if r := post("c1"); r.status != http.StatusServiceUnavailable {
		t.Errorf("enqueue failure: %d %s", r.status, r.body)
	}
	h.enq.setErr(nil)
	if r := post("nope"); r.status != http.StatusNotFound {
		t.Errorf("unknown connection: %d %s", r.status, r.body)
	}
	if r := h.api(http.MethodPost, "/api/v1/connections/c1/pause", nil); r.status != http.StatusOK {
		t.Fatalf("pause: %d", r.status)
	}
	if r := post("c1"); r.status != http.StatusConflict {
		t.Errorf("paused connection: %d %s, want 409", r.status, r.body)
	}
}

// With SyncInfos set, the list reads a page's sync fields in one call (one
// pipelined Redis round trip in the app) instead of one SyncInfo call per
// connection: a page of 1,000 connections took longer than a client's 15 s
// timeout on a loaded host after a Redis failover. A nil entry omits that
// connection's field; an error omits the page's.
func TestAPIListReadsSyncInfoOncePerPage(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var batches [][]string
	perConn := 0
	failing := false
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.SyncInfo = func(context.Context, string) (any, error) {
			mu.Lock()
			defer mu.Unlock()
			perConn++
			return map[string]string{"from": "one"}, nil
		}
		c.SyncInfos = func(_ context.Context, ids []string) ([]any, error) {
			mu.Lock()
			defer mu.Unlock()
			if failing {
				return nil, errTest
			}
			batches = append(batches, slices.Clone(ids))
			out := make([]any, len(ids))
			for i, id := range ids {
				if id != "c2" {
					out[i] = map[string]string{"from": "batch", "id": id}
				}
			}
			return out, nil
		}
	}})
	for _, id := range []string{"c1", "c2", "c3"} {
		h.seed(id, "")
		h.clock.Advance(time.Millisecond)
	}
	resp := h.api(http.MethodGet, "/api/v1/connections?limit=3", nil)
	if resp.status != http.StatusOK {
		t.Fatalf("list: %d %s", resp.status, resp.body)
	}
	l := decode[ConnectionList](t, resp)
	if len(l.Connections) != 3 {
		t.Fatalf("listed %+v", l.Connections)
	}
	mu.Lock()
	if perConn != 0 || len(batches) != 1 || !slices.Equal(batches[0], []string{"c1", "c2", "c3"}) {
		t.Errorf("SyncInfo called %d times, SyncInfos with %v; want one SyncInfos call for the page", perConn, batches)
	}
	mu.Unlock()
	for _, v := range l.Connections {
		m, _ := v.Sync.(map[string]any)
		if v.ID == "c2" {
			if v.Sync != nil {
				t.Errorf("c2: sync %v, want none (nil entry)", v.Sync)
			}
			continue
		}
		if m["from"] != "batch" || m["id"] != v.ID {
			t.Errorf("%s: sync %v", v.ID, v.Sync)
		}
	}
	// One connection's view still asks SyncInfo.
	if g := decode[ConnectionView](t, h.api(http.MethodGet, "/api/v1/connections/c1", nil)); g.Sync == nil {
		t.Error("get: no sync field")
	}
	mu.Lock()
	failing = true
	mu.Unlock()
	resp = h.api(http.MethodGet, "/api/v1/connections?limit=3", nil)
	if resp.status != http.StatusOK {
		t.Fatalf("list with failing sync info: %d %s", resp.status, resp.body)
	}
	for _, v := range decode[ConnectionList](t, resp).Connections {
		if v.Sync != nil {
			t.Errorf("%s: sync %v after a failed SyncInfos", v.ID, v.Sync)
		}
	}
}
