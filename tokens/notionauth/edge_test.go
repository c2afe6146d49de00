package notionauth

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/notionsync/notionsync/tokens"
)

const sentToken = "nrt_SENTrefreshTOKEN0123456789abcdef"

// reply returns a handler answering status with body and extra headers.
func reply(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestRequestShape(t *testing.T) {
	var got struct {
		method, path, version, contentType, user, pass string
		ok                                             bool
		body                                           map[string]string
	}
	h := func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path = r.Method, r.URL.Path
		got.version, got.contentType = r.Header.Get("Notion-Version"), r.Header.Get("Content-Type")
		got.user, got.pass, got.ok = r.BasicAuth()
		_ = json.NewDecoder(r.Body).Decode(&got.body)
		_, _ = io.WriteString(w, `{"access_token":"ntn_new","refresh_token":"nrt_new","token_type":"bearer"}`)
	}
	for _, version := range []string{"", "2025-09-03"} {
		c := newHandClient(t, h, func(cfg *Config) { cfg.NotionVersion = version })
		g, err := c.Refresh(context.Background(), sentToken)
		if err != nil {
			t.Fatal(err)
		}
		if g.AccessToken != "ntn_new" || g.RefreshToken != "nrt_new" {
			t.Fatalf("grant %+v", g)
		}
		wantVersion := version
		if wantVersion == "" {
			wantVersion = DefaultNotionVersion
		}
		if got.method != http.MethodPost || got.path != "/v1/oauth/token" || got.version != wantVersion ||
			got.contentType != "application/json" || !got.ok || got.user != "cid" || got.pass != clientSecret {
			t.Fatalf("request %+v", got)
		}
		if len(got.body) != 2 || got.body["grant_type"] != "refresh_token" || got.body["refresh_token"] != sentToken {
			t.Fatalf("body %v", got.body)
		}
	}
}

