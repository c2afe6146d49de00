package control

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/tokens"
)

// testConsoleSync is internal/app's adapter of jobs.StateReader (control
// does not import jobs; its tests may).
func testConsoleSync(rdb redis.UniversalClient, prefix string) ConsoleSync {
	states := jobs.NewStateReader(rdb, prefix)
	return ConsoleSync{
		States: func(ctx context.Context, ids []string) ([]SyncSummary, error) {
			sts, err := states.States(ctx, ids)
			if err != nil {
				return nil, err
			}
			out := make([]SyncSummary, len(sts))
			for i, st := range sts {
				out[i] = SyncSummary{Cursor: st.Cursor, LastSync: st.LastSync, LastSweep: st.LastSweep,
					PagesSynced: st.PagesSynced, Pending: st.Pending}
				for id, msg := range st.Errors {
					d := st.ErrorDetails[id]
					out[i].Errors = append(out[i].Errors, ObjectErrorInfo{ObjectID: id, Message: msg, Kind: string(d.Kind), Since: d.Since})
				}
			}
			return out, nil
		},
		ErroredPage: states.ErroredPage,
		RunningTasks: func(ctx context.Context, id string) ([]TaskRef, error) {
			refs, err := states.RunningTasks(ctx, id)
			out := make([]TaskRef, len(refs))
			for i, r := range refs {
				out[i] = TaskRef{Kind: r.Kind, ID: r.ID, Queue: r.Queue, State: r.State}
			}
			return out, err
		},
	}
}

func newConsoleHarness(t *testing.T) *harness {
	t.Helper()
	return newHarness(t, harnessOptions{config: func(c *Config) {
		c.Console = testConsoleSync(c.Redis, c.KeyPrefix)
		c.Asynqmon = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeText(w, 200, "asynqmon\n") })
	}})
}

// addConn stores a connection named name (a workspace name) without a
// Notion grant behind it.
func (h *harness) addConn(id, name string) {
	h.t.Helper()
	meta := map[string]string{MetaWorkspaceID: "ws-" + id}
	if name != "" {
		meta[MetaWorkspaceName] = name
	}
	if _, err := h.store.Connect(context.Background(), id, &tokens.Grant{AccessToken: "at-" + id, RefreshToken: "rt-" + id},
		timing, tokens.ConnectOptions{Meta: meta}); err != nil {
		h.t.Fatal(err)
	}
}

// addObjectError records a per-object error the way package jobs stores
// it (its errored index first, then the errors hash).
func (h *harness) addObjectError(conn, object, kind, msg string) {
	h.t.Helper()
	ctx := context.Background()
	// The field order is jobs' storedError's: since first.
	v, _ := json.Marshal(struct {
		Since int64  `json:"since"`
		Kind  string `json:"kind"`
		Msg   string `json:"msg"`
	}{h.clock.Now().UnixMilli(), kind, msg})
	if err := h.rdb.ZAdd(ctx, jobs.ErroredKey(h.prefix, conn), redis.Z{Member: conn}).Err(); err != nil {
		h.t.Fatal(err)
	}
	if err := h.rdb.HSet(ctx, jobs.SyncKey(h.prefix, conn)+":errors", object, v).Err(); err != nil {
		h.t.Fatal(err)
	}
}

// admin requests path as a browser with HTTP Basic credentials would.
func (h *harness) admin(method, path string, form url.Values, header http.Header) response {
	h.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, h.ts.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	req.SetBasicAuth("operator", testAdminToken)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return h.do(c, req)
}

var rowRE = regexp.MustCompile(`<tr data-id="([^"]+)">`)
var nextRE = regexp.MustCompile(`<a href="([^"]+)" id="next">`)

