package control

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/notionsync/notionsync/tokens"
)

const (
	testNotionToken = "secret_notion-verification-token-0123456789"
	testWorkspace   = "8d6f3c7e-1111-4222-8333-444455556666"
)

// notionEvent is a new event (its own id) that happened now.
func notionEvent(eventType, workspaceID, entityID string) []byte {
	return notionEventAt(rand.Text(), time.Now(), eventType, workspaceID, entityID)
}

func notionEventAt(id string, at time.Time, eventType, workspaceID, entityID string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"timestamp":%q,"workspace_id":%q,`+
		`"subscription_id":"sub","integration_id":"int","type":%q,"authors":[{"id":"u","type":"person"}],`+
		`"attempt_number":1,"entity":{"id":%q,"type":"page"},"data":{"parent":{"id":"p","type":"space"}}}`,
		id, at.UTC().Format("2006-01-02T15:04:05.000Z"), workspaceID, eventType, entityID)
}

func (h *harness) postWebhook(body []byte, signature string) response {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+NotionWebhookPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("X-Notion-Signature", signature)
	}
	return h.do(h.browser().c, req)
}

func TestNotionWebhookSignatureAndDedup(t *testing.T) {
	t.Parallel()
	var outcomes list[WebhookOutcome]
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.NotionWebhookToken = testNotionToken
		c.WebhookDedupWindow = 30 * time.Second
		c.Hooks.OnNotionWebhook = outcomes.add
	}})
	connID := WorkspaceConnectionID(testWorkspace)
	h.seed(connID, testWorkspace)
	sign := func(b []byte) string { return SignNotion(testNotionToken, b) }
	expect := func(r response, status int, outcome WebhookOutcome) {
		t.Helper()
		if r.status != status || !strings.Contains(r.body, string(outcome)) {
			t.Errorf("status %d body %s, want %d %s", r.status, r.body, status, outcome)
		}
	}

	ev := notionEvent("page.content_updated", testWorkspace, "page-0001")
	expect(h.postWebhook(ev, sign(ev)), http.StatusOK, WebhookEnqueued)
	if n := h.enq.syncCount(connID); n != 1 {
		t.Fatalf("%d syncs, want 1", n)
	}
	// A burst of events for the same entity triggers no more syncs.
	for range 3 {
		again := notionEvent("page.content_updated", testWorkspace, "page-0001")
		expect(h.postWebhook(again, sign(again)), http.StatusOK, WebhookDeduplicated)
	}
	ttl := h.rdb.PTTL(context.Background(), h.srv.dedupKey(connID, "page-0001")).Val()
	if ttl <= 0 || ttl > 30*time.Second {
		t.Errorf("dedup TTL %s", ttl)
	}
	// Another entity does.
	ev2 := notionEvent("database.schema_updated", testWorkspace, "db-0002")
	expect(h.postWebhook(ev2, sign(ev2)), http.StatusOK, WebhookEnqueued)
	if n := h.enq.syncCount(connID); n != 2 {
		t.Errorf("%d syncs, want 2", n)
	}

	// Bad, missing and malformed signatures.
	otherBody := notionEvent("page.created", testWorkspace, "page-0003")
	for name, sig := range map[string]string{
		"missing":        "",
		"wrong key":      SignNotion("another-token", otherBody),
		"other body":     sign(ev),
		"not hex":        "sha256=zz",
		"no prefix":      strings.TrimPrefix(sign(otherBody), "sha256="),
		"truncated":      sign(otherBody)[:20],
		"other algo tag": "sha1=" + strings.TrimPrefix(sign(otherBody), "sha256="),
	} {
		r := h.postWebhook(otherBody, sig)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s signature: status %d", name, r.status)
		}
	}
	if n := h.enq.syncCount(connID); n != 2 {
		t.Errorf("an unsigned event enqueued a sync (%d)", n)
	}

	// Events that need no sync, or have nobody to sync.
	comment := notionEvent("comment.created", testWorkspace, "c-1")
	expect(h.postWebhook(comment, sign(comment)), http.StatusOK, WebhookIgnored)
	unknown := notionEvent("page.created", "00000000-0000-4000-8000-000000000000", "page-9")
	expect(h.postWebhook(unknown, sign(unknown)), http.StatusAccepted, WebhookUnknownConnection)
	malformed := []byte(`{"type":"page.created","workspace_id":"a:b"}`)
	expect(h.postWebhook(malformed, sign(malformed)), http.StatusBadRequest, WebhookMalformed)
	notJSON := []byte(`not json`)
	expect(h.postWebhook(notJSON, sign(notJSON)), http.StatusBadRequest, WebhookMalformed)
	big := bytes.Repeat([]byte(" "), maxWebhookBody+1)
	expect(h.postWebhook(big, sign(big)), http.StatusRequestEntityTooLarge, WebhookTooLarge)

	if err := h.store.Pause(context.Background(), connID); err != nil {
		t.Fatal(err)
	}
	paused := notionEvent("page.created", testWorkspace, "page-0004")
	expect(h.postWebhook(paused, sign(paused)), http.StatusAccepted, WebhookInactive)
	if err := h.store.Resume(context.Background(), connID); err != nil {
		t.Fatal(err)
	}

	// A queue failure answers 503 (Notion retries) and does not leave the
	// de-duplication key behind.
	h.enq.setErr(errTest)
	retry := notionEvent("page.properties_updated", testWorkspace, "page-0005")
	expect(h.postWebhook(retry, sign(retry)), http.StatusServiceUnavailable, WebhookFailed)
	h.enq.setErr(nil)
	expect(h.postWebhook(retry, sign(retry)), http.StatusOK, WebhookEnqueued)
	if n := h.enq.syncCount(connID); n != 3 {
		t.Errorf("%d syncs, want 3", n)
	}

	got := outcomes.get()
	if len(got) < 10 || got[0] != WebhookEnqueued || got[1] != WebhookDeduplicated {
		t.Errorf("hook outcomes %v", got)
	}
}

// entityEnqueuer implements EntitySyncer.
type entityEnqueuer struct {
	fakeEnqueuer
	mu       sync.Mutex
	entities []string
}

func (e *entityEnqueuer) SyncEntity(_ context.Context, connID, entityType, entityID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.entities = append(e.entities, connID+" "+entityType+" "+entityID)
	return nil
}

func TestNotionWebhookTargetsEntities(t *testing.T) {
	t.Parallel()
	enq := &entityEnqueuer{}
	h := newHarness(t, harnessOptions{enqueuer: enq, config: func(c *Config) { c.NotionWebhookToken = testNotionToken }})
	// One workspace, connected under its own id and under a tenant id.
	h.seed(WorkspaceConnectionID(testWorkspace), testWorkspace)
	h.seed("tenant-7", testWorkspace)
	h.srv.indexWorkspace(context.Background(), testWorkspace, "tenant-7")

	ev := notionEvent("page.created", testWorkspace, "page-0001")
	if r := h.postWebhook(ev, SignNotion(testNotionToken, ev)); r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	enq.mu.Lock()
	defer enq.mu.Unlock()
	want := []string{"ws-" + testWorkspace + " page page-0001", "tenant-7 page page-0001"}
	if fmt.Sprint(enq.entities) != fmt.Sprint(want) {
		t.Errorf("entity syncs %v, want %v", enq.entities, want)
	}
	if enq.total() != 0 {
		t.Error("SyncNow called although the enqueuer syncs entities")
	}
}

func TestNotionWebhookVerificationRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.NotionWebhookSetup = true }})
	const token = "secret_Abc123verificationTokenFromNotion"
	body := []byte(`{"verification_token":"` + token + `"}`)

	r := h.postWebhook(body, "")
	if r.status != http.StatusOK {
		t.Fatalf("verification request: %d %s", r.status, r.body)
	}
	if n := h.logs.FilterMessageSnippet("verification token received").Len(); n != 1 {
		t.Errorf("%d log lines announce the token", n)
	}
	if v := h.rdb.Get(context.Background(), h.prefix+"webhook:notion:verification").Val(); strings.Contains(v, token) {
		t.Error("the verification token is stored in plain text")
	}
	// Without a configured token, events are refused, signed or not.
	ev := notionEvent("page.created", testWorkspace, "p")
	if r := h.postWebhook(ev, SignNotion(token, ev)); r.status != http.StatusUnauthorized {
		t.Errorf("event before the token is configured: %d", r.status)
	}
	// Revealed once to an administrator.
	if r := h.apiAs("", http.MethodPost, "/api/v1/webhooks/notion/verification-token", nil); r.status != http.StatusUnauthorized {
		t.Errorf("reveal without credential: %d", r.status)
	}
	r = h.api(http.MethodPost, "/api/v1/webhooks/notion/verification-token", nil)
	if r.status != http.StatusOK {
		t.Fatalf("reveal: %d %s", r.status, r.body)
	}
	if got := decode[map[string]any](t, r)["verification_token"]; got != token {
		t.Errorf("revealed %v", got)
	}
	if r := h.api(http.MethodPost, "/api/v1/webhooks/notion/verification-token", nil); r.status != http.StatusNotFound {
		t.Errorf("second reveal: %d", r.status)
	}
	h.assertNoSecrets([]string{token}, func(body string) bool { return strings.Contains(body, `"verification_token"`) })
}

func TestNotionWebhookNotMountedByDefault(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	body := []byte(`{"verification_token":"x"}`)
	if r := h.postWebhook(body, ""); r.status != http.StatusNotFound {
		t.Errorf("status %d", r.status)
	}
}

// receiver is an httptest server standing in for the embedding product: it
// verifies each notification's signature and answers from a script.
type receiver struct {
	srv    *httptest.Server
	secret string
	mu     sync.Mutex
	script []int // statuses to answer, in order; the last repeats
	got    []receivedNotification
}

type receivedNotification struct {
	body     ReauthNotification
	raw      string
	delivery string
	validSig bool
}

func newReceiver(t *testing.T, secret string, script ...int) *receiver {
	rc := &receiver{secret: secret, script: script}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var n ReauthNotification
		_ = json.Unmarshal(raw, &n)
		rc.mu.Lock()
		rc.got = append(rc.got, receivedNotification{body: n, raw: string(raw), delivery: r.Header.Get(DeliveryHeader),
			validSig: VerifySignature(rc.secret, raw, r.Header.Get(SignatureHeader))})
		status := rc.script[min(len(rc.got), len(rc.script))-1]
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) received() []receivedNotification {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]receivedNotification(nil), rc.got...)
}

const testWebhookSecret = "outbound-webhook-secret-0123456789"

type notificationResult struct {
	conn     string
	outcome  NotificationOutcome
	attempts int
}

func reauthHarness(t *testing.T, url string, mod func(*ReauthWebhookConfig)) (*harness, *list[notificationResult]) {
	var results list[notificationResult]
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.ReauthWebhook = ReauthWebhookConfig{URL: url, Secret: testWebhookSecret,
			InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
		if mod != nil {
			mod(&c.ReauthWebhook)
		}
		c.Hooks.OnReauthNotification = func(conn string, o NotificationOutcome, attempts int) {
			results.add(notificationResult{conn, o, attempts})
		}
	}})
	return h, &results
}

func TestReauthWebhookSignedAndRetried(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, testWebhookSecret, http.StatusInternalServerError, http.StatusOK)
	h, results := reauthHarness(t, rc.srv.URL+"/hooks/t0k3n-in-url", nil)
	h.seed("c1", "")

	h.srv.NotifyNeedsReauth(context.Background(), "c1", tokens.ReasonRevoked, "the user removed the integration")
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	got := rc.received()
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want 2 (a 500, then a retry)", len(got))
	}
	for i, n := range got {
		if !n.validSig {
			t.Errorf("delivery %d: signature does not verify", i)
		}
		if n.delivery != n.body.ID || n.body.ID == "" || n.raw != got[0].raw {
			t.Errorf("delivery %d: id %q / %q; retries must repeat the same body", i, n.delivery, n.body.ID)
		}
	}
	n := got[0].body
	if n.Event != EventNeedsReauth || n.ConnectionID != "c1" || n.Reason != tokens.ReasonRevoked ||
		n.Detail != "the user removed the integration" || !strings.HasPrefix(n.ReconnectURL, h.ts.URL+"/oauth/start?connection_id=c1&expires=") ||
		!n.ReconnectExpiresAt.Equal(h.clock.Now().Add(DefaultLinkTTL).Truncate(time.Second)) ||
		!n.Time.Equal(h.clock.Now()) {
		t.Errorf("notification %+v", n)
	}
	if r := results.get(); len(r) != 1 || r[0] != (notificationResult{"c1", NotificationDelivered, 2}) {
		t.Errorf("hook saw %+v", r)
	}
	h.assertNoSecrets([]string{"t0k3n-in-url", testWebhookSecret}, nil)
	// After Close, nothing is sent.
	h.srv.NotifyNeedsReauth(context.Background(), "c2", tokens.ReasonRevoked, "")
	if len(rc.received()) != 2 {
		t.Error("a notification was sent after Close")
	}
	if r := results.get(); len(r) != 2 || r[1].outcome != NotificationDropped {
		t.Errorf("hook saw %+v", r)
	}
}

func TestReauthWebhookGivesUp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		script   []int
		attempts int
	}{
		{"permanent 400", []int{http.StatusBadRequest}, 1},
		{"redirect is not followed", []int{http.StatusFound}, 1},
		{"always 503", []int{http.StatusServiceUnavailable}, 3},
		{"429 then 429", []int{http.StatusTooManyRequests}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, testWebhookSecret, tc.script...)
			h, results := reauthHarness(t, rc.srv.URL, func(c *ReauthWebhookConfig) { c.MaxAttempts = 3 })
			h.srv.NotifyNeedsReauth(context.Background(), "c1", tokens.ReasonLostRotation, "")
			if err := h.srv.Close(); err != nil {
				t.Fatal(err)
			}
			if n := len(rc.received()); n != tc.attempts {
				t.Errorf("%d deliveries, want %d", n, tc.attempts)
			}
			if r := results.get(); len(r) != 1 || r[0] != (notificationResult{"c1", NotificationFailed, tc.attempts}) {
				t.Errorf("hook saw %+v", r)
			}
		})
	}
}

// A network failure is retried; the log never shows the URL (a secret).
func TestReauthWebhookNetworkErrorHidesURL(t *testing.T) {
	t.Parallel()
	dead := deadAddr(t)
	h, results := reauthHarness(t, "http://"+dead+"/hook/t0k3n-in-url", func(c *ReauthWebhookConfig) { c.MaxAttempts = 2 })
	h.srv.NotifyNeedsReauth(context.Background(), "c1", tokens.ReasonRevoked, "")
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if r := results.get(); len(r) != 1 || r[0] != (notificationResult{"c1", NotificationFailed, 2}) {
		t.Errorf("hook saw %+v", r)
	}
	if h.logs.FilterMessageSnippet("attempt failed; will retry").Len() != 1 {
		t.Error("the retry was not logged")
	}
	h.assertNoSecrets([]string{"t0k3n-in-url"}, nil)
}

func TestShutdownAbandonsPendingRetries(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, testWebhookSecret, http.StatusInternalServerError)
	h, results := reauthHarness(t, rc.srv.URL, func(c *ReauthWebhookConfig) {
		c.InitialBackoff, c.MaxBackoff = time.Hour, time.Hour
	})
	h.srv.NotifyNeedsReauth(context.Background(), "c1", tokens.ReasonRevoked, "")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := h.srv.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Errorf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Shutdown took %s", d)
	}
	if r := results.get(); len(r) != 1 || r[0].outcome != NotificationDropped {
		t.Errorf("hook saw %+v", r)
	}
	if h.logs.FilterMessageSnippet("abandoned").Len() != 1 {
		t.Error("the abandoned delivery was not logged")
	}
}

func TestSignAndVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"a":1}`)
	sig := Sign("k", body)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Errorf("signature %q", sig)
	}
	for _, tc := range []struct {
		secret, header string
		body           []byte
		want           bool
	}{
		{"k", sig, body, true},
		{"k", " " + sig + " ", body, true},
		{"k2", sig, body, false},
		{"k", sig, []byte(`{"a":2}`), false},
		{"", Sign("", body), body, false}, // an empty key never verifies
		{"k", strings.ToUpper(sig), body, false},
		{"k", "", body, false},
	} {
		if got := VerifySignature(tc.secret, tc.body, tc.header); got != tc.want {
			t.Errorf("VerifySignature(%q, %s, %q) = %v", tc.secret, tc.body, tc.header, got)
		}
	}
}

