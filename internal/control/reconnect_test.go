package control

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/notionsync/notionsync/tokens"
)

// stateCount returns how many OAuth states are stored.
func (h *harness) stateCount() int {
	h.t.Helper()
	keys, err := h.rdb.Keys(context.Background(), h.prefix+"{oauth}:oauth:state:*").Result()
	if err != nil {
		h.t.Fatal(err)
	}
	return len(keys)
}

// importBare imports a connection the way `notionsyncctl import` without
// -meta does: no workspace_id.
func (h *harness) importBare(id, workspaceID string) {
	h.t.Helper()
	p := h.fake.SeedConnection(workspaceID)
	resp := h.api(http.MethodPost, "/api/v1/connections/import",
		ImportRequest{ConnectionID: id, AccessToken: p.AccessToken, RefreshToken: p.RefreshToken})
	if resp.status != http.StatusCreated {
		h.t.Fatalf("import %s: %d %s", id, resp.status, resp.body)
	}
}

// withQuery returns a link query with one parameter replaced.
func withQuery(t *testing.T, rawQuery, key, value string) string {
	t.Helper()
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	q.Set(key, value)
	return q.Encode()
}

// The attack of issue 10 item 1: an anonymous visitor who knows a
// connection id (here one imported without a workspace, the case that was
// open) tries to start a reconnect with a bare id or a made-up link. Every
// attempt, and an unknown id, gets the same answer; no flow starts, Notion
// is not contacted, the victim's pair is untouched.
func TestReconnectAnonymousRefusedAndIndistinguishable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.importBare("victim", "")
	h.seed("known", "")
	before := h.conn("victim")
	realLink := h.linkQuery("known")

	attempts := map[string]string{
		"unknown id":                "connection_id=nobody-here",
		"known id, no link":         "connection_id=victim",
		"known id with workspace":   "connection_id=known",
		"unknown id with a link":    "connection_id=nobody-here&expires=4102444800&sig=" + strings.Repeat("A", 43),
		"forged sig":                "connection_id=known&expires=4102444800&sig=" + strings.Repeat("A", 43),
		"another connection's link": withQuery(t, realLink, "connection_id", "victim"),
		"extended expiry":           withQuery(t, realLink, "expires", "4102444800"),
		"malformed sig":             withQuery(t, realLink, "sig", "not-base64!"),
	}
	var first response
	for name, q := range attempts {
		resp := h.connect(q)
		if resp.status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403: %.300s", name, resp.status, resp.body)
		}
		if first.body == "" {
			first = resp
		} else if resp.body != first.body || resp.status != first.status {
			t.Errorf("%s: the answer differs from another refused start, so it tells ids apart:\n%s\n---\n%s", name, resp.body, first.body)
		}
	}
	if n := h.stateCount(); n != 0 {
		t.Errorf("%d OAuth states stored by refused starts", n)
	}
	if st := h.fake.Stats(); st.TokenRequests != 0 || st.Exchanges != 0 {
		t.Errorf("refused starts reached Notion: %+v", st)
	}
	if after := h.conn("victim"); after.Version != before.Version || after.Status != tokens.StatusActive {
		t.Errorf("the victim's connection changed: %+v", after)
	}
}

