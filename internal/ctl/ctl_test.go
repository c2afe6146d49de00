package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/control"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/tokens"
)

// seedThree makes c1 (active, synced 5m ago, 3 pending), c2 (needs_reauth,
// no sync info) and c3 (paused, never synced).
func seedThree(t *testing.T, w *world) {
	t.Helper()
	w.seed("c1")
	w.seed("c2")
	w.seed("c3")
	if err := w.store.MarkNeedsReauth(context.Background(), "c2", "revoked in a test"); err != nil {
		t.Fatal(err)
	}
	if err := w.store.Pause(context.Background(), "c3"); err != nil {
		t.Fatal(err)
	}
	w.setSync("c1", jobs.SyncState{LastSync: w.start.Add(-5 * time.Minute), LastSweep: w.start.Add(-6 * time.Minute),
		Cursor: w.start.Add(-time.Hour), Pending: 3, PagesSynced: 42, Errors: map[string]string{"db-1": "multiple data sources"},
		ErrorDetails: map[string]jobs.ObjectError{"db-1": {Kind: jobs.ErrorPermanent, Since: w.start.Add(-10 * time.Minute)}}})
	w.setSync("c3", jobs.SyncState{})
}

func TestListTable(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	seedThree(t, w)

	r := w.run(opts{}, "list")
	r.expect(t, ExitOK)
	want := "" +
		"ID  STATUS        REASON    ACCESS EXPIRES  LAST SYNC  PENDING  ERRORS  FAILURES\n" +
		"c1  active        -         in 1h           5m ago     3        1       0\n" +
		"c2  needs_reauth  operator  -               -          -        -       0\n" +
		"c3  paused        -         in 1h           never      0        0       0\n"
	if r.stdout != want {
		t.Errorf("list:\n%s\nwant:\n%s", r.stdout, want)
	}

	r = w.run(opts{}, "list", "-status", "paused")
	r.expect(t, ExitOK)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "c3 ") {
		t.Errorf("list -status paused:\n%s", r.stdout)
	}
	r = w.run(opts{}, "list", "-limit", "2")
	r.expect(t, ExitOK)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[2], "c2 ") {
		t.Errorf("list -limit 2:\n%s", r.stdout)
	}
	r = w.run(opts{}, "list", "-status", "disconnected")
	r.expect(t, ExitOK, "no connections with status disconnected")
	if r.stdout != "" {
		t.Errorf("empty list printed %q", r.stdout)
	}
}

func TestListPagesThroughEverything(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const n = listPageSize + 3 // two pages
	var ids []string
	for i := range n {
		id := fmt.Sprintf("conn-%04d", i)
		if _, err := w.store.Connect(context.Background(), id, &tokens.Grant{AccessToken: "a" + id, RefreshToken: "r" + id},
			timing, tokens.ConnectOptions{}); err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(time.Millisecond)
		ids = append(ids, id)
	}
	r := w.run(opts{}, "list", "-output", "json")
	r.expect(t, ExitOK)
	var l control.ConnectionList
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Connections) != n || l.Connections[0].ID != ids[0] || l.Connections[n-1].ID != ids[n-1] {
		t.Errorf("listed %d connections, want %d in order", len(l.Connections), n)
	}
	r = w.run(opts{}, "list", "-limit", "501", "-output", "json")
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || len(l.Connections) != 501 {
		t.Errorf("-limit 501: %d connections (%v)", len(l.Connections), err)
	}
}