// TestNotionWebhookVerificationRefusedWhenConfigured: once a verification
// token is configured, an unsigned verification request (anyone can send
// one) neither replaces a captured token nor stores its own.
func TestNotionWebhookVerificationRefusedWhenConfigured(t *testing.T) {
	t.Parallel()
	var outcomes list[WebhookOutcome]
	h := newHarness(t, harnessOptions{config: func(c *Config) {
		c.NotionWebhookToken = testNotionToken
		c.Hooks.OnNotionWebhook = outcomes.add
	}})
	const legit = "secret_legitTokenCapturedDuringSetup0123"
	if err := h.srv.captureVerificationToken(context.Background(), legit); err != nil {
		t.Fatal(err)
	}
	forged := []byte(`{"verification_token":"secret_attackerChosenToken0123456789"}`)
	r := h.postWebhook(forged, "")
	if r.status != http.StatusConflict || !strings.Contains(r.body, string(WebhookVerificationRefused)) {
		t.Errorf("unsigned verification request with a token configured: %d %s, want 409", r.status, r.body)
	}
	if got := outcomes.get(); len(got) != 1 || got[0] != WebhookVerificationRefused {
		t.Errorf("outcomes %v", got)
	}
	r = h.api(http.MethodPost, "/api/v1/webhooks/notion/verification-token", nil)
	if r.status != http.StatusOK {
		t.Fatalf("reveal: %d %s", r.status, r.body)
	}
	if got := decode[map[string]any](t, r)["verification_token"]; got != legit {
		t.Errorf("revealed %v, want the token captured during setup", got)
	}
	// And with nothing captured, nothing is stored.
	_ = h.postWebhook(forged, "")
	if n := h.rdb.Exists(context.Background(), h.prefix+"webhook:notion:verification").Val(); n != 0 {
		t.Error("a refused verification request stored a token")
	}
}