func TestResponseClassification(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		h          http.HandlerFunc
		kind       tokens.ErrorKind
		status     int
		code       string
		desc       string
		retryAfter time.Duration
	}{
		"oauth invalid_grant": {h: reply(400, `{"error":"invalid_grant","error_description":"Invalid refresh token."}`),
			kind: tokens.KindInvalidGrant, status: 400, code: "invalid_grant", desc: "Invalid refresh token."},
		"notion invalid_grant": {h: reply(400, `{"object":"error","status":400,"code":"invalid_grant","message":"Token revoked."}`),
			kind: tokens.KindInvalidGrant, status: 400, code: "invalid_grant", desc: "Token revoked."},
		"401 invalid_client": {h: reply(401, `{"error":"invalid_client"}`),
			kind: tokens.KindInvalidClient, status: 401, code: "invalid_client"},
		"401 notion unauthorized": {h: reply(401, `{"object":"error","status":401,"code":"unauthorized","message":"x"}`),
			kind: tokens.KindInvalidClient, status: 401, code: "unauthorized", desc: "x"},
		"400 invalid_client": {h: reply(400, `{"error":"invalid_client"}`),
			kind: tokens.KindInvalidClient, status: 400, code: "invalid_client"},
		"400 invalid_request": {h: reply(400, `{"error":"invalid_request","error_description":"bad"}`),
			kind: tokens.KindPermanent, status: 400, code: "invalid_request", desc: "bad"},
		"400 missing_version": {h: reply(400, `{"object":"error","status":400,"code":"missing_version","message":"m"}`),
			kind: tokens.KindPermanent, status: 400, code: "missing_version", desc: "m"},
		"html 403": {h: reply(403, "<html><body>Cloudflare: Access denied</body></html>", "Content-Type", "text/html"),
			kind: tokens.KindPermanent, status: 403, desc: "non-JSON response (51 bytes)"},
		"empty 404": {h: reply(404, ""),
			kind: tokens.KindPermanent, status: 404, desc: "non-JSON response (0 bytes)"},
		"429 seconds": {h: reply(429, `{"object":"error","status":429,"code":"rate_limited","message":"slow down"}`, "Retry-After", "30"),
			kind: tokens.KindNotProcessed, status: 429, code: "rate_limited", desc: "slow down", retryAfter: 30 * time.Second},
		"429 http-date": {h: reply(429, "", "Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)),
			kind: tokens.KindNotProcessed, status: 429, desc: "non-JSON response (0 bytes)", retryAfter: 90 * time.Second},
		"429 additional_data": {h: reply(429, `{"object":"error","status":429,"code":"rate_limited","message":"m","additional_data":{"retry_after":12}}`),
			kind: tokens.KindNotProcessed, status: 429, code: "rate_limited", desc: "m", retryAfter: 12 * time.Second},
		"408": {h: reply(408, ""), kind: tokens.KindNotProcessed, status: 408, desc: "non-JSON response (0 bytes)"},
		"500 json": {h: reply(500, `{"object":"error","status":500,"code":"internal_server_error","message":"oops"}`),
			kind: tokens.KindOutcomeUnknown, status: 500, code: "internal_server_error", desc: "oops"},
		"502 html": {h: reply(502, "<html>Bad gateway</html>"),
			kind: tokens.KindOutcomeUnknown, status: 502, desc: "non-JSON response (24 bytes)"},
		"503 retry-after": {h: reply(503, "", "Retry-After", "5"),
			kind: tokens.KindOutcomeUnknown, status: 503, desc: "non-JSON response (0 bytes)", retryAfter: 5 * time.Second},
		"500 invalid_grant stays unknown": {h: reply(500, `{"error":"invalid_grant"}`),
			kind: tokens.KindOutcomeUnknown, status: 500, code: "invalid_grant"},
		"200 without access_token": {h: reply(200, `{"refresh_token":"nrt_x","token_type":"bearer"}`),
			kind: tokens.KindOutcomeUnknown, status: 200, desc: "token response without access_token"},
		"200 html": {h: reply(200, "<html>maintenance</html>"),
			kind: tokens.KindOutcomeUnknown, status: 200, desc: "non-JSON token response (24 bytes)"},
		"200 null": {h: reply(200, "null"),
			kind: tokens.KindOutcomeUnknown, status: 200, desc: "non-JSON token response (4 bytes)"},
		"200 numeric refresh_token": {h: reply(200, `{"access_token":"ntn_x","refresh_token":42}`),
			kind: tokens.KindOutcomeUnknown, status: 200, desc: "token response with a malformed refresh_token"},
		"302 not followed": {h: reply(302, "", "Location", "/elsewhere"),
			kind: tokens.KindPermanent, status: 302, desc: "non-JSON response (0 bytes)"},
	} {
		t.Run(name, func(t *testing.T) {
			c := newHandClient(t, tc.h, func(cfg *Config) { cfg.Now = func() time.Time { return now } })
			_, err := c.Refresh(context.Background(), sentToken)
			pe := providerError(t, err, tc.kind)
			if pe.StatusCode != tc.status || pe.Code != tc.code || pe.Description != tc.desc || pe.RetryAfter != tc.retryAfter {
				t.Fatalf("got status %d code %q desc %q retry-after %v\nwant status %d code %q desc %q retry-after %v",
					pe.StatusCode, pe.Code, pe.Description, pe.RetryAfter, tc.status, tc.code, tc.desc, tc.retryAfter)
			}
		})
	}
}