func TestListJSON(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	seedThree(t, w)
	// Global flags are accepted after the command too.
	r := w.run(opts{}, "list", "-output", "json")
	r.expect(t, ExitOK)
	var l struct {
		Connections []struct {
			control.ConnectionView
			Sync map[string]any `json:"sync"`
		} `json:"connections"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if len(l.Connections) != 3 || l.Connections[1].Status != tokens.StatusNeedsReauth || l.Connections[0].Sync["pending"] != 3.0 {
		t.Errorf("json list: %s", r.stdout)
	}
	// An empty list is an empty array, not null.
	w2 := newWorld(t)
	r = w2.run(opts{}, "-output", "json", "list")
	r.expect(t, ExitOK)
	if strings.Join(strings.Fields(r.stdout), "") != `{"connections":[]}` {
		t.Errorf("empty json list: %s", r.stdout)
	}
}

func TestShow(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	seedThree(t, w)
	r := w.run(opts{}, "show", "c1")
	r.expect(t, ExitOK)
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("not a key: value line: %q", l)
		}
		lines[k] = strings.TrimSpace(v)
	}
	exp := w.start.Add(time.Hour).UTC().Format(time.RFC3339)
	for k, want := range map[string]string{
		"id":                            "c1",
		"status":                        "active",
		"version":                       "1",
		"access_expires":                exp + " (in 1h)",
		"failures":                      "0",
		"refresh_token":                 "stored",
		"key_id":                        "k1",
		"meta.workspace_name":           "Acme",
		"sync.last_sync":                w.start.Add(-5*time.Minute).Format(time.RFC3339) + " (5m ago)",
		"sync.pending":                  "3",
		"sync.pages_synced":             "42",
		"sync.cursor":                   w.start.Add(-time.Hour).Format(time.RFC3339) + " (1h ago)",
		"sync.target":                   "never",
		"sync.errors.db-1":              "multiple data sources",
		"sync.error_details.db-1.kind":  "permanent",
		"sync.error_details.db-1.since": w.start.Add(-10*time.Minute).Format(time.RFC3339) + " (10m ago)",
	} {
		if lines[k] != want {
			t.Errorf("show %s = %q, want %q", k, lines[k], want)
		}
	}
	for _, k := range []string{"refresh_due", "created", "updated", "meta.workspace_id"} {
		if lines[k] == "" {
			t.Errorf("show has no %s:\n%s", k, r.stdout)
		}
	}
	if _, ok := lines["reason"]; ok {
		t.Errorf("an active connection shows a reason:\n%s", r.stdout)
	}

	r = w.run(opts{}, "show", "c2")
	r.expect(t, ExitOK)
	for _, s := range []string{"status:", "needs_reauth", "reason:", "operator", "detail:", "revoked in a test",
		"reconnect_url:", w.url + "/oauth/start?connection_id=c2"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("show c2 lacks %q:\n%s", s, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "sync.") {
		t.Errorf("show c2 has sync lines without sync info:\n%s", r.stdout)
	}

	r = w.run(opts{}, "show", "c1", "-output", "json")
	r.expect(t, ExitOK)
	var v control.ConnectionView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.ID != "c1" || v.Meta[control.MetaWorkspaceName] != "Acme" {
		t.Errorf("show -output json: %v %s", err, r.stdout)
	}

	r = w.run(opts{}, "show", "nope")
	r.expect(t, ExitFailure, `no connection "nope"`, "404")
}

func TestShowQuotesControlCharacters(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.fake.SeedConnection("")
	w.addSecrets(p.AccessToken, p.RefreshToken)
	_, err := w.store.Connect(context.Background(), "evil", &tokens.Grant{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken},
		timing, tokens.ConnectOptions{Meta: map[string]string{control.MetaWorkspaceName: "Acme\x1b[2J\nstatus: active"}})
	if err != nil {
		t.Fatal(err)
	}
	r := w.run(opts{}, "show", "evil")
	r.expect(t, ExitOK)
	if strings.Contains(r.stdout, "\x1b") || len(regexp.MustCompile(`(?m)^status:`).FindAllString(r.stdout, -1)) != 1 {
		t.Errorf("a control character reached the terminal:\n%q", r.stdout)
	}
	if !strings.Contains(r.stdout, `meta.workspace_name: "Acme\x1b[2J\nstatus: active"`) {
		t.Errorf("the workspace name is not quoted:\n%s", r.stdout)
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.seed("c1")
	w.clock.Advance(time.Minute)
	w.run(opts{}, "pause", "c1").expect(t, ExitOK)
	w.clock.Advance(time.Minute)
	if err := w.store.MarkNeedsReauth(context.Background(), "c1", "user removed\tthe integration"); err != nil {
		t.Fatal(err)
	}

	r := w.run(opts{}, "events", "c1")
	r.expect(t, ExitOK)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("events:\n%s", r.stdout)
	}
	if !regexp.MustCompile(`^TIME +KIND +VERSION +DETAIL$`).MatchString(lines[0]) {
		t.Errorf("header %q", lines[0])
	}
	ts := func(d time.Duration) string { return w.start.Add(d).UTC().Format(time.RFC3339) }
	for i, want := range []string{
		`^` + ts(2*time.Minute+time.Millisecond) + ` +needs_reauth +1 +.*user removed\\tthe integration`,
		`^` + ts(time.Minute+time.Millisecond) + ` +paused +1 +-$`,
		`^` + ts(0) + ` +connected +1 +-$`,
	} {
		if !regexp.MustCompile(want).MatchString(lines[i+1]) {
			t.Errorf("event row %d: %q does not match %q", i, lines[i+1], want)
		}
	}

	r = w.run(opts{}, "events", "c1", "-output", "json")
	r.expect(t, ExitOK)
	var body struct {
		ConnectionID string         `json:"connection_id"`
		Events       []tokens.Event `json:"events"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &body); err != nil || body.ConnectionID != "c1" || len(body.Events) != 3 {
		t.Errorf("events json: %v %s", err, r.stdout)
	}
	w.run(opts{}, "events", "nope").expect(t, ExitFailure, `no connection "nope"`)
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.seed("c1")

	r := w.run(opts{}, "pause", "c1")
	r.expect(t, ExitOK)
	if r.stdout != "c1: paused (status paused)\n" {
		t.Errorf("pause printed %q", r.stdout)
	}
	if st := w.conn("c1").Status; st != tokens.StatusPaused {
		t.Errorf("status %s after pause", st)
	}
	// Pausing a paused connection is a no-op for scripts: exit 0, a note
	// on stderr, the connection on stdout as for a pause.
	r = w.run(opts{}, "pause", "c1")
	r.expect(t, ExitOK, "c1: already paused; nothing to do")
	if r.stdout != "c1: paused (status paused)\n" {
		t.Errorf("second pause printed %q", r.stdout)
	}
	r = w.run(opts{}, "pause", "c1", "-output", "json")
	r.expect(t, ExitOK, "already paused")
	if !strings.Contains(r.stdout, `"status": "paused"`) {
		t.Errorf("second pause -output json printed %q", r.stdout)
	}
	w.run(opts{}, "sync", "c1").expect(t, ExitFailure, "sync needs it to be active")

	r = w.run(opts{}, "resume", "c1")
	r.expect(t, ExitOK)
	if r.stdout != "c1: resumed (status active)\n" {
		t.Errorf("resume printed %q", r.stdout)
	}
	if st := w.conn("c1").Status; st != tokens.StatusActive {
		t.Errorf("status %s after resume", st)
	}
	w.run(opts{}, "resume", "c1").expect(t, ExitOK, "c1: already active; nothing to do")
	w.run(opts{}, "pause", "nope").expect(t, ExitFailure, `no connection "nope"`)
	// Any other status is still refused with the server's message, exit 1.
	w.seed("c2")
	if err := w.store.MarkNeedsReauth(context.Background(), "c2", "revoked in a test"); err != nil {
		t.Fatal(err)
	}
	w.run(opts{}, "pause", "c2").expect(t, ExitFailure, `connection "c2" is needs_reauth; pause needs it to be active`, "409", "wrong_status")
	w.run(opts{}, "resume", "c2").expect(t, ExitFailure, "resume needs it to be paused")
}

