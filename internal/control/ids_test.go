package control

import (
	"net/http"
	"strings"
	"testing"

	"github.com/notionsync/notionsync/tokens"
)

// TestIDMessagesMatchValidateID: every answer that tells a caller what a
// connection id may hold states tokens.IDRule, and never promises a
// character ValidateID refuses ('.' was promised and refused).
func TestIDMessagesMatchValidateID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	const dotted = "tenant.one"
	if tokens.ValidateID(dotted) == nil {
		t.Fatalf("ValidateID accepts %q; this test assumes '.' is refused", dotted)
	}
	p := h.fake.SeedConnection("")
	answers := map[string]response{
		"API path id": h.api(http.MethodGet, "/api/v1/connections/"+dotted, nil),
		"import body": h.api(http.MethodPost, "/api/v1/connections/import",
			ImportRequest{ConnectionID: dotted, AccessToken: p.AccessToken, RefreshToken: p.RefreshToken}),
		"OAuth start link": h.connect("connection_id=" + dotted),
	}
	for name, r := range answers {
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400; body %s", name, r.status, r.body)
		}
		body := strings.ReplaceAll(r.body, "&#39;", "'") // the HTML page escapes quotes
		if !strings.Contains(body, tokens.IDRule) {
			t.Errorf("%s: answer does not state the id rule %q: %s", name, tokens.IDRule, r.body)
		}
		if strings.Contains(body, "'.'") {
			t.Errorf("%s: answer promises '.', which ValidateID refuses: %s", name, r.body)
		}
	}
	if h.connectionCount() != 0 {
		t.Error("a refused id stored a connection")
	}
}