func TestTokenResponseDecoding(t *testing.T) {
	for name, tc := range map[string]struct {
		body string
		want tokens.Grant
	}{
		"refresh absent":   {`{"access_token":"ntn_a"}`, tokens.Grant{AccessToken: "ntn_a"}},
		"refresh null":     {`{"access_token":"ntn_a","refresh_token":null}`, tokens.Grant{AccessToken: "ntn_a"}},
		"expires_in":       {`{"access_token":"ntn_a","refresh_token":"nrt_b","expires_in":3600}`, tokens.Grant{AccessToken: "ntn_a", RefreshToken: "nrt_b", ExpiresIn: time.Hour}},
		"expires_in float": {`{"access_token":"ntn_a","expires_in":1.5}`, tokens.Grant{AccessToken: "ntn_a", ExpiresIn: 1500 * time.Millisecond}},
		"expires_in text":  {`{"access_token":"ntn_a","expires_in":"60"}`, tokens.Grant{AccessToken: "ntn_a", ExpiresIn: time.Minute}},
		"expires_in junk":  {`{"access_token":"ntn_a","refresh_token":"nrt_b","expires_in":{"x":1}}`, tokens.Grant{AccessToken: "ntn_a", RefreshToken: "nrt_b"}},
		"expires_in <0":    {`{"access_token":"ntn_a","expires_in":-5}`, tokens.Grant{AccessToken: "ntn_a"}},
		"expires_in huge":  {`{"access_token":"ntn_a","expires_in":1e300}`, tokens.Grant{AccessToken: "ntn_a", ExpiresIn: maxExpiresIn}},
		"odd side fields":  {`{"access_token":"ntn_a","refresh_token":"nrt_b","bot_id":7,"owner":"x","workspace_icon":{}}`, tokens.Grant{AccessToken: "ntn_a", RefreshToken: "nrt_b"}},
	} {
		t.Run(name, func(t *testing.T) {
			c := newHandClient(t, reply(200, tc.body))
			g, err := c.Refresh(context.Background(), sentToken)
			if err != nil {
				t.Fatal(err)
			}
			if *g != tc.want {
				t.Fatalf("grant %+v, want %+v", *g, tc.want)
			}
		})
	}
}

func TestTruncatedSuccessBodyIsOutcomeUnknown(t *testing.T) {
	c := newHandClient(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = io.WriteString(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"+
			`{"access_token":"ntn_a","refresh_token":"nrt_`)
		_ = buf.Flush()
	})
	_, err := c.Refresh(context.Background(), sentToken)
	pe := providerError(t, err, tokens.KindOutcomeUnknown)
	if pe.StatusCode != 200 || pe.Err == nil {
		t.Fatalf("error %+v", pe)
	}
}

func TestOversizedSuccessBodyIsOutcomeUnknown(t *testing.T) {
	c := newHandClient(t, func(w http.ResponseWriter, r *http.Request) {
		bw := bufio.NewWriter(w)
		_, _ = io.WriteString(bw, `{"access_token":"ntn_a","padding":"`)
		_, _ = io.WriteString(bw, strings.Repeat("x", maxResponseBody))
		_, _ = io.WriteString(bw, `"}`)
		_ = bw.Flush()
	})
	_, err := c.Refresh(context.Background(), sentToken)
	providerError(t, err, tokens.KindOutcomeUnknown)
}

func TestRedirectsAreNeverFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/oauth/token", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		_, _ = io.WriteString(w, `{"access_token":"ntn_a"}`)
	})
	// The configured client would follow (CheckRedirect nil).
	c := newHandClient(t, mux.ServeHTTP)
	_, err := c.Refresh(context.Background(), sentToken)
	if pe := providerError(t, err, tokens.KindPermanent); pe.StatusCode != 307 {
		t.Fatalf("error %+v", pe)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("redirect followed %d times", n)
	}
}