func TestSyncAndRefresh(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.seed("c1")

	r := w.run(opts{}, "sync", "c1")
	r.expect(t, ExitOK)
	if r.stdout != "c1: sync enqueued\n" {
		t.Errorf("sync printed %q", r.stdout)
	}
	r = w.run(opts{}, "refresh", "c1")
	r.expect(t, ExitOK)
	if r.stdout != "c1: refresh enqueued (a worker refreshes the token even if not due; -wait to see the result)\n" {
		t.Errorf("refresh printed %q", r.stdout)
	}
	syncs, refreshes := w.enq.got()
	if strings.Join(syncs, ",") != "c1" || strings.Join(refreshes, ",") != "c1" {
		t.Errorf("enqueued syncs %v, refreshes %v", syncs, refreshes)
	}

	// -wait refreshes at the fake now: the token version moves.
	r = w.run(opts{}, "refresh", "-wait", "c1")
	r.expect(t, ExitOK)
	if r.stdout != "c1: refreshed (token version 2; access token expires in 1h)\n" {
		t.Errorf("refresh -wait printed %q", r.stdout)
	}
	if c := w.conn("c1"); c.Version != 2 {
		t.Errorf("version %d after refresh -wait", c.Version)
	}
	if np, ok := w.fake.CurrentPair(p.WorkspaceID); !ok || np.RefreshToken == p.RefreshToken {
		t.Error("the fake did not rotate the pair")
	} else {
		w.addSecrets(np.AccessToken, np.RefreshToken)
	}
	if _, refreshes := w.enq.got(); len(refreshes) != 1 {
		t.Errorf("refresh -wait enqueued a refresh: %v", refreshes)
	}
	r = w.run(opts{}, "refresh", "c1", "-wait", "-output", "json")
	r.expect(t, ExitOK)
	var v control.ConnectionView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Version != 3 {
		t.Errorf("refresh -wait json: %v %s", err, r.stdout)
	}
}

