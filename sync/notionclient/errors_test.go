package notionclient

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/notionsync/notionsync/tokens"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParseAPIError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		status  int
		headers http.Header
		body    string
		want    APIError
	}{
		{
			name:   "notion error with body request id",
			status: 404, headers: http.Header{"X-Notion-Request-Id": {"hdr"}},
			body: `{"object":"error","status":404,"code":"object_not_found","message":"gone","request_id":"body"}`,
			want: APIError{Status: 404, Code: "object_not_found", Message: "gone", RequestID: "body"},
		},
		{
			name:   "header request id when body has none",
			status: 400, headers: http.Header{"X-Notion-Request-Id": {"hdr"}},
			body: `{"object":"error","status":400,"code":"validation_error","message":"bad"}`,
			want: APIError{Status: 400, Code: "validation_error", Message: "bad", RequestID: "hdr"},
		},
		{
			name:   "429 header and additional_data: the larger wins",
			status: 429, headers: http.Header{"Retry-After": {"5"}},
			body: `{"object":"error","status":429,"code":"rate_limited","message":"slow","additional_data":{"retry_after":12,"rate_limit_reason":"workspace_rate_limit"}}`,
			want: APIError{Status: 429, Code: "rate_limited", Message: "slow", RetryAfter: 12 * time.Second, RateLimitReason: "workspace_rate_limit",
				AdditionalData: []byte(`{"retry_after":12,"rate_limit_reason":"workspace_rate_limit"}`)},
		},
		{
			name:   "429 without any Retry-After defaults to 1s",
			status: 429, headers: http.Header{},
			body: `{"object":"error","status":429,"code":"rate_limited","message":"slow"}`,
			want: APIError{Status: 429, Code: "rate_limited", Message: "slow", RetryAfter: time.Second},
		},
		{
			name:   "529 with Retry-After 0 waits 1s",
			status: 529, headers: http.Header{"Retry-After": {"0"}},
			body: `{"object":"error","status":529,"code":"service_overload","message":"busy"}`,
			want: APIError{Status: 529, Code: "service_overload", Message: "busy", RetryAfter: time.Second},
		},
		{
			name:   "Retry-After as HTTP date",
			status: 503, headers: http.Header{"Retry-After": {testNow.Add(90 * time.Second).Format(http.TimeFormat)}},
			body: `{"object":"error","status":503,"code":"service_unavailable","message":"later"}`,
			want: APIError{Status: 503, Code: "service_unavailable", Message: "later", RetryAfter: 90 * time.Second},
		},
		{
			name:   "absurd Retry-After capped",
			status: 429, headers: http.Header{"Retry-After": {"99999999999"}},
			body: `{"object":"error","status":429,"code":"rate_limited","message":"x","additional_data":{"retry_after":"1e300"}}`,
			want: APIError{Status: 429, Code: "rate_limited", Message: "x", RetryAfter: maxRetryAfter, AdditionalData: []byte(`{"retry_after":"1e300"}`)},
		},
		{
			name:   "string retry_after",
			status: 429, headers: http.Header{},
			body: `{"object":"error","status":429,"code":"rate_limited","message":"x","additional_data":{"retry_after":"7"}}`,
			want: APIError{Status: 429, Code: "rate_limited", Message: "x", RetryAfter: 7 * time.Second, AdditionalData: []byte(`{"retry_after":"7"}`)},
		},
		{
			name:   "HTML",
			status: 403, headers: http.Header{"Content-Type": {"text/html"}},
			body: `<html>blocked</html>`,
			want: APIError{Status: 403, Code: CodeNonJSON, Message: `non-JSON 403 response (20 bytes, content-type "text/html")`},
		},
		{
			name:   "empty body",
			status: 502, headers: http.Header{},
			body: ``,
			want: APIError{Status: 502, Code: CodeNonJSON, Message: `non-JSON 502 response (0 bytes, content-type "")`},
		},
		{
			name:   "JSON that is not Notion's error",
			status: 400, headers: http.Header{},
			body: `{"error":"invalid_grant"}`,
			want: APIError{Status: 400, Code: CodeUnexpectedBody, Message: "unexpected 400 response (25 bytes of JSON)"},
		},
		{
			name:   "null additional_data",
			status: 409, headers: http.Header{},
			body: `{"object":"error","status":409,"code":"conflict_error","message":"c","additional_data":null}`,
			want: APIError{Status: 409, Code: "conflict_error", Message: "c"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseAPIError(tc.status, tc.headers, []byte(tc.body), testNow)
			if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestParseAPIErrorTruncatesMessage(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 2000)
	got := parseAPIError(400, http.Header{}, []byte(`{"object":"error","code":"validation_error","message":"`+long+`"}`), testNow)
	if len(got.Message) > maxMessage+3 || !utf8.ValidString(got.Message) || !strings.HasSuffix(got.Message, "...") {
		t.Errorf("message of %d bytes, valid UTF-8 %v", len(got.Message), utf8.ValidString(got.Message))
	}
}

func TestAPIErrorText(t *testing.T) {
	t.Parallel()
	e := &APIError{Status: 429, Code: "rate_limited", Message: "slow", RequestID: "r1", RateLimitReason: "x", Method: "GET", Path: "/v1/pages/p"}
	if got, want := e.Error(), "notion: GET /v1/pages/p: 429 rate_limited: slow (rate_limit_reason x) (request_id r1)"; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got, want := (&APIError{Status: 502}).Error(), "notion: 502 Bad Gateway"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAPIErrorRetryable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		reason string
		want   bool
	}{
		{400, "", false}, {401, "", false}, {403, "", false}, {404, "", false},
		{409, "", true}, {429, "", true}, {429, RateLimitReasonBlocked, false},
		{500, "", true}, {503, "", true}, {529, "", true},
	} {
		if got := (&APIError{Status: tc.status, RateLimitReason: tc.reason}).Retryable(); got != tc.want {
			t.Errorf("%d %q: Retryable = %v", tc.status, tc.reason, got)
		}
	}
}

func TestRetryAfterHelper(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		d    time.Duration
		ok   bool
	}{
		{"rate limit", fmt.Errorf("wrapped: %w", &RateLimitError{RetryAfter: 3 * time.Second}), 3 * time.Second, true},
		{"503 with Retry-After", &APIError{Status: 503, RetryAfter: 5 * time.Second}, 5 * time.Second, true},
		{"400 with Retry-After", &APIError{Status: 400, RetryAfter: 5 * time.Second}, 0, false},
		{"tokens transient", fmt.Errorf("x: %w", &tokens.TransientError{RetryAfter: 7 * time.Second}), 7 * time.Second, true},
		{"other", errors.New("boom"), 0, false},
		{"nil", nil, 0, false},
	} {
		d, ok := RetryAfter(tc.err)
		if d != tc.d || ok != tc.ok {
			t.Errorf("%s: RetryAfter = %s, %v; want %s, %v", tc.name, d, ok, tc.d, tc.ok)
		}
	}
	if IsNotFound(nil) || IsUnauthorized(errors.New("401")) {
		t.Error("helpers match non-APIErrors")
	}
}

func TestIsRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/v1/pages/x", true},
		{"HEAD", "/v1/pages/x", true},
		{"POST", "/v1/search", true},
		{"POST", "/v1/search/", true},
		{"POST", "/v1/databases/abc/query", true},
		{"POST", "/v1/data_sources/abc/query", true},
		{"POST", "/v1/databases//query", false},
		{"POST", "/v1/databases/abc/x/query", false},
		{"POST", "/v1/databases", false},
		{"POST", "/v1/pages", false},
		{"POST", "/v1/comments", false},
		{"PATCH", "/v1/pages/x", false},
		{"PATCH", "/v1/blocks/x/children", false},
		{"DELETE", "/v1/blocks/x", false},
		{"PUT", "/v1/search", false},
	} {
		if got := isRead(tc.method, tc.path); got != tc.want {
			t.Errorf("isRead(%s %s) = %v", tc.method, tc.path, got)
		}
	}
}

func TestRateLimitErrorText(t *testing.T) {
	t.Parallel()
	e := &RateLimitError{ConnID: "c1", RetryAfter: 1500 * time.Millisecond, Reason: ReasonLocalBudget}
	if got, want := e.Error(), "notionclient: connection c1 rate limited (local_budget), retry in 1.5s"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func FuzzParseAPIError(f *testing.F) {
	f.Add(429, "3", `{"object":"error","status":429,"code":"rate_limited","message":"m","request_id":"r","additional_data":{"retry_after":3}}`)
	f.Add(403, "", `<html></html>`)
	f.Add(500, "Wed, 21 Oct 2015 07:28:00 GMT", `{"object":"error"}`)
	f.Add(404, "-1", `{"additional_data":{"retry_after":"NaN"},"code":"x"}`)
	f.Add(429, "1e400", `{"object":"error","additional_data":[1,2]}`)
	f.Fuzz(func(t *testing.T, status int, retryAfter, body string) {
		h := http.Header{"Retry-After": {retryAfter}}
		e := parseAPIError(status, h, []byte(body), testNow)
		if e.Status != status || e.Code == "" {
			t.Fatalf("status %d code %q", e.Status, e.Code)
		}
		if e.RetryAfter < 0 || e.RetryAfter > maxRetryAfter {
			t.Fatalf("RetryAfter %s out of range", e.RetryAfter)
		}
		if (status == 429 || status == 529) && e.RetryAfter < time.Second {
			t.Fatalf("429 with RetryAfter %s", e.RetryAfter)
		}
		if len(e.Message) > 2*maxMessage || !utf8.ValidString(e.Message) || !utf8.ValidString(e.Code) {
			t.Fatalf("message of %d bytes", len(e.Message))
		}
		if e.Code == CodeNonJSON && len(body) > 16 && strings.Contains(e.Message, body) {
			t.Fatal("non-JSON body copied into the message")
		}
		_ = e.Error()
	})
}
