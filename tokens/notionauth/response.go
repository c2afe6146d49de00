package notionauth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/notionsync/notionsync/tokens"
)

// Bounds on what a response can make us report or wait.
const (
	maxDescriptionLen = 300
	maxCodeLen        = 64
	maxRetryAfter     = 24 * time.Hour
	maxExpiresIn      = 10 * 365 * 24 * time.Hour
)

func is2xx(status int) bool { return status >= 200 && status < 300 }

// interpretTokenResponse turns a token-endpoint response into a grant or a
// classified error. A 2xx that cannot be read or lacks an access token is
// KindOutcomeUnknown: the grant may have been committed.
func interpretTokenResponse(res *rawResponse, red redactor, now time.Time) (*Exchange, *tokens.ProviderError) {
	if !is2xx(res.status) {
		return nil, errorFromResponse(res, red, now)
	}
	unknown := func(desc string, err error) *tokens.ProviderError {
		return &tokens.ProviderError{Kind: tokens.KindOutcomeUnknown, StatusCode: res.status, Description: desc, Err: err}
	}
	switch {
	case res.readErr != nil:
		return nil, unknown("reading the token response failed", res.readErr)
	case res.truncated:
		return nil, unknown(fmt.Sprintf("token response larger than %d bytes", maxResponseBody), nil)
	}
	ex, problem := decodeTokenResponse(res.body)
	if problem != "" {
		return nil, unknown(problem, nil)
	}
	return ex, nil
}

// decodeTokenResponse parses a successful token response. It is lenient with
// everything but the tokens: a rotated refresh token must not be thrown away
// because a side field is odd. problem is non-empty when the response cannot
// be used.
func decodeTokenResponse(body []byte) (ex *Exchange, problem string) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(body, &f); err != nil || f == nil {
		return nil, fmt.Sprintf("non-JSON token response (%d bytes)", len(body))
	}
	access, ok := jsonString(f["access_token"])
	if !ok || access == "" {
		return nil, "token response without access_token"
	}
	ex = &Exchange{Grant: tokens.Grant{AccessToken: access}}
	if raw, present := f["refresh_token"]; present && !isNull(raw) {
		rt, ok := jsonString(raw)
		if !ok {
			return nil, "token response with a malformed refresh_token"
		}
		ex.RefreshToken = rt
	}
	ex.ExpiresIn = parseExpiresIn(f["expires_in"])
	ex.BotID, _ = jsonString(f["bot_id"])
	ex.WorkspaceID, _ = jsonString(f["workspace_id"])
	ex.WorkspaceName, _ = jsonString(f["workspace_name"])
	ex.WorkspaceIcon, _ = jsonString(f["workspace_icon"])
	ex.DuplicatedTemplateID, _ = jsonString(f["duplicated_template_id"])
	if raw, present := f["owner"]; present && !isNull(raw) {
		ex.Owner = raw
	}
	return ex, ""
}

// errorFromResponse classifies a non-2xx response. Either error shape is
// accepted: OAuth {"error","error_description"} or Notion
// {"object":"error","code","message"}. A body that is not JSON is classified
// by status alone.
func errorFromResponse(res *rawResponse, red redactor, now time.Time) *tokens.ProviderError {
	pe := &tokens.ProviderError{
		StatusCode: res.status,
		RetryAfter: parseRetryAfter(res.header.Get("Retry-After"), now),
		Err:        res.readErr,
	}
	code, desc, bodyRetryAfter, isJSON := parseErrorBody(res.body)
	switch {
	case res.truncated:
		code, desc = "", fmt.Sprintf("response larger than %d bytes", maxResponseBody)
	case !isJSON:
		code, desc = "", fmt.Sprintf("non-JSON response (%d bytes)", len(res.body))
	}
	if pe.RetryAfter == 0 {
		pe.RetryAfter = bodyRetryAfter
	}
	pe.Kind = kindFor(res.status, code)
	pe.Code = red.clean(code, maxCodeLen)
	pe.Description = red.clean(desc, maxDescriptionLen)
	return pe
}

