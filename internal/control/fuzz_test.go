package control

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/notionsync/notionsync/tokens"
)

func FuzzParseCallback(f *testing.F) {
	for _, seed := range []string{
		"code=abc&state=" + strings.Repeat("A", stateLen),
		"error=access_denied&state=x",
		"state=a&state=b",
		"code=%zz",
		"a=1;b=2",
		"",
		"state=" + newState() + "&code=c&error=",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := parseCallback(raw)
		if err != nil {
			return
		}
		if len(p.State)+len(p.Code)+len(p.Error) > len(raw) {
			t.Errorf("parameters longer than the query: %+v", p)
		}
		if wellFormedState(p.State) && len(p.State) != stateLen {
			t.Errorf("state %q accepted with the wrong length", p.State)
		}
		code := oauthErrorCode(p.Error)
		if code != "unknown" && strings.Trim(code, "abcdefghijklmnopqrstuvwxyz_") != "" {
			t.Errorf("error code %q would be shown unfiltered", code)
		}
	})
}

func FuzzParseNotionWebhook(f *testing.F) {
	for _, seed := range []string{
		string(notionEvent("page.content_updated", testWorkspace, "page-1")),
		`{"verification_token":"secret_abc"}`,
		`{"verification_token":""}`,
		`{"verification_token":"a","type":"page.created"}`,
		`{"type":"page.created","workspace_id":"a:b","entity":{"id":"x y"}}`,
		`{"type":"data_source.schema_updated","workspace_id":"w","entity":null}`,
		`[]`, `null`, ``, `{`, `{"type":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := parseNotionWebhook(body)
		if err != nil {
			return
		}
		if ev.VerificationToken != "" {
			if ev.Type != "" || strings.ContainsAny(ev.VerificationToken, " \n\r\t") {
				t.Errorf("verification request %+v", ev)
			}
			return
		}
		// Identifiers go into Redis keys and connection ids.
		for _, id := range []string{ev.Type, ev.WorkspaceID, ev.EntityID, ev.EntityType} {
			if strings.ContainsAny(id, ": \n\r\t*{}") || len(id) > 64 {
				t.Errorf("unsafe identifier %q in %+v", id, ev)
			}
		}
		if ev.WorkspaceID != "" {
			if err := tokens.ValidateID(WorkspaceConnectionID(ev.WorkspaceID)); err != nil {
				t.Errorf("workspace %q makes an invalid connection id: %v", ev.WorkspaceID, err)
			}
		}
		_ = syncsOn(ev.Type)
	})
}

func FuzzDecodeImport(f *testing.F) {
	for _, seed := range []string{
		`{"connection_id":"c1","access_token":"ntn_a","refresh_token":"nrt_b","expires_in":3600,"meta":{"k":"v"}}`,
		`{"connection_id":"c1","access_token":"ntn_a","refresh_token":"nrt_b","meta":{"k":1}}`,
		`{"connection_id":"c 1"}`, `{}`, `[]`, `{"expires_in":-1}`, `{"expires_in":1e40}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, msg := decodeImport(bytes.NewReader(body))
		if msg != "" {
			for _, secret := range []string{req.AccessToken, req.RefreshToken} {
				if len(secret) >= 8 && strings.Contains(msg, secret) {
					t.Errorf("message %q quotes a token", msg)
				}
			}
			return
		}
		if tokens.ValidateID(req.ConnectionID) != nil || req.AccessToken == "" || req.RefreshToken == "" || req.ExpiresIn < 0 {
			t.Errorf("accepted %+v", req)
		}
	})
}

// Start parameters come from anyone: whatever they hold, a link parses to a
// positive expiry and a full-length MAC, or not at all, and never checks
// out against a connection without the key.
func FuzzReconnectLinkParams(f *testing.F) {
	for _, seed := range []string{
		"connection_id=c1&expires=4102444800&sig=" + strings.Repeat("A", 43),
		"connection_id=c1&expires=-1&sig=x",
		"expires=1&expires=2&sig=" + strings.Repeat("A", 43),
		"sig=" + strings.Repeat("_", 44),
		"",
	} {
		f.Add(seed)
	}
	s := &Server{linkKey: deriveLinkKey(testAdminToken), now: time.Now}
	c := &tokens.Connection{ID: "c1", LinkNonce: "0123456789abcdef0123456789abcdef"}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, ok := parseLinkParams(q)
		if !ok {
			return
		}
		if p.expires <= 0 || len(p.sig) != linkMACLen {
			t.Errorf("accepted %+v", p)
		}
		if s.checkLink(c, p) {
			t.Errorf("a link made without the key checks out: %q", raw)
		}
	})
}