func TestImportFromStdin(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.fake.SeedConnection("")
	w.addSecrets(p.AccessToken, p.RefreshToken)
	pair := `{"access_token": "` + p.AccessToken + `", "refresh_token": "` + p.RefreshToken +
		`", "expires_in": 1800, "workspace_id": "` + p.WorkspaceID + `", "token_type": "bearer"}`

	r := w.run(opts{stdin: pair}, "import", "-id", "imported", "-meta", "team=growth")
	r.expect(t, ExitOK)
	if r.stdout != "imported: imported (status active; access token expires in 30m)\n" {
		t.Errorf("import printed %q", r.stdout)
	}
	c := w.conn("imported")
	if c.Status != tokens.StatusActive || c.Meta[control.MetaWorkspaceID] != p.WorkspaceID || c.Meta["team"] != "growth" {
		t.Errorf("imported connection %+v", c)
	}
	if syncs, _ := w.enq.got(); strings.Join(syncs, ",") != "imported" {
		t.Errorf("first sync not enqueued: %v", syncs)
	}

	// The imported connection lists as active.
	r = w.run(opts{}, "list")
	r.expect(t, ExitOK)
	if !regexp.MustCompile(`(?m)^imported +active +- +in 30m `).MatchString(r.stdout) {
		t.Errorf("list after import:\n%s", r.stdout)
	}

	// The pair works: the server can refresh with it.
	w.run(opts{}, "refresh", "-wait", "imported").expect(t, ExitOK)
	if np, ok := w.fake.CurrentPair(p.WorkspaceID); ok {
		w.addSecrets(np.AccessToken, np.RefreshToken)
	}

	// Importing over a live connection needs -replace.
	q := w.fake.SeedConnection("")
	w.addSecrets(q.AccessToken, q.RefreshToken)
	pair2 := `{"access_token":"` + q.AccessToken + `","refresh_token":"` + q.RefreshToken + `"}`
	w.run(opts{stdin: pair2}, "import", "-id", "imported").expect(t, ExitFailure, "replace=1", "409")
	r = w.run(opts{stdin: pair2}, "import", "-id", "imported", "-replace", "-output", "json")
	r.expect(t, ExitOK)
	var v control.ConnectionView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.ID != "imported" || v.Status != tokens.StatusActive {
		t.Errorf("import -output json: %v %s", err, r.stdout)
	}
}