// Forged, expired and spent links are refused with the same page an
// anonymous caller gets; a link dies with its first successful use, and so
// does every link minted before it.
func TestReconnectLinkExpiredAndReusedRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	pair := h.seed("tenant-1", "")
	h.fake.SetAuthorizeWorkspace(pair.WorkspaceID)
	anonymous := h.connect("connection_id=nobody-here")

	// Expired: a 1h link an hour and a second later.
	resp := h.api(http.MethodPost, "/api/v1/connections/tenant-1/reconnect-link?ttl=1h", nil)
	if resp.status != http.StatusCreated {
		t.Fatalf("mint: %d %s", resp.status, resp.body)
	}
	short := decode[ReconnectLink](t, resp)
	if !short.ExpiresAt.Equal(h.clock.Now().Add(time.Hour).Truncate(time.Second)) {
		t.Errorf("expires_at %v", short.ExpiresAt)
	}
	older := h.link("tenant-1")
	used := h.link("tenant-1")
	h.clock.Advance(time.Hour + time.Second)
	if resp := h.get(h.browser(), short.URL); resp.status != anonymous.status || resp.body != anonymous.body {
		t.Errorf("expired link: %d %.200s", resp.status, resp.body)
	}

	// Used once: reconnects.
	resp = h.get(h.browser(), used.URL)
	if resp.status != http.StatusOK {
		t.Fatalf("valid link: %d %s", resp.status, resp.body)
	}
	contains(t, resp.body, "Reconnected")
	after := h.conn("tenant-1")

	// Used again, and an older link: both dead now.
	for name, l := range map[string]ReconnectLink{"reused": used, "older": older} {
		resp := h.get(h.browser(), l.URL)
		if resp.status != anonymous.status || resp.body != anonymous.body {
			t.Errorf("%s link: %d %.300s", name, resp.status, resp.body)
		}
	}
	if c := h.conn("tenant-1"); c.Version != after.Version {
		t.Errorf("a refused link changed the connection: v%d -> v%d", after.Version, c.Version)
	}
	if st := h.fake.Stats(); st.Exchanges != 1 {
		t.Errorf("%d code exchanges, want 1", st.Exchanges)
	}
}

// Two flows started from one link before either finished: the first
// reconnects, the second is refused at the callback (the nonce moved) and
// changes nothing.
func TestReconnectLinkSpentBetweenStartAndCallback(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	pair := h.seed("tenant-1", "")
	h.fake.SetAuthorizeWorkspace(pair.WorkspaceID)
	q := h.linkQuery("tenant-1")
	b1, b2 := h.browser(), h.browser()
	cb1, cb2 := h.authorize(b1, q), h.authorize(b2, q)
	if resp := h.get(b1, cb1.String()); resp.status != http.StatusOK {
		t.Fatalf("first: %d %s", resp.status, resp.body)
	}
	won := h.conn("tenant-1")
	tok, err := h.source.Token(context.Background(), "tenant-1")
	if err != nil {
		t.Fatal(err)
	}
	resp := h.get(b2, cb2.String())
	if resp.status != http.StatusConflict {
		t.Fatalf("second: %d %s", resp.status, resp.body)
	}
	contains(t, resp.body, "already used")
	if c := h.conn("tenant-1"); c.Version != won.Version || c.LinkNonce != won.LinkNonce {
		t.Errorf("the refused callback wrote: %+v", c)
	}
	if tok2, err := h.source.Token(context.Background(), "tenant-1"); err != nil || tok2.AccessToken != tok.AccessToken {
		t.Errorf("the stored pair changed: %v", err)
	}
	// The refused grant is of the connection's own workspace: revoking it
	// could end the connection's grant too.
	if st := h.fake.Stats(); st.Revocations != 0 {
		t.Errorf("%d revocations, want 0", st.Revocations)
	}
}

// A valid link with another workspace is refused and the stored pair is
// untouched; with the same workspace it reconnects.
func TestReconnectLinkBindsOnlyTheSameWorkspace(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	pair := h.seed("tenant-1", "")
	ctx := context.Background()
	if err := h.store.MarkNeedsReauth(ctx, "tenant-1", "test"); err != nil {
		t.Fatal(err)
	}
	before := h.conn("tenant-1")
	l := h.link("tenant-1")

	// The fake authorizes a new workspace (the attacker's).
	resp := h.get(h.browser(), l.URL)
	if resp.status != http.StatusConflict {
		t.Fatalf("another workspace: %d %s", resp.status, resp.body)
	}
	contains(t, resp.body, "another Notion workspace")
	c := h.conn("tenant-1")
	if c.Version != before.Version || c.Status != tokens.StatusNeedsReauth || c.Meta[MetaWorkspaceID] != pair.WorkspaceID ||
		c.LinkNonce != before.LinkNonce {
		t.Errorf("the connection changed: %+v", c)
	}
	if p, ok := h.fake.CurrentPair(pair.WorkspaceID); !ok || p.AccessToken != pair.AccessToken {
		t.Error("the victim's grant at Notion changed")
	}

	// The same link, now with the right workspace, still works (it was not
	// spent by the refused attempt).
	h.fake.SetAuthorizeWorkspace(pair.WorkspaceID)
	resp = h.get(h.browser(), l.URL)
	if resp.status != http.StatusOK {
		t.Fatalf("same workspace: %d %s", resp.status, resp.body)
	}
	contains(t, resp.body, "Reconnected")
	c = h.conn("tenant-1")
	if c.Status != tokens.StatusActive || c.LinkNonce == before.LinkNonce || c.Meta[MetaWorkspaceID] != pair.WorkspaceID {
		t.Errorf("after the reconnect: %+v", c)
	}
}

