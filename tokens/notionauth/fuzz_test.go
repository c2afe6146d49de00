package notionauth

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/notionsync/notionsync/tokens"
)

// FuzzDecodeTokenResponse feeds arbitrary token-endpoint responses to the
// decoding and classification: it must never panic, must return exactly one
// of a grant or an error, must classify by the documented rules and must
// never put the sent token or the client secret into an error.
//
//	go test -run='^$' -fuzz=FuzzDecodeTokenResponse ./tokens/notionauth/
func FuzzDecodeTokenResponse(f *testing.F) {
	echo := sentToken + " " + clientSecret
	for _, seed := range []struct {
		status     int
		retryAfter string
		body       string
	}{
		{200, "", `{"access_token":"ntn_a","token_type":"bearer","refresh_token":"nrt_b","bot_id":"b","workspace_id":"w","workspace_name":"n","workspace_icon":null,"owner":{"type":"user"},"duplicated_template_id":null}`},
		{200, "", `{"access_token":"ntn_a","refresh_token":null,"expires_in":3600}`},
		{200, "", `{"access_token":"ntn_a","expires_in":"1e400"}`},
		{200, "", `{"access_token":"","refresh_token":"` + sentToken + `"}`},
		{200, "", `{"access_token":["ntn_a"]}`},
		{200, "", `null`},
		{200, "", `<html>` + echo + `</html>`},
		{400, "", `{"error":"invalid_grant","error_description":"` + echo + `"}`},
		{400, "", `{"object":"error","status":400,"code":"invalid_grant","message":"` + echo + `"}`},
		{400, "", `{"error":"` + sentToken + `"}`},
		{401, "", `{"error":"invalid_client"}`},
		{403, "", `<html>` + echo + `</html>`},
		{429, "30", `{"object":"error","code":"rate_limited","additional_data":{"retry_after":"9e99"}}`},
		{429, "Sun, 01 Jun 2025 12:00:30 GMT", ``},
		{500, "", `{"code":"internal_server_error","message":"\u0000` + echo + `"}`},
		{302, "", ``},
		{-1, "-1", `{}`},
	} {
		f.Add(seed.status, seed.retryAfter, []byte(seed.body))
	}
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	red := redactor{secrets: []string{sentToken, clientSecret}}
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		res := &rawResponse{status: status, header: http.Header{"Retry-After": {retryAfter}}, body: body}
		ex, pe := interpretTokenResponse(res, red, now)
		if (ex == nil) == (pe == nil) {
			t.Fatalf("grant %v and error %v", ex, pe)
		}
		if ex != nil {
			if !is2xx(status) || ex.AccessToken == "" || ex.ExpiresIn < 0 || ex.ExpiresIn > maxExpiresIn {
				t.Fatalf("status %d gave grant %+v", status, ex.Grant)
			}
			return
		}
		switch {
		case is2xx(status), status >= 500:
			if pe.Kind != tokens.KindOutcomeUnknown {
				t.Fatalf("status %d: kind %v", status, pe.Kind)
			}
		case status == http.StatusTooManyRequests:
			if pe.Kind != tokens.KindNotProcessed {
				t.Fatalf("429: kind %v", pe.Kind)
			}
		}
		if pe.Kind == tokens.KindInvalidGrant && (status < 400 || status >= 500) {
			t.Fatalf("status %d classified invalid_grant", status)
		}
		if pe.RetryAfter < 0 || pe.RetryAfter > maxRetryAfter {
			t.Fatalf("RetryAfter %v", pe.RetryAfter)
		}
		if len(pe.Description) > maxDescriptionLen+len("…") || len(pe.Code) > maxCodeLen+len("…") ||
			!utf8.ValidString(pe.Description) || !utf8.ValidString(pe.Code) {
			t.Fatalf("unbounded or invalid text: code %q description %q", pe.Code, pe.Description)
		}
		for _, text := range []string{pe.Error(), fmt.Sprintf("%+v", pe)} {
			if strings.Contains(text, sentToken) || strings.Contains(text, clientSecret) {
				t.Fatalf("error leaks a secret: %s", text)
			}
		}
	})
}