func TestImportFromFile(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.fake.SeedConnection("")
	w.addSecrets(p.AccessToken, p.RefreshToken)
	path := filepath.Join(t.TempDir(), "pair.json")
	if err := os.WriteFile(path, []byte(`{"access_token":"`+p.AccessToken+`","refresh_token":"`+p.RefreshToken+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := w.run(opts{stdin: "not read"}, "import", "-id", "fromfile", "-file", path)
	r.expect(t, ExitOK)
	if !strings.Contains(r.stdout, "fromfile: imported (status active; access token expires in 1h)") {
		t.Errorf("import -file printed %q", r.stdout)
	}
	w.run(opts{}, "import", "-id", "x", "-file", filepath.Join(t.TempDir(), "missing.json")).
		expect(t, ExitUsage, "cannot read the token pair")
}

func TestImportRejectsBadPairsWithoutEchoingThem(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const secret = "secret_ntn_abcdefghijklmnop"
	w.addSecrets(secret)
	for name, tc := range map[string]struct {
		stdin string
		want  string
	}{
		"empty":            {"", "the input is empty"},
		"no refresh token": {`{"access_token":"` + secret + `"}`, "refresh_token is missing"},
		"no access token":  {`{"refresh_token":"` + secret + `"}`, "access_token is missing"},
		"null refresh":     {`{"access_token":"` + secret + `","refresh_token":null}`, "refresh_token is missing"},
		"syntax":           {`{"access_token":"` + secret + `",}`, "not valid JSON"},
		"not json":         {secret, "not valid JSON"},
		"wrong type":       {`{"access_token":["` + secret + `"],"refresh_token":"x"}`, `field "access_token" of the token pair has the wrong type`},
		"array":            {`["` + secret + `"]`, "must be a JSON object"},
		"two objects":      {`{"access_token":"a","refresh_token":"b"} {"x":"` + secret + `"}`, "one JSON object"},
		"bad expires_in":   {`{"access_token":"` + secret + `","refresh_token":"r","expires_in":-5}`, "expires_in must be"},
		"float expires_in": {`{"access_token":"` + secret + `","refresh_token":"r","expires_in":1.5}`, "expires_in must be"},
		"too large":        {`{"access_token":"` + strings.Repeat(secret, 3000) + `"}`, "larger than"},
	} {
		r := w.run(opts{stdin: tc.stdin}, "import", "-id", "x")
		if r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", name, r.code, r.stderr, ExitUsage, tc.want)
		}
	}
	// A pair the server refuses: its message is printed, not the pair.
	r := w.run(opts{stdin: `{"access_token":"has space ` + secret + `","refresh_token":"r"}`}, "import", "-id", "x")
	r.expect(t, ExitFailure, "tokens must not contain white space", "400")
	if _, err := w.store.Get(context.Background(), "x"); err == nil {
		t.Error("a refused import created the connection")
	}
}

func TestParseExpiresIn(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"": 0, "null": 0, "3600": 3600, `"3600"`: 3600, "3600.0": 3600, "0": 0} {
		got, err := parseExpiresIn(json.RawMessage(in))
		if err != nil || got != want {
			t.Errorf("parseExpiresIn(%s) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "1.5", `"abc"`, "true", "1e300", `{}`} {
		if _, err := parseExpiresIn(json.RawMessage(in)); err == nil {
			t.Errorf("parseExpiresIn(%s) accepted", in)
		}
	}
}

func TestDisconnect(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.seed("c1")

	// Not a terminal: -yes is required, and nothing happens without it.
	w.run(opts{stdin: "yes\n"}, "disconnect", "c1").expect(t, ExitUsage, "pass -yes")
	// A terminal, but the operator declines.
	r := w.run(opts{terminal: true, stdin: "n\n"}, "disconnect", "c1")
	r.expect(t, ExitFailure, `Disconnect c1 (active, workspace "Acme")?`, "aborted")
	w.run(opts{terminal: true, stdin: ""}, "disconnect", "c1").expect(t, ExitFailure, "aborted")
	if st := w.conn("c1").Status; st != tokens.StatusActive {
		t.Fatalf("status %s after a refused disconnect", st)
	}
	if _, err := w.fake.CheckAccessToken(p.AccessToken); err != nil {
		t.Fatalf("the grant was revoked after a refused disconnect: %v", err)
	}

	// The operator confirms on the terminal.
	r = w.run(opts{terminal: true, stdin: "yes\n"}, "disconnect", "c1")
	r.expect(t, ExitOK)
	if !strings.Contains(r.stdout, "c1: disconnected; the grant was revoked at Notion") ||
		!strings.Contains(r.stdout, "reconnect link: "+w.url+"/oauth/start?connection_id=c1") {
		t.Errorf("disconnect printed %q", r.stdout)
	}
	if st := w.conn("c1").Status; st != tokens.StatusDisconnected {
		t.Errorf("status %s after disconnect", st)
	}
	if _, err := w.fake.CheckAccessToken(p.AccessToken); err == nil {
		t.Error("the grant is still valid at Notion")
	}

	// -yes in a script.
	w.seed("c2")
	r = w.run(opts{}, "disconnect", "-yes", "c2")
	r.expect(t, ExitOK)
	if st := w.conn("c2").Status; st != tokens.StatusDisconnected {
		t.Errorf("status %s after disconnect -yes", st)
	}
	w.run(opts{terminal: true, stdin: "yes\n"}, "disconnect", "nope").expect(t, ExitFailure, `no connection "nope"`)
}

func TestAuthErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.seed("c1")
	r := w.run(opts{env: map[string]string{EnvServer: w.url, EnvToken: "wrong-token-0123456789"}}, "list")
	r.expect(t, ExitFailure, "admin token rejected by the control server at "+w.url, EnvToken)
	if r.stdout != "" {
		t.Errorf("stdout %q", r.stdout)
	}
	w.run(opts{env: map[string]string{EnvServer: w.url}}, "show", "c1").expect(t, ExitUsage, "no admin token", EnvToken)

	// -token works, with a warning about ps.
	r = w.run(opts{env: map[string]string{EnvServer: w.url}}, "-token", adminToken, "show", "c1")
	r.expect(t, ExitOK, "warning: -token is visible", EnvToken)
	r = w.run(opts{env: map[string]string{}}, "show", "c1", "-server", w.url, "-token", adminToken)
	r.expect(t, ExitOK, "warning: -token")
	if !strings.Contains(r.stdout, "id:") {
		t.Errorf("show with flags printed %q", r.stdout)
	}
}

func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	dead := deadURL(t)
	r := runCLI(t, opts{}, map[string]string{EnvServer: dead, EnvToken: adminToken}, time.Now(), "list")
	r.expect(t, ExitFailure, "cannot reach the control server at "+dead, "connection refused")
	if strings.Contains(r.stderr, adminToken) {
		t.Error("the token is in the message")
	}
}