// An import without workspace_id cannot get a link (a clear 409) until its
// first refresh names the workspace; then a link reconnects it, bound to
// that workspace.
func TestImportedConnectionLearnsWorkspaceBeforeReconnect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.importBare("imported", "ws-imp")
	resp := h.api(http.MethodPost, "/api/v1/connections/imported/reconnect-link", nil)
	if resp.status != http.StatusConflict {
		t.Fatalf("link before the workspace is known: %d %s", resp.status, resp.body)
	}
	contains(t, resp.body, "workspace_unknown")
	contains(t, resp.body, "refresh")
	if v := decode[ConnectionView](t, h.api(http.MethodGet, "/api/v1/connections/imported", nil)); v.ReconnectURL != "" {
		t.Errorf("a reconnect_url for a connection without workspace: %q", v.ReconnectURL)
	}

	if resp := h.api(http.MethodPost, "/api/v1/connections/imported/refresh?wait=1", nil); resp.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", resp.status, resp.body)
	}
	if ws := h.conn("imported").Meta[MetaWorkspaceID]; ws != "ws-imp" {
		t.Fatalf("after the first refresh the workspace is %q, want ws-imp", ws)
	}
	l := h.link("imported")
	resp = h.get(h.browser(), l.URL) // the fake authorizes another workspace
	if resp.status != http.StatusConflict {
		t.Fatalf("another workspace: %d %s", resp.status, resp.body)
	}
	h.fake.SetAuthorizeWorkspace("ws-imp")
	if resp := h.get(h.browser(), l.URL); resp.status != http.StatusOK {
		t.Fatalf("same workspace: %d %s", resp.status, resp.body)
	}
}

// An administrator who opens a bare reconnect is told to use a link; a
// new id still works for them as before (TestOAuthStartWithNewConnectionIDNeedsAdmin).
func TestReconnectAdminWithoutLinkIsToldToMintOne(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.seed("tenant-1", "")
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+StartPath+"?connection_id=tenant-1", nil)
	req.SetBasicAuth("ops", testAdminToken)
	resp := h.do(h.browser().c, req)
	if resp.status != http.StatusConflict {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	contains(t, resp.body, "reconnect-link")
	if h.stateCount() != 0 {
		t.Error("a state was stored")
	}
}

// The needs_reauth webhook carries a working link.
func TestReauthWebhookLinkReconnects(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, testWebhookSecret, http.StatusOK)
	h, _ := reauthHarness(t, rc.srv.URL+"/hook", nil)
	pair := h.seed("c1", "")
	h.fake.SetAuthorizeWorkspace(pair.WorkspaceID)
	h.srv.NotifyNeedsReauth(context.Background(), "c1", tokens.ReasonRevoked, "")
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	got := rc.received()
	if len(got) != 1 || got[0].body.ReconnectURL == "" {
		t.Fatalf("deliveries %+v", got)
	}
	if resp := h.get(h.browser(), got[0].body.ReconnectURL); resp.status != http.StatusOK {
		t.Fatalf("webhook link: %d %s", resp.status, resp.body)
	}
}
