package control

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/notionsync/notionsync/internal/browsertest"
	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/tokens"
)

// screenshotEnv names a directory to write the console's screenshots to
// (make screenshots sets it to docs/); unset, they go to a temporary
// directory and are only checked to be written.
const screenshotEnv = "NOTIONSYNC_SCREENSHOTS"

// TestConsoleInBrowser drives headless Chromium through the console:
// list -> connection -> pause -> resume -> sync now, asserting what each
// page shows after each action.
func TestConsoleInBrowser(t *testing.T) {
	h := newConsoleHarness(t)
	ctx := context.Background()
	// A small fleet that reads like a real one.
	h.seed("acme-eng", "ws-acme")
	setName := func(id, name string) {
		t.Helper()
		c := h.conn(id)
		meta := c.Meta
		meta[MetaWorkspaceName] = name
		if err := h.rdb.HSet(ctx, keyspace.Conn(h.prefix, id)+"conn:"+id, "meta", mustJSON(t, meta)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	setName("acme-eng", "Acme Engineering")
	syncState := func(id string, pages, pending int, last time.Duration) {
		t.Helper()
		now := h.clock.Now()
		if err := h.rdb.HSet(ctx, jobs.SyncKey(h.prefix, id), "pages_synced", pages, "last_sync", now.Add(-last).UnixMilli(),
			"last_sweep", now.Add(-last).UnixMilli(), "cursor", now.Add(-last-time.Minute).UnixMilli()).Err(); err != nil {
			t.Fatal(err)
		}
		for i := range pending {
			h.rdb.SAdd(ctx, jobs.SyncKey(h.prefix, id)+":pending", "page:"+string(rune('a'+i)))
		}
	}
	syncState("acme-eng", 1284, 3, 2*time.Minute)
	h.addObjectError("acme-eng", "1f3c2a90-db-roadmap", "permanent", "database: Notion answered 403 restricted_resource (the integration lost access)")
	h.addObjectError("acme-eng", "8d21c7e4-page-launch", "transient", "page: Notion answered 502; retried with backoff")
	others := []struct {
		id, name string
		status   tokens.Status
		pages    int
	}{
		{"globex-sales", "Globex Sales", tokens.StatusActive, 532},
		{"initech", "Initech", tokens.StatusPaused, 88},
		{"umbrella-rd", "Umbrella R&D", tokens.StatusNeedsReauth, 2210},
		{"hooli-design", "Hooli Design", tokens.StatusActive, 47},
		{"stark-ops", "Stark Ops", tokens.StatusDisconnected, 0},
	}
	for i, o := range others {
		h.clock.Advance(time.Minute)
		h.addConn(o.id, o.name)
		syncState(o.id, o.pages, i%2, time.Duration(i+3)*time.Minute)
		switch o.status {
		case tokens.StatusPaused:
			if err := h.store.Pause(ctx, o.id); err != nil {
				t.Fatal(err)
			}
		case tokens.StatusNeedsReauth:
			if err := h.store.MarkNeedsReauth(ctx, o.id, "the workspace owner removed the integration"); err != nil {
				t.Fatal(err)
			}
		case tokens.StatusDisconnected:
			if err := h.store.Disconnect(ctx, o.id); err != nil {
				t.Fatal(err)
			}
		}
	}

	bctx := browsertest.New(t, browsertest.Options{Width: 1280, Height: 720})
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("operator:"+testAdminToken))
	if _, err := chromedp.Call(bctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv(screenshotEnv)
	if shots == "" {
		shots = t.TempDir()
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	click := func(sel string) {
		t.Helper()
		if _, err := chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("click %s: %v", sel, err)
		}
	}

	// The list.
	if _, err := chromedp.RunResponse(bctx, chromedp.Navigate(h.ts.URL+"/admin/")); err != nil {
		t.Fatal(err)
	}
	if got := text(`tr[data-id="acme-eng"] .badge`); got != "active" {
		t.Fatalf("list: acme-eng status %q", got)
	}
	if got := text(`tr[data-id="umbrella-rd"] td:nth-child(2)`); got != "needs_reauth operator" {
		t.Fatalf("list: umbrella-rd status %q", got)
	}
	if got := text(`tr[data-id="acme-eng"] .errs`); got != "2" {
		t.Fatalf("list: acme-eng errors %q", got)
	}
	if err := browsertest.Screenshot(bctx, filepath.Join(shots, "console-list.png")); err != nil {
		t.Fatal(err)
	}

	// The connection.
	click(`tr[data-id="acme-eng"] a.ws`)
	if got := text("h1"); got != "Acme Engineering active" {
		t.Fatalf("connection page h1 %q", got)
	}
	if got := text("#errors tbody"); !strings.Contains(got, "restricted_resource") || !strings.Contains(got, "transient") {
		t.Fatalf("per-object errors %q", got)
	}
	if err := browsertest.Screenshot(bctx, filepath.Join(shots, "console-connection.png")); err != nil {
		t.Fatal(err)
	}

	click("#pause")
	if got := text("#flash"); got != "Paused. The connection is now paused." {
		t.Fatalf("after pause: flash %q", got)
	}
	if got := text("h1 .badge"); got != "paused" || h.conn("acme-eng").Status != tokens.StatusPaused {
		t.Fatalf("after pause: badge %q, stored %s", got, h.conn("acme-eng").Status)
	}
	click("#resume")
	if got := text("#flash"); got != "Resumed. The connection is now active." {
		t.Fatalf("after resume: flash %q", got)
	}
	if got := text("h1 .badge"); got != "active" {
		t.Fatalf("after resume: badge %q", got)
	}
	click("#sync")
	if got := text("#flash"); !strings.HasPrefix(got, "Sync enqueued") {
		t.Fatalf("after sync: flash %q", got)
	}
	if n := h.enq.syncCount("acme-eng"); n != 1 {
		t.Fatalf("sync now enqueued %d syncs, want 1", n)
	}
	if got := text("#events tbody tr:first-child"); !strings.Contains(got, "resumed") {
		t.Fatalf("timeline's newest event %q, want resumed", got)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := jsonMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var jsonMarshal = json.Marshal
