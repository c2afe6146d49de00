package jobs

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/notionsync/notionsync/sync/notionclient"
)

func TestPermanentAnswer(t *testing.T) {
	api := func(status int, code string) error {
		return fmt.Errorf("page x: %w", &notionclient.APIError{Status: status, Code: code, Method: "GET", Path: "/v1/pages/x"})
	}
	for _, c := range []struct {
		name       string
		err        error
		withCursor bool
		want       bool
	}{
		{"403 restricted_resource", api(403, "restricted_resource"), false, true},
		{"404 object_not_found", api(404, "object_not_found"), false, true},
		{"400 validation_error", api(400, "validation_error"), false, true},
		{"400 invalid_request", api(400, "invalid_request"), false, true},
		{"400 invalid_request with a cursor", api(400, "invalid_request"), true, true},
		{"400 validation_error with a cursor (a refused cursor)", api(400, "validation_error"), true, false},
		{"403 from a proxy (HTML)", api(403, notionclient.CodeNonJSON), false, false},
		{"400 with an unexpected body", api(400, notionclient.CodeUnexpectedBody), false, false},
		{"409 conflict", api(409, "conflict_error"), false, false},
		{"500", api(500, "internal_server_error"), false, false},
		{"429", &notionclient.RateLimitError{Reason: notionclient.ReasonRetryAfter, Err: &notionclient.APIError{Status: 429, Code: "rate_limited"}}, false, false},
		{"401", api(401, "unauthorized"), false, false},
		{"malformed", fmt.Errorf("page x: %w", ErrMalformed), false, false},
		{"network", errors.New("connection reset"), false, false},
		{"nil", nil, false, false},
	} {
		if got := permanentAnswer(c.err, c.withCursor); got != c.want {
			t.Errorf("%s: permanent %v, want %v", c.name, got, c.want)
		}
	}
	if k := errorKind(&PermanentError{Object: "page x", Err: api(403, "restricted_resource")}); k != ErrorPermanent {
		t.Errorf("PermanentError kind %q", k)
	}
	if k := errorKind(fmt.Errorf("walk: %w", &CapError{Cap: CapBlocks})); k != ErrorPermanent {
		t.Errorf("CapError kind %q", k)
	}
	if k := errorKind(api(500, "internal_server_error")); k != ErrorTransient {
		t.Errorf("500 kind %q", k)
	}
}

func TestStoredErrorRoundTrip(t *testing.T) {
	now := time.UnixMilli(1_764_000_000_123)
	msg, d, ok := decodeError(encodeError(ErrorPermanent, `page x: 403 "quoted" {braces}`, now))
	if !ok || msg != `page x: 403 "quoted" {braces}` || d.Kind != ErrorPermanent || !d.Since.Equal(now) {
		t.Fatalf("round trip: %q %+v %v", msg, d, ok)
	}
	// A value written before kinds existed is its own message.
	for _, legacy := range []string{"database cannot be queried", `{"not":"ours"}`, `{"since":12,"kind":""}`} {
		if msg, _, ok := decodeError(legacy); ok || msg != legacy {
			t.Errorf("legacy %q read as %q (details %v)", legacy, msg, ok)
		}
	}
}