func TestServerAnswersNotTheAPI(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/connections/redirect":
			http.Redirect(w, r, "https://elsewhere.example/api/v1/connections/redirect", http.StatusFound)
		case "/api/v1/connections/html":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>bad gateway</html>"))
		case "/api/v1/connections/busy":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"temporarily_unavailable","message":"connection \"busy\": temporary failure, retry later"}`))
		case "/api/v1/connections/slow":
			select {
			case <-r.Context().Done():
			case <-block:
			}
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"no_route","message":"no such endpoint or method"}`))
		}
	}))
	defer ts.Close()
	defer close(block)
	env := map[string]string{EnvServer: ts.URL, EnvToken: adminToken}
	run := func(args ...string) result { return runCLI(t, opts{}, env, time.Now(), args...) }

	run("show", "redirect").expect(t, ExitFailure, "redirected", "elsewhere.example")
	run("show", "html").expect(t, ExitFailure, "unexpected answer", "HTTP 502")
	run("show", "busy").expect(t, ExitFailure, "temporary failure", "retry after 7s")
	run("show", "other").expect(t, ExitFailure, "does not serve GET /api/v1/connections/other")
	run("-timeout", "200ms", "show", "slow").expect(t, ExitFailure, "no answer from the control server", "within 200ms")
}