// listAll follows the list's "next" links from path and returns every row
// id in order and the number of views.
func (h *harness) listAll(path string) ([]string, int) {
	h.t.Helper()
	var ids []string
	for views := 1; views < 1000; views++ {
		r := h.admin("GET", path, nil, nil)
		if r.status != http.StatusOK {
			h.t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		for _, m := range rowRE.FindAllStringSubmatch(r.body, -1) {
			ids = append(ids, m[1])
		}
		m := nextRE.FindStringSubmatch(r.body)
		if m == nil {
			return ids, views
		}
		path = strings.ReplaceAll(m[1], "&amp;", "&")
	}
	h.t.Fatal("the list never ended")
	return nil, 0
}

func TestRoundDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 89 * time.Second: "1m29s", 45*time.Minute + 10*time.Second: "45m10s", 45 * time.Minute: "45m",
		90 * time.Minute: "1h30m", 2 * time.Hour: "2h", 50 * time.Hour: "2d",
	} {
		if got := roundDuration(d); got != want {
			t.Errorf("roundDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestConsoleAuth(t *testing.T) {
	t.Parallel()
	h := newConsoleHarness(t)
	h.addConn("c1", "Acme")
	for _, path := range []string{"/admin/", "/admin/connections", "/admin/connections/c1", "/admin/static/console.css"} {
		r := h.apiAs("", "GET", path, nil)
		if r.status != http.StatusUnauthorized || !strings.Contains(strings.Join(r.header.Values("WWW-Authenticate"), ","), "Basic") {
			t.Errorf("GET %s without credential: %d %v, want 401 asking for Basic", path, r.status, r.header.Values("WWW-Authenticate"))
		}
		if strings.Contains(r.body, "Acme") {
			t.Errorf("GET %s without credential shows the workspace", path)
		}
	}
	req, _ := http.NewRequest("GET", h.ts.URL+"/admin/connections", nil)
	req.SetBasicAuth("operator", "wrong-token-0123456789")
	if r := h.do(h.browser().c, req); r.status != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", r.status)
	}
	// An unauthenticated action changes nothing.
	req, _ = http.NewRequest("POST", h.ts.URL+"/admin/connections/c1/pause", strings.NewReader("csrf="+h.srv.csrfToken("c1")))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := h.do(h.browser().c, req); r.status != http.StatusUnauthorized {
		t.Errorf("action without credential: %d, want 401", r.status)
	}
	if c := h.conn("c1"); c.Status != tokens.StatusActive {
		t.Fatalf("an unauthenticated POST paused the connection")
	}

	r := h.admin("GET", "/admin/", nil, nil)
	if r.status != http.StatusFound || r.header.Get("Location") != "/admin/connections" {
		t.Fatalf("/admin/: %d %q", r.status, r.header.Get("Location"))
	}
	r = h.admin("GET", "/admin/connections", nil, nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, "Acme") {
		t.Fatalf("list: %d %.300s", r.status, r.body)
	}
	csp := r.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || r.header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("CSP %q, X-Frame-Options %q", csp, r.header.Get("X-Frame-Options"))
	}
	if strings.Contains(r.body, "<script>") || strings.Contains(r.body, " style=") {
		t.Fatal("the page has inline script or style, which the CSP refuses")
	}
	if !strings.Contains(r.body, `href="/admin/asynqmon/"`) {
		t.Fatal("the header does not link to asynqmon")
	}
	if r := h.admin("GET", "/admin/static/console.js", nil, nil); r.status != http.StatusOK || !strings.Contains(r.body, "data-copy") {
		t.Fatalf("console.js: %d", r.status)
	}
}

// A mutating action needs the form's CSRF token: missing, forged or
// another connection's token is refused with 403 and changes nothing;
// so is a cross-site POST even with the right token.
func TestConsoleCSRF(t *testing.T) {
	t.Parallel()
	h := newConsoleHarness(t)
	h.addConn("c1", "Acme")
	h.addConn("c2", "Other")
	page := h.admin("GET", "/admin/connections/c1", nil, nil)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no CSRF token in the page: %.500s", page.body)
	}
	token := m[1]
	for name, form := range map[string]url.Values{
		"missing":              {},
		"empty":                {"csrf": {""}},
		"forged":               {"csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		"not base64":           {"csrf": {"%%%"}},
		"another connection's": {"csrf": {h.srv.csrfToken("c2")}},
	} {
		for _, action := range []string{"pause", "sync", "disconnect", "refresh", "reconnect-link"} {
			r := h.admin("POST", "/admin/connections/c1/"+action, form, nil)
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "CSRF") {
				t.Errorf("%s token, %s: %d, want 403", name, action, r.status)
			}
		}
	}
	r := h.admin("POST", "/admin/connections/c1/pause", url.Values{"csrf": {token}},
		http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}})
	if r.status != http.StatusForbidden {
		t.Errorf("cross-site POST with a valid token: %d, want 403", r.status)
	}
	if c := h.conn("c1"); c.Status != tokens.StatusActive || c.Version != 1 {
		t.Fatalf("a refused action changed the connection: %s v%d", c.Status, c.Version)
	}
	if h.enq.total() != 0 {
		t.Fatal("a refused action enqueued work")
	}

	// The page's own token works, and the redirect shows the result read back.
	r = h.admin("POST", "/admin/connections/c1/pause", url.Values{"csrf": {token}}, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("pause: %d %s", r.status, r.body)
	}
	if c := h.conn("c1"); c.Status != tokens.StatusPaused {
		t.Fatalf("after pause: %s", c.Status)
	}
	r = h.admin("GET", r.header.Get("Location"), nil, nil)
	if !strings.Contains(r.body, "Paused. The connection is now paused.") {
		t.Fatalf("flash after pause: %.2000s", r.body)
	}
}

