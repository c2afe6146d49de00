package notionclient

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/notionsync/notionsync/tokens"
)

// ErrRateLimited matches every *RateLimitError: the request was not sent (or
// Notion answered 429/529) and the job should be rescheduled after
// RetryAfter(err).
var ErrRateLimited = errors.New("notionclient: rate limited")

// Reasons carried by RateLimitError.Reason, Observer.OnRateLimited and
// Observer.OnBackoffWait.
const (
	// ReasonLocalBudget: this project's own per-connection budget
	// (Config.RatePerMinute, Config.Burst) is spent; nothing was sent.
	ReasonLocalBudget = "local_budget"
	// ReasonBackoff: an earlier request of this connection, possibly in
	// another process, got a 429/529 and its Retry-After has not passed yet;
	// nothing was sent.
	ReasonBackoff = "backoff"
	// ReasonRetryAfter: Notion answered this request with 429 or 529.
	ReasonRetryAfter = "retry_after"
	// ReasonServerError is used only by Observer.OnBackoffWait: the wait
	// before retrying a read after a 5xx, a 409 or a network error.
	ReasonServerError = "server_error"
)

// RateLimitReasonBlocked is the additional_data.rate_limit_reason of a 429
// that must never be retried.
const RateLimitReasonBlocked = "public_api_request_blocked"

// CodeNonJSON is APIError.Code when Notion (or a proxy in front of it, such as
// Cloudflare) answered with a body that is not JSON.
const CodeNonJSON = "non_json_response"

// CodeUnexpectedBody is APIError.Code when the body was JSON but not Notion's
// error object.
const CodeUnexpectedBody = "unexpected_response"

// maxRetryAfter caps the Retry-After this package honours, so that a
// malformed header cannot stop a connection for days.
const maxRetryAfter = time.Hour

// maxErrorBody is how much of an error response body is read.
const maxErrorBody = 64 << 10

// maxMessage is how much of Notion's error message is kept.
const maxMessage = 1024

// RateLimitError says a request was not completed because of a rate limit.
// The job should be rescheduled after RetryAfter instead of holding a worker.
// It matches ErrRateLimited.
type RateLimitError struct {
	// ConnID is the connection whose budget is exhausted.
	ConnID string
	// RetryAfter is how long to wait before the next request of the
	// connection can be sent.
	RetryAfter time.Duration
	// Reason is one of ReasonLocalBudget, ReasonBackoff, ReasonRetryAfter.
	Reason string
	// Err is Notion's *APIError (status 429 or 529) when Reason is
	// ReasonRetryAfter; nil otherwise.
	Err error
}