func TestConnectURL(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	seedThree(t, w)

	// A new connection: no token needed, the link starts the OAuth flow.
	r := w.run(opts{env: map[string]string{EnvServer: w.url}}, "connect-url")
	r.expect(t, ExitOK)
	if r.stdout != w.url+"/oauth/start\n" {
		t.Errorf("connect-url printed %q", r.stdout)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	client.CloseIdleConnections()
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/v1/oauth/authorize?") {
		t.Errorf("the link answers %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// -id mints a signed reconnect link.
	r = w.run(opts{}, "connect-url", "-id", "c2")
	r.expect(t, ExitOK)
	if !strings.HasPrefix(r.stdout, w.url+"/oauth/start?connection_id=c2&expires=") || !strings.Contains(r.stdout, "&sig=") {
		t.Errorf("connect-url -id c2 printed %q", r.stdout)
	}
	r = w.run(opts{}, "connect-url", "-id", "c1", "-base", "https://sync.example.com/")
	r.expect(t, ExitOK)
	if !strings.HasPrefix(r.stdout, "https://sync.example.com/oauth/start?connection_id=c1&expires=") {
		t.Errorf("connect-url -base printed %q", r.stdout)
	}
	r = w.run(opts{}, "connect-url", "-id", "c1", "-output", "json")
	r.expect(t, ExitOK)
	var printed struct{ URL string }
	if err := json.Unmarshal([]byte(r.stdout), &printed); err != nil ||
		!strings.HasPrefix(printed.URL, w.url+"/oauth/start?connection_id=c1&expires=") {
		t.Errorf("connect-url json printed %q", r.stdout)
	}
	w.run(opts{}, "connect-url", "-id", "nope").expect(t, ExitFailure, `no connection "nope"`, "without -id")
	w.run(opts{env: map[string]string{EnvServer: w.url}}, "connect-url", "-id", "c1").expect(t, ExitUsage, "no admin token")
}

// reconnect-link mints a link that starts the OAuth flow for an anonymous
// browser, expiring when asked; a bare id does not.
func TestReconnectLinkCommand(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	seedThree(t, w)
	r := w.run(opts{}, "reconnect-link", "c2", "-ttl", "2h")
	r.expect(t, ExitOK)
	if !strings.Contains(r.stderr, "send it only to the connection's owner") {
		t.Errorf("stderr %q", r.stderr)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	status := func(u string) (int, string) {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}
	if code, loc := status(strings.TrimSpace(r.stdout)); code != http.StatusFound || !strings.Contains(loc, "/v1/oauth/authorize?") {
		t.Errorf("the link answers %d, Location %q", code, loc)
	}
	if code, _ := status(w.url + "/oauth/start?connection_id=c2"); code != http.StatusForbidden {
		t.Errorf("a bare id answers %d", code)
	}

	r = w.run(opts{}, "reconnect-link", "c1", "-output", "json")
	r.expect(t, ExitOK)
	var l control.ReconnectLink
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || l.ConnectionID != "c1" ||
		!l.ExpiresAt.Equal(w.clock.Now().Add(control.DefaultLinkTTL).Truncate(time.Second)) {
		t.Errorf("json %q: %v", r.stdout, err)
	}
	w.run(opts{}, "reconnect-link", "c1", "-ttl", "800h").expect(t, ExitUsage, "-ttl")
	w.run(opts{}, "reconnect-link", "nope").expect(t, ExitFailure, `no connection "nope"`)
	w.run(opts{}, "reconnect-link").expect(t, ExitUsage, "a connection id is required")
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	env := map[string]string{EnvServer: deadURL(t), EnvToken: adminToken}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"-bogus", "list"}, "flag provided but not defined: -bogus"},
		{[]string{"list", "-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"list", "extra"}, "list takes no arguments"},
		{[]string{"list", "-status", "sleeping"}, "-status must be one of"},
		{[]string{"list", "-limit", "-1"}, "-limit must not be negative"},
		{[]string{"list", "-limit", "many"}, "invalid value"},
		{[]string{"-output", "yaml", "list"}, "-output must be table or json"},
		{[]string{"-timeout", "0s", "list"}, "-timeout must be positive"},
		{[]string{"-server", "localhost:8080", "list"}, "-server (or NOTIONSYNC_CONTROL_URL) must be an http(s) URL"},
		{[]string{"show"}, "a connection id is required"},
		{[]string{"show", "a", "b"}, "one connection id expected"},
		{[]string{"show", "bad id"}, `invalid connection id "bad id"`},
		{[]string{"pause", "a/b"}, "invalid connection id"},
		{[]string{"events"}, "a connection id is required"},
		{[]string{"refresh", "-wait=maybe", "c1"}, "invalid boolean value"},
		{[]string{"import"}, "-id is required"},
		{[]string{"import", "-id", "c1", "nrt_token_in_argv"}, "never from the command line"},
		{[]string{"import", "-id", "c1", "-meta", "novalue"}, "must be key=value"},
		{[]string{"connect-url", "c1"}, "connect-url takes no arguments"},
		{[]string{"connect-url", "-base", "ftp://x"}, "-base must be an http(s) URL"},
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate"`},
	} {
		r := runCLI(t, opts{}, env, time.Now(), tc.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, r.code, r.stderr, ExitUsage, tc.want)
		}
		if strings.Contains(r.stderr, "nrt_token_in_argv") {
			t.Errorf("%q: the argument is echoed: %s", tc.args, r.stderr)
		}
	}
	// A command's usage errors name the command's synopsis.
	r := runCLI(t, opts{}, env, time.Now(), "show")
	if !strings.Contains(r.stderr, "usage: notionsyncctl show ID") {
		t.Errorf("show usage: %q", r.stderr)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		r := runCLI(t, opts{}, nil, time.Now(), args...)
		r.expect(t, ExitOK)
		for _, c := range commands {
			if !strings.Contains(r.stdout, "\n  "+c.name+" ") {
				t.Errorf("%v: usage lacks %s:\n%s", args, c.name, r.stdout)
			}
		}
		// Scripts rely on the exit statuses: the usage documents each.
		for _, s := range []string{"Exit status, for scripts:", "  0  success, including pause of a paused", "  1  the command failed", "  2  usage error"} {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("%v: usage lacks %q:\n%s", args, s, r.stdout)
			}
		}
	}
	for _, args := range [][]string{{"help", "import"}, {"import", "-h"}} {
		r := runCLI(t, opts{}, nil, time.Now(), args...)
		r.expect(t, ExitOK)
		for _, s := range []string{"Usage: notionsyncctl import -id ID", "-file FILE", "-replace", "never accepted as flags"} {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("%v lacks %q:\n%s", args, s, r.stdout)
			}
		}
	}
}