// Hostile workspace names, ids in meta and error messages render as text.
func TestConsoleEscapesHostileText(t *testing.T) {
	t.Parallel()
	h := newConsoleHarness(t)
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>"'`
	h.addConn("c1", evil)
	h.addObjectError("c1", "obj-1", "permanent", evil)
	if err := h.store.MarkNeedsReauth(context.Background(), "c1", evil); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/admin/connections", "/admin/connections/c1", "/admin/connections?q=" + url.QueryEscape(evil)} {
		r := h.admin("GET", path, nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d", path, r.status)
		}
		if strings.Contains(r.body, "<script>alert") || strings.Contains(r.body, "<img src=x") {
			t.Fatalf("%s renders the hostile name as markup", path)
		}
		if !strings.Contains(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Fatalf("%s does not show the name as text: %.3000s", path, r.body)
		}
	}
}

// Filters return exactly the matching connections, and paging returns each
// once, for every filter; a workspace search over many connections stops
// at the scan budget and continues from where it stopped.
func TestConsoleFiltersAndPagination(t *testing.T) {
	t.Parallel()
	h := newConsoleHarness(t)
	ctx := context.Background()
	want := map[string][]string{}
	var all []string
	for i := range 130 {
		id := fmt.Sprintf("c%03d", i)
		name := fmt.Sprintf("Team %d", i)
		if i%10 == 7 {
			name = fmt.Sprintf("Zebra %d", i)
		}
		h.clock.Advance(time.Millisecond)
		h.addConn(id, name)
		all = append(all, id)
		switch {
		case i%5 == 1:
			if err := h.store.Pause(ctx, id); err != nil {
				t.Fatal(err)
			}
			want["status=paused"] = append(want["status=paused"], id)
		case i%5 == 2:
			if err := h.store.MarkNeedsReauth(ctx, id, "test"); err != nil {
				t.Fatal(err)
			}
			want["status=needs_reauth"] = append(want["status=needs_reauth"], id)
			want["reason=operator"] = append(want["reason=operator"], id)
		case i%5 == 3:
			if err := h.store.Disconnect(ctx, id); err != nil {
				t.Fatal(err)
			}
			want["status=disconnected"] = append(want["status=disconnected"], id)
		default:
			want["status=active"] = append(want["status=active"], id)
		}
		if i%10 == 7 {
			want["q=zebra"] = append(want["q=zebra"], id)
		}
		if i%4 == 0 {
			h.addObjectError(id, "db-1", "permanent", "denied")
			want["errors=1"] = append(want["errors=1"], id)
			if i%5 == 1 {
				want["errors=1&status=paused"] = append(want["errors=1&status=paused"], id)
			}
		}
	}
	// An errored connection whose errors cleared is not listed.
	h.addObjectError("c001", "x", "transient", "gone")
	if err := h.rdb.Del(ctx, jobs.SyncKey(h.prefix, "c001")+":errors").Err(); err != nil {
		t.Fatal(err)
	}
	want[""] = all
	want["reason=revoked"] = nil

	for query, ids := range want {
		got, views := h.listAll("/admin/connections?" + query)
		if !slices.Equal(got, ids) {
			t.Errorf("?%s: %d rows %v\nwant %d %v", query, len(got), got, len(ids), ids)
		}
		if minViews := (len(ids) + consolePageSize - 1) / consolePageSize; views < max(1, minViews) {
			t.Errorf("?%s: %d views for %d rows", query, views, len(ids))
		}
	}

	// The row shows status, errors, pages and the token version.
	r := h.admin("GET", "/admin/connections?status=needs_reauth", nil, nil)
	if !strings.Contains(r.body, `data-status="needs_reauth"`) || !strings.Contains(r.body, `<span class="reason">operator</span>`) {
		t.Fatalf("needs_reauth row: %.3000s", r.body)
	}
	for _, bad := range []string{"status=nope", "reason=nope", "status=active&reason=revoked", "after=garbage", "q=" + strings.Repeat("x", 101)} {
		if r := h.admin("GET", "/admin/connections?"+bad, nil, nil); r.status != http.StatusBadRequest || !strings.Contains(r.body, `id="error"`) {
			t.Errorf("?%s: %d, want 400 with a message", bad, r.status)
		}
	}
}

