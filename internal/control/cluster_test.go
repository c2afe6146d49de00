package control

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/keyspace"
)

// The control plane on a real Redis Cluster (3 masters): the OAuth state
// script and the MULTI that takes a state name keys of one slot ({oauth}),
// and the callback and webhook de-duplication work end to end.
func TestControlOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 6-node Redis Cluster")
	}
	t.Parallel()

	t.Run("OAuthStatesInOneSlot", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOptions{cluster: true, config: func(c *Config) { c.MaxOAuthStates = 2 }})
		ctx := t.Context()
		if a, b := keyspace.Slot(h.srv.stateKey("x")), keyspace.Slot(h.srv.statesKey()); a != b {
			t.Fatalf("a state key is in slot %d, the states zset in %d", a, b)
		}
		// Two flows started over HTTP (putStateScript on the cluster).
		cb1 := h.authorize(h.browser(), "")
		h.authorize(h.browser(), "")
		if n, err := h.rdb.ZCard(ctx, h.srv.statesKey()).Result(); err != nil || n != 2 {
			t.Fatalf("%d outstanding states (%v), want 2", n, err)
		}
		// The cap holds on the cluster.
		if r := h.get(h.browser(), h.ts.URL+StartPath); r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "Too many sign-ins") {
			t.Fatalf("a third flow past MaxOAuthStates 2: status %d, body %s", r.status, r.body)
		}
		// Taking a state (GETDEL + ZREM in one MULTI) works and frees a place.
		st, err := h.srv.takeState(ctx, cb1.Query().Get("state"))
		if err != nil || st == nil {
			t.Fatalf("take the state on the cluster: %v", err)
		}
		if n, err := h.rdb.ZCard(ctx, h.srv.statesKey()).Result(); err != nil || n != 1 {
			t.Fatalf("%d outstanding states (%v) after one was taken, want 1", n, err)
		}
		if _, err := h.srv.takeState(ctx, cb1.Query().Get("state")); err == nil {
			t.Fatal("a state was taken twice")
		}
	})

	t.Run("OAuthCallbackAndWebhookDedup", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOptions{cluster: true, config: func(c *Config) {
			c.NotionWebhookToken = testNotionToken
			c.WebhookDedupWindow = 30 * time.Second
		}})
		ctx := t.Context()
		resp := h.get(h.browser(), h.ts.URL+StartPath)
		if resp.status != http.StatusOK || !strings.Contains(resp.body, "Connected") {
			t.Fatalf("callback on the cluster: status %d, body %s", resp.status, resp.body)
		}
		c := h.onlyConnection()
		if n, err := h.rdb.ZCard(ctx, h.srv.statesKey()).Result(); err != nil || n != 0 {
			t.Fatalf("%d states left (%v) after the callback", n, err)
		}
		ws := c.Meta[MetaWorkspaceID]
		ev := notionEvent("page.content_updated", ws, "page-0001")
		if r := h.postWebhook(ev, SignNotion(testNotionToken, ev)); r.status != http.StatusOK || !strings.Contains(r.body, string(WebhookEnqueued)) {
			t.Fatalf("first event: %d %s", r.status, r.body)
		}
		again := notionEvent("page.content_updated", ws, "page-0001")
		if r := h.postWebhook(again, SignNotion(testNotionToken, again)); r.status != http.StatusOK || !strings.Contains(r.body, string(WebhookDeduplicated)) {
			t.Fatalf("second event: %d %s", r.status, r.body)
		}
		if ttl, err := h.rdb.PTTL(ctx, h.srv.dedupKey(c.ID, "page-0001")).Result(); err != nil || ttl <= 0 {
			t.Fatalf("dedup key TTL %s (%v)", ttl, err)
		}
		if n := h.enq.syncCount(c.ID); n != 2 { // the callback's first sync, the first event's
			t.Fatalf("%d syncs, want 2", n)
		}
	})
}

// Per-connection keys of the control plane live in the connection's shard.
func TestDedupKeyIsInTheConnectionsShard(t *testing.T) {
	t.Parallel()
	s := &Server{cfg: Config{KeyPrefix: "notionsync:"}}
	for _, id := range []string{"ws-a", "ws-b", "conn-1234"} {
		if got, want := keyspace.Slot(s.dedupKey(id, "e")), keyspace.Slot(keyspace.Conn("notionsync:", id)+"conn:"+id); got != want {
			t.Errorf("%s: dedup key in slot %d, the connection's keys in %d", id, got, want)
		}
	}
}