func TestInterruptedPromptReturns(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.seed("c1")
	ctx, cancel := context.WithCancel(context.Background())
	// A stdin that never ends: the prompt waits until ctx is cancelled.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"disconnect", "c1"}, Env{
			Stdin: pr, Stderr: &stderr, StdinIsTerminal: true,
			Getenv: func(k string) string { return map[string]string{EnvServer: w.url, EnvToken: adminToken}[k] },
		})
	}()
	// Cancel once the prompt is shown (the connection has been read).
	for {
		s, changed := stderr.snapshot()
		if strings.Contains(s, "Type yes to confirm") {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("returned %d before prompting: %s", code, s)
		case <-changed:
		}
	}
	cancel()
	if code := <-done; code != ExitFailure || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	pr.Close() // ends the abandoned read
	if st := w.conn("c1").Status; st != tokens.StatusActive {
		t.Errorf("status %s after an interrupted prompt", st)
	}
}

// lockedBuffer is a writer safe for concurrent use that tells when it was
// written to.
type lockedBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	written chan struct{} // closed by the next Write
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.written != nil {
		close(l.written)
		l.written = nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// snapshot returns the contents and a channel closed by the next Write.
func (l *lockedBuffer) snapshot() (string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.written == nil {
		l.written = make(chan struct{})
	}
	return l.b.String(), l.written
}

func TestRekeyCommand(t *testing.T) {
	w := newWorld(t)
	seedThree(t, w)
	r := w.run(opts{}, "rekey")
	r.expect(t, ExitOK)
	if !strings.Contains(r.stdout, "failed 0") {
		t.Fatalf("rekey output: %q", r.stdout)
	}
	w.run(opts{}, "rekey", "extra").expect(t, ExitUsage)
}

// -version (and the version command) print the build, talk to no server
// and need no admin token.
func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-version"}, {"--version"}, {"version"}} {
		r := runCLI(t, opts{}, nil, time.Now(), args...)
		r.expect(t, ExitOK)
		if !strings.HasPrefix(r.stdout, "notionsyncctl ") || !strings.Contains(r.stdout, "go1.") || strings.Count(r.stdout, "\n") != 1 {
			t.Errorf("%v printed %q", args, r.stdout)
		}
	}
	r := runCLI(t, opts{}, nil, time.Now(), "help")
	if !strings.Contains(r.stdout, "-version") {
		t.Errorf("usage does not list -version:\n%s", r.stdout)
	}
}

func TestReconcileCommand(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.seed("c1")
	r := w.run(opts{}, "reconcile", "c1")
	r.expect(t, ExitOK)
	if r.stdout != "c1: reconciliation enqueued\n" {
		t.Errorf("reconcile printed %q", r.stdout)
	}
	w.enq.mu.Lock()
	got := strings.Join(w.enq.recons, ",")
	w.enq.mu.Unlock()
	if got != "c1" {
		t.Errorf("reconciliations enqueued %q, want c1", got)
	}
	w.run(opts{}, "reconcile", "nope").expect(t, ExitFailure, "404")
}