// The scan budget bounds a search view; "Scan further" continues.
func TestConsoleSearchScanBudget(t *testing.T) {
	t.Parallel()
	h := newConsoleHarness(t)
	n := consoleScanBudget + consoleBatch + 10
	pipe := []string{}
	for i := range n {
		id := fmt.Sprintf("s%05d", i)
		name := "Plain"
		if i == n-1 {
			name = "Needle"
		}
		h.addConn(id, name)
		pipe = append(pipe, id)
	}
	r := h.admin("GET", "/admin/connections?q=needle", nil, nil)
	if !strings.Contains(r.body, `id="partial"`) || len(rowRE.FindAllString(r.body, -1)) != 0 {
		t.Fatalf("first view of a search past the budget: %.3000s", r.body)
	}
	got, views := h.listAll("/admin/connections?q=needle")
	if !slices.Equal(got, []string{pipe[n-1]}) || views != 2 {
		t.Fatalf("search: %v in %d views, want the needle in 2", got, views)
	}
}

// Each action does what it says, and the page after it shows the result
// read back from the store.
func TestConsoleActions(t *testing.T) {
	t.Parallel()
	h := newConsoleHarness(t)
	h.seed("live", "ws-live")
	tok := h.srv.csrfToken("live")
	act := func(action string) string {
		t.Helper()
		r := h.admin("POST", "/admin/connections/live/"+action, url.Values{"csrf": {tok}}, nil)
		if r.status == http.StatusOK { // reconnect-link answers in place
			return r.body
		}
		if r.status != http.StatusSeeOther {
			t.Fatalf("%s: %d %s", action, r.status, r.body)
		}
		return h.admin("GET", r.header.Get("Location"), nil, nil).body
	}
	flashRE := regexp.MustCompile(`id="flash" role="status">([^<]*)<`)
	flashOf := func(body string) string {
		m := flashRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no flash in %.2000s", body)
		}
		return m[1]
	}
	if f := flashOf(act("sync")); !strings.HasPrefix(f, "Sync enqueued") || h.enq.syncCount("live") != 1 {
		t.Fatalf("sync: %q, %d enqueued", f, h.enq.syncCount("live"))
	}
	if f := flashOf(act("refresh")); f != "Refreshed: the token is at version 2. The connection is now active." || h.conn("live").Version != 2 {
		t.Fatalf("refresh: %q v%d", f, h.conn("live").Version)
	}
	if f := flashOf(act("resume")); !strings.HasPrefix(f, "Not done: resume is not possible while the connection is active") {
		t.Fatalf("resume of an active connection: %q", f)
	}
	body := act("reconnect-link")
	if !strings.Contains(body, `id="link"`) || !strings.Contains(body, "sig=") {
		t.Fatalf("reconnect link not shown: %.2000s", body)
	}
	if f := flashOf(act("disconnect")); !strings.HasPrefix(f, "Disconnected; the grant was revoked") || h.conn("live").Status != tokens.StatusDisconnected {
		t.Fatalf("disconnect: %q %s", f, h.conn("live").Status)
	}
	if f := flashOf(act("sync")); !strings.HasPrefix(f, "Not done: sync is not possible while the connection is disconnected") || h.enq.syncCount("live") != 1 {
		t.Fatalf("sync of a disconnected connection: %q", f)
	}
	// The timeline shows what happened.
	page := h.admin("GET", "/admin/connections/live", nil, nil).body
	for _, ev := range []string{"connected", "refreshed", "disconnected"} {
		if !strings.Contains(page, "<td>"+ev+"</td>") {
			t.Errorf("timeline lacks %s", ev)
		}
	}
	if r := h.admin("POST", "/admin/connections/nope/pause", url.Values{"csrf": {h.srv.csrfToken("nope")}}, nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown connection: %d", r.status)
	}
	if r := h.admin("POST", "/admin/connections/live/explode", url.Values{"csrf": {tok}}, nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown action: %d", r.status)
	}
}