// TestNotionWebhookEventReplay: a signed event is handled once per event id
// for WebhookEventMaxAge, long after the per-entity window (5s) has passed.
func TestNotionWebhookEventReplay(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.NotionWebhookToken = testNotionToken }})
	connID := WorkspaceConnectionID(testWorkspace)
	h.seed(connID, testWorkspace)
	ev := notionEvent("page.content_updated", testWorkspace, "page-0001")
	sig := SignNotion(testNotionToken, ev)
	if r := h.postWebhook(ev, sig); r.status != http.StatusOK || !strings.Contains(r.body, string(WebhookEnqueued)) {
		t.Fatalf("first delivery: %d %s", r.status, r.body)
	}
	// The per-entity window is over (its key expired) ...
	entityKey := h.srv.dedupKey(connID, "page-0001")
	if n := h.rdb.Del(context.Background(), entityKey).Val(); n != 1 {
		t.Fatalf("per-entity key %s not found", entityKey)
	}
	// ... and the event arrives again (Notion's retry or a replay).
	h.clock.Advance(6 * time.Hour)
	r := h.postWebhook(ev, sig)
	if r.status != http.StatusOK || !strings.Contains(r.body, string(WebhookDuplicateEvent)) {
		t.Errorf("replayed event: %d %s, want 200 %s", r.status, r.body, WebhookDuplicateEvent)
	}
	if n := h.enq.syncCount(connID); n != 1 {
		t.Errorf("%d syncs after a replay, want 1", n)
	}
	keys := h.rdb.Keys(context.Background(), h.prefix+"webhook:notion:event:*").Val()
	if len(keys) != 1 {
		t.Fatalf("event keys %v, want 1", keys)
	}
	if ttl := h.rdb.PTTL(context.Background(), keys[0]).Val(); ttl < DefaultWebhookEventMaxAge {
		t.Errorf("event id kept for %s, want at least %s", ttl, DefaultWebhookEventMaxAge)
	}
}