func (e *RateLimitError) Error() string {
	msg := fmt.Sprintf("notionclient: connection %s rate limited (%s), retry in %s", e.ConnID, e.Reason, e.RetryAfter.Round(time.Millisecond))
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// Unwrap returns the Notion error behind the refusal, if any.
func (e *RateLimitError) Unwrap() error { return e.Err }

// APIError is a non-2xx answer from Notion, with everything Notion said
// about it. It never contains the request's token.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is Notion's error code ("object_not_found", "rate_limited", ...),
	// CodeNonJSON or CodeUnexpectedBody.
	Code string
	// Message is Notion's message (truncated to 1 KiB).
	Message string
	// RequestID is Notion's request id (body request_id, else the
	// x-notion-request-id header); quote it to Notion support.
	RequestID string
	// RetryAfter is the delay Notion asked for (Retry-After header or
	// additional_data.retry_after, the larger); for 429 and 529 it is at
	// least one second.
	RetryAfter time.Duration
	// RateLimitReason is additional_data.rate_limit_reason.
	RateLimitReason string
	// AdditionalData is Notion's additional_data object, verbatim.
	AdditionalData json.RawMessage
	// Method and Path identify the request (path without query).
	Method string
	Path   string
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("notion: ")
	if e.Method != "" {
		b.WriteString(e.Method)
		b.WriteByte(' ')
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(strconv.Itoa(e.Status))
	if e.Code != "" {
		b.WriteByte(' ')
		b.WriteString(e.Code)
	} else if t := http.StatusText(e.Status); t != "" {
		b.WriteByte(' ')
		b.WriteString(t)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RateLimitReason != "" {
		b.WriteString(" (rate_limit_reason ")
		b.WriteString(e.RateLimitReason)
		b.WriteByte(')')
	}
	if e.RequestID != "" {
		b.WriteString(" (request_id ")
		b.WriteString(e.RequestID)
		b.WriteByte(')')
	}
	return b.String()
}

// Retryable reports whether the same request may succeed later: 409, 429
// and 529 (unless Notion blocked the integration), and 5xx. Whether a 5xx
// write is safe to repeat is the caller's judgement.
func (e *APIError) Retryable() bool {
	switch {
	case e.Status == http.StatusTooManyRequests || e.Status == statusServiceOverload:
		return e.RateLimitReason != RateLimitReasonBlocked
	case e.Status == http.StatusConflict:
		return true
	case e.Status >= 500:
		return true
	}
	return false
}

// IsNotFound reports whether err is Notion's 404 (the object does not exist
// or is not shared with the integration).
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsUnauthorized reports whether err is Notion's 401 (after the one refresh
// this package attempts).
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

func hasStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// RetryAfter returns how long a job should wait before trying again after
// err, and whether err names such a delay: a *RateLimitError, a retryable
// *APIError carrying a Retry-After, or a tokens.TransientError.
func RetryAfter(err error) (time.Duration, bool) {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return rl.RetryAfter, true
	}
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 && ae.Retryable() {
		return ae.RetryAfter, true
	}
	return tokens.RetryDelay(err)
}

// notionError is Notion's error object.
type notionError struct {
	Object         string          `json:"object"`
	Status         int             `json:"status"`
	Code           string          `json:"code"`
	Message        string          `json:"message"`
	RequestID      string          `json:"request_id"`
	AdditionalData json.RawMessage `json:"additional_data"`
}

// additionalData holds the fields of additional_data this package uses.
// retry_after is documented as a number of seconds; a string is tolerated.
type additionalData struct {
	RetryAfter      any    `json:"retry_after"`
	RateLimitReason string `json:"rate_limit_reason"`
}

// parseAPIError builds the APIError of a non-2xx response from its status,
// headers and (possibly truncated) body. It never fails: bodies that are not
// Notion's error object are described by size and content type, never copied.
func parseAPIError(status int, h http.Header, body []byte, now time.Time) *APIError {
	e := &APIError{Status: status, RequestID: h.Get("X-Notion-Request-Id")}
	var ne notionError
	switch {
	case !json.Valid(body):
		e.Code = CodeNonJSON
		e.Message = fmt.Sprintf("non-JSON %d response (%d bytes, content-type %q)", status, len(body), truncate(h.Get("Content-Type"), 100))
	case json.Unmarshal(body, &ne) != nil || (ne.Object != "error" && ne.Code == ""):
		e.Code = CodeUnexpectedBody
		e.Message = fmt.Sprintf("unexpected %d response (%d bytes of JSON)", status, len(body))
	default:
		e.Code = cmp.Or(truncate(ne.Code, 100), CodeUnexpectedBody)
		e.Message = truncate(ne.Message, maxMessage)
		if ne.RequestID != "" {
			e.RequestID = ne.RequestID
		}
		if ad := bytes.TrimSpace(ne.AdditionalData); len(ad) > 0 && !bytes.Equal(ad, []byte("null")) {
			e.AdditionalData = append(json.RawMessage(nil), ad...)
			var a additionalData
			if json.Unmarshal(ad, &a) == nil {
				e.RateLimitReason = truncate(a.RateLimitReason, 100)
				e.RetryAfter = secondsValue(a.RetryAfter)
			}
		}
	}
	e.RequestID = truncate(e.RequestID, 100)
	if d := parseRetryAfterHeader(h.Get("Retry-After"), now); d > e.RetryAfter {
		e.RetryAfter = d
	}
	if (status == http.StatusTooManyRequests || status == statusServiceOverload) && e.RetryAfter < time.Second {
		e.RetryAfter = time.Second
	}
	e.RetryAfter = min(e.RetryAfter, maxRetryAfter)
	return e
}

// parseRetryAfterHeader reads Retry-After as delay-seconds or an HTTP date.
func parseRetryAfterHeader(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return secondsToDuration(n)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

func secondsValue(v any) time.Duration {
	switch x := v.(type) {
	case float64:
		return secondsToDuration(x)
	case string:
		n, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err == nil {
			return secondsToDuration(n)
		}
	}
	return 0
}

func secondsToDuration(n float64) time.Duration {
	if n != n || n <= 0 { // NaN or not positive
		return 0
	}
	if n >= maxRetryAfter.Seconds() {
		return maxRetryAfter
	}
	return time.Duration(n * float64(time.Second))
}

// truncate cuts s to at most n bytes (plus "...") without splitting a UTF-8
// sequence; invalid UTF-8 is replaced first.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