// TestErrorsNeverContainSecrets drives every error path with a server that
// echoes the sent token, the client secret and another token everywhere it
// can.
func TestErrorsNeverContainSecrets(t *testing.T) {
	const other = "ntn_OTHERaccessTOKEN0123456789"
	echo := sentToken + " " + clientSecret + " " + other
	handlers := map[string]http.HandlerFunc{
		"oauth desc":    reply(400, fmt.Sprintf(`{"error":"invalid_grant","error_description":%q}`, echo)),
		"oauth code":    reply(400, fmt.Sprintf(`{"error":%q}`, sentToken)),
		"notion msg":    reply(400, fmt.Sprintf(`{"object":"error","status":400,"code":"invalid_grant","message":%q}`, echo)),
		"notion code":   reply(400, fmt.Sprintf(`{"object":"error","code":%q}`, clientSecret)),
		"401":           reply(401, fmt.Sprintf(`{"error":"invalid_client","error_description":%q}`, echo)),
		"html 403":      reply(403, "<html>"+echo+"</html>"),
		"429":           reply(429, fmt.Sprintf(`{"code":"rate_limited","message":%q}`, echo), "Retry-After", echo),
		"500":           reply(500, fmt.Sprintf(`{"code":"internal_server_error","message":%q}`, echo)),
		"200 malformed": reply(200, fmt.Sprintf(`{"refresh_token":%q,"error":%q}`, sentToken, echo)),
		"200 not json":  reply(200, echo),
		"long desc": reply(400, fmt.Sprintf(`{"error":"invalid_grant","error_description":%q}`,
			strings.Repeat("x", maxDescriptionLen-10)+sentToken)),
		"dropped": func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		},
	}
	ctx := context.Background()
	for name, h := range handlers {
		t.Run(name, func(t *testing.T) {
			c := newHandClient(t, h)
			calls := map[string]error{}
			_, calls["refresh"] = c.Refresh(ctx, sentToken)
			_, calls["exchange"] = c.Exchange(ctx, sentToken, callback)
			calls["revoke"] = c.Revoke(ctx, sentToken)
			_, calls["introspect"] = c.Introspect(ctx, sentToken)
			for call, err := range calls {
				if err == nil {
					if strings.HasPrefix(name, "200") && call == "revoke" {
						continue // a 2xx revoke succeeds whatever its body
					}
					t.Fatalf("%s: no error", call)
				}
				for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
					for _, secret := range []string{sentToken, clientSecret, other} {
						if strings.Contains(text, secret) {
							t.Fatalf("%s: error text holds a secret: %s", call, text)
						}
					}
				}
			}
		})
	}
}

func TestKindFor(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
		want   tokens.ErrorKind
	}{
		{400, "invalid_grant", tokens.KindInvalidGrant},
		{401, "invalid_grant", tokens.KindInvalidGrant},
		{400, "invalid_client", tokens.KindInvalidClient},
		{401, "", tokens.KindInvalidClient},
		{400, "unsupported_grant_type", tokens.KindPermanent},
		{403, "", tokens.KindPermanent},
		{409, "conflict_error", tokens.KindPermanent},
		{429, "invalid_grant", tokens.KindNotProcessed},
		{408, "", tokens.KindNotProcessed},
		{500, "invalid_grant", tokens.KindOutcomeUnknown},
		{529, "service_overload", tokens.KindOutcomeUnknown},
		{700, "", tokens.KindOutcomeUnknown},
		{0, "", tokens.KindOutcomeUnknown},
		{304, "", tokens.KindPermanent},
	} {
		if got := kindFor(tc.status, tc.code); got != tc.want {
			t.Errorf("kindFor(%d, %q) = %v, want %v", tc.status, tc.code, got, tc.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-3", 0},
		{" 42 ", 42 * time.Second},
		{"450", 450 * time.Second},
		{"99999999999999999", maxRetryAfter},
		{"1.5", 0},
		{"soon", 0},
		{now.Add(2 * time.Minute).Format(http.TimeFormat), 2 * time.Minute},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(72 * time.Hour).Format(http.TimeFormat), maxRetryAfter},
		{"Sun, 01 Jun 2025 12:00:30 GMT", 30 * time.Second},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestRedactorClean(t *testing.T) {
	r := redactor{secrets: []string{sentToken, clientSecret, ""}}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain message", "plain message"},
		{"token " + sentToken + " is dead", "token [redacted] is dead"},
		{"rotated to nrt_abcdefgh12345678.", "rotated to [redacted]."},
		{"short nrt_abc stays", "short nrt_abc stays"},
		{"line\nbreak\x00", "line break "},
		{"bad \xff utf8", "bad \uFFFD utf8"},
	} {
		if got := r.clean(tc.in, 100); got != tc.want {
			t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := r.clean(strings.Repeat("é", 100), 11); got != strings.Repeat("é", 5)+"…" {
		t.Errorf("truncation cut a rune: %q", got)
	}
	// A replacement that recombines into the secret withholds the text.
	weird := redactor{secrets: []string{"d]["}}
	if got := weird.clean("d][d][", 100); strings.Contains(got, "d][") {
		t.Errorf("clean leaked the secret: %q", got)
	}
}