// kindFor maps a non-2xx status and the provider's error code to a kind, as
// tokens.ErrorKind documents.
func kindFor(status int, code string) tokens.ErrorKind {
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		// Rejected before processing (408: the server gave up reading the request).
		return tokens.KindNotProcessed
	case status >= 500 || status < 100:
		return tokens.KindOutcomeUnknown
	case status >= 400 && code == "invalid_grant":
		return tokens.KindInvalidGrant
	case status >= 400 && (code == "invalid_client" || status == http.StatusUnauthorized):
		return tokens.KindInvalidClient
	default:
		// Other 4xx, and redirects (never followed).
		return tokens.KindPermanent
	}
}

// parseErrorBody extracts the error code, description and Notion's
// additional_data.retry_after from either error shape.
func parseErrorBody(body []byte) (code, desc string, retryAfter time.Duration, isJSON bool) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(body, &f); err != nil || f == nil {
		return "", "", 0, false
	}
	code, _ = jsonString(f["error"])
	if code == "" {
		code, _ = jsonString(f["code"])
	}
	desc, _ = jsonString(f["error_description"])
	if desc == "" {
		desc, _ = jsonString(f["message"])
	}
	var add struct {
		RetryAfter json.RawMessage `json:"retry_after"`
	}
	if raw, ok := f["additional_data"]; ok && json.Unmarshal(raw, &add) == nil {
		retryAfter = min(parseSeconds(add.RetryAfter), maxRetryAfter)
	}
	return code, desc, retryAfter, true
}

func decodeIntrospection(res *rawResponse) (bool, error) {
	var body struct {
		Active *bool `json:"active"`
	}
	if res.readErr != nil || res.truncated || json.Unmarshal(res.body, &body) != nil || body.Active == nil {
		return false, &tokens.ProviderError{Kind: tokens.KindOutcomeUnknown, StatusCode: res.status,
			Description: fmt.Sprintf("malformed introspection response (%d bytes)", len(res.body)), Err: res.readErr}
	}
	return *body.Active, nil
}

// parseRetryAfter reads Retry-After as integer seconds or an HTTP-date,
// capped at maxRetryAfter; 0 when absent, invalid or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return min(time.Duration(min(n, int64(maxRetryAfter/time.Second)))*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

// parseExpiresIn reads expires_in (seconds, as a number or a numeric string),
// capped at maxExpiresIn; 0 when absent, invalid or not positive.
func parseExpiresIn(raw json.RawMessage) time.Duration {
	return min(parseSeconds(raw), maxExpiresIn)
}

// parseSeconds reads a positive number of seconds from a JSON number or a
// numeric string. Values too large for a Duration saturate.
func parseSeconds(raw json.RawMessage) time.Duration {
	if len(raw) == 0 {
		return 0
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		s, ok := jsonString(raw)
		if !ok {
			return 0
		}
		if f, err = strconv.ParseFloat(strings.TrimSpace(s), 64); err != nil {
			return 0
		}
	}
	if !(f > 0) { // also NaN
		return 0
	}
	if f >= float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(f * float64(time.Second))
}

// jsonString returns raw as a string when it is a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// tokenLike matches strings shaped like Notion tokens and secrets, so a
// server echoing another token (a rotated one) is redacted too.
var tokenLike = regexp.MustCompile(`(?:ntn|nrt|secret)_[A-Za-z0-9]{8,}`)

const redactedMark = "[redacted]"

// redactor cleans provider-supplied text before it goes into an error.
type redactor struct {
	secrets []string // the token or code sent, and the client secret
}

// clean makes s safe to put in an error: valid UTF-8 without control
// characters, every secret and token-like string replaced by [redacted], at
// most limit bytes. If a secret survives (replacements can recombine into it),
// the whole text is withheld.
func (r redactor) clean(s string, limit int) string {
	if s == "" {
		return ""
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return ' '
		}
		return c
	}, s)
	for _, secret := range r.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, redactedMark)
		}
	}
	s = tokenLike.ReplaceAllString(s, redactedMark)
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	for _, secret := range r.secrets {
		if secret != "" && strings.Contains(s, secret) {
			return "[withheld: contained a secret]"
		}
	}
	return s
}