// TestNotionWebhookStaleEvents: events older than WebhookEventMaxAge (or
// from the future beyond the clock skew) are refused; one within Notion's
// retry horizon is handled; an event without id or timestamp is malformed.
func TestNotionWebhookStaleEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.NotionWebhookToken = testNotionToken }})
	connID := WorkspaceConnectionID(testWorkspace)
	h.seed(connID, testWorkspace)
	now := h.clock.Now()
	for _, c := range []struct {
		name    string
		body    []byte
		status  int
		outcome WebhookOutcome
	}{
		{"25h old", notionEventAt("e1", now.Add(-25*time.Hour), "page.created", testWorkspace, "page-1"), http.StatusBadRequest, WebhookStale},
		{"1h ahead", notionEventAt("e2", now.Add(time.Hour), "page.created", testWorkspace, "page-2"), http.StatusBadRequest, WebhookStale},
		{"no id", notionEventAt("", now, "page.created", testWorkspace, "page-3"), http.StatusBadRequest, WebhookMalformed},
		{"no timestamp", []byte(`{"id":"e4","type":"page.created","workspace_id":"` + testWorkspace + `","entity":{"id":"page-4","type":"page"}}`), http.StatusBadRequest, WebhookMalformed},
		{"bad timestamp", []byte(`{"id":"e5","timestamp":"yesterday","type":"page.created","workspace_id":"` + testWorkspace + `"}`), http.StatusBadRequest, WebhookMalformed},
		{"last retry, 23h old", notionEventAt("e6", now.Add(-23*time.Hour), "page.created", testWorkspace, "page-6"), http.StatusOK, WebhookEnqueued},
	} {
		r := h.postWebhook(c.body, SignNotion(testNotionToken, c.body))
		if r.status != c.status || !strings.Contains(r.body, string(c.outcome)) {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.body, c.status, c.outcome)
		}
	}
	if n := h.enq.syncCount(connID); n != 1 {
		t.Errorf("%d syncs, want 1 (only the event within the horizon)", n)
	}
}
