package notionclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/notionsync/notionsync/tokens"
)

// connTransport is the http.RoundTripper of one connection.
type connTransport struct {
	c      *Client
	connID string
	keys   []string // read-only after construction
}

// RoundTrip implements http.RoundTripper. It returns a response only for
// 2xx answers; every failure is an error so that its type reaches callers
// through notionapi (which would otherwise decode the body itself and drop
// the request id).
func (t *connTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.c
	ctx := req.Context()
	body, err := readBody(req)
	if err != nil {
		return nil, fmt.Errorf("notionclient: reading request body: %w", err)
	}
	if t.connID == "" {
		return nil, errors.New("notionclient: empty connection id")
	}

	apiPath := req.URL.Path
	read := isRead(req.Method, apiPath)
	budget := c.maxWait
	var (
		fresh     *tokens.Token // the token Invalidate returned, for the next attempt
		refreshed bool
		retries   int
	)
	for attempt := 1; ; attempt++ {
		// The token first: a connection that cannot have one (paused,
		// needs re-authorization) spends no rate budget.
		var tok tokens.Token
		if fresh != nil {
			tok, fresh = *fresh, nil
		} else if tok, err = c.ts.Token(ctx, t.connID); err != nil {
			return nil, fmt.Errorf("notionclient: token for connection %s: %w", t.connID, err)
		}
		if err := c.admit(ctx, t.connID, t.keys, &budget); err != nil {
			return nil, err
		}

		out := c.outgoing(ctx, req, body, tok.AccessToken)
		start := c.now()
		resp, err := c.base.RoundTrip(out)
		dur := c.now().Sub(start)
		if err != nil {
			c.obs.OnRequest(t.connID, req.Method, 0, dur)
			t.logRequest(req.Method, apiPath, 0, dur, "", attempt, err)
			if read && ctx.Err() == nil && retries < c.maxRetries {
				retries++
				if werr := c.wait(ctx, t.connID, ReasonServerError, c.retryDelay(retries)); werr != nil {
					return nil, werr
				}
				continue
			}
			return nil, fmt.Errorf("notionclient: %s %s: %w", req.Method, apiPath, err)
		}

		requestID := resp.Header.Get("X-Notion-Request-Id")
		c.obs.OnRequest(t.connID, req.Method, resp.StatusCode, dur)
		t.logRequest(req.Method, apiPath, resp.StatusCode, dur, requestID, attempt, nil)
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			// The request that went out carries the token; hand back the
			// caller's own so that nothing downstream can log it.
			resp.Request = req
			return resp, nil
		}

		apiErr := c.readAPIError(resp)
		apiErr.Method, apiErr.Path = req.Method, apiPath
		switch status := resp.StatusCode; {
		case status == http.StatusUnauthorized:
			if refreshed {
				return nil, apiErr
			}
			refreshed = true
			nt, ierr := c.ts.Invalidate(ctx, t.connID, tok.AccessToken)
			if ierr != nil {
				return nil, fmt.Errorf("notionclient: connection %s: Notion answered 401 (request_id %s) and refreshing the token failed: %w", t.connID, apiErr.RequestID, ierr)
			}
			fresh = &nt

		case status == http.StatusTooManyRequests || status == statusServiceOverload:
			if apiErr.RateLimitReason == RateLimitReasonBlocked {
				c.log.Warn("notion blocked the integration's requests",
					zap.String("conn_id", t.connID), zap.String("request_id", apiErr.RequestID))
				return nil, apiErr
			}
			backoff, berr := c.setBackoff(ctx, t.keys, apiErr.RetryAfter, apiErr.Code)
			inProcess := backoff <= budget
			c.obs.OnRateLimited(t.connID, backoff, ReasonRetryAfter)
			c.log.Warn("notion rate limited a request",
				zap.String("conn_id", t.connID), zap.String("method", req.Method), zap.String("path", apiPath),
				zap.Int("status", status), zap.Duration("retry_after", apiErr.RetryAfter),
				zap.Duration("backoff", backoff), zap.Bool("wait_in_process", inProcess),
				zap.String("rate_limit_reason", apiErr.RateLimitReason), zap.String("request_id", apiErr.RequestID),
				zap.NamedError("backoff_store_error", berr))
			if !inProcess {
				return nil, &RateLimitError{ConnID: t.connID, RetryAfter: backoff, Reason: ReasonRetryAfter, Err: apiErr}
			}
			budget -= backoff
			if err := c.wait(ctx, t.connID, ReasonRetryAfter, backoff); err != nil {
				return nil, err
			}

		case status == http.StatusConflict || (read && isRetryableServerStatus(status)):
			// A 409 means Notion rejected the transaction: repeating it is
			// safe for writes too.
			if retries >= c.maxRetries {
				return nil, apiErr
			}
			retries++
			if err := c.wait(ctx, t.connID, ReasonServerError, c.retryDelay(retries)); err != nil {
				return nil, err
			}

		default:
			return nil, apiErr
		}
	}
}

// outgoing builds one attempt's request: BaseURL's scheme, host and path
// prefix, the connection's token, a fresh reader over the buffered body.
func (c *Client) outgoing(ctx context.Context, req *http.Request, body []byte, accessToken string) *http.Request {
	out := req.Clone(ctx)
	out.URL.Scheme = c.baseURL.Scheme
	out.URL.Host = c.baseURL.Host
	out.Host = ""
	if c.baseURL.Path != "" {
		out.URL.Path = c.baseURL.Path + ensureSlash(req.URL.Path)
		if req.URL.RawPath != "" || c.baseURL.RawPath != "" {
			out.URL.RawPath = c.baseURL.EscapedPath() + ensureSlash(req.URL.EscapedPath())
		}
	}
	out.Header.Set("Authorization", "Bearer "+accessToken)
	if out.Header.Get("Notion-Version") == "" {
		out.Header.Set("Notion-Version", c.version)
	}
	if out.Header.Get("User-Agent") == "" {
		out.Header.Set("User-Agent", c.userAgent)
	}
	if body != nil {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		out.ContentLength = int64(len(body))
	}
	return out
}

// readAPIError reads (a bounded part of) a non-2xx body, closes it and
// parses it.
func (c *Client) readAPIError(resp *http.Response) *APIError {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	return parseAPIError(resp.StatusCode, resp.Header, data, c.now())
}

// retryDelay is the wait before retry n (1-based): exponential from
// RetryBaseDelay, capped at RetryMaxDelay, with "equal jitter" (between
// half and all of it) so that workers that failed together do not retry
// together.
func (c *Client) retryDelay(n int) time.Duration {
	d := c.retryBase
	for i := 1; i < n && d < c.retryMax; i++ {
		d *= 2
	}
	d = min(d, c.retryMax)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

func (t *connTransport) logRequest(method, path string, status int, d time.Duration, requestID string, attempt int, err error) {
	ce := t.c.log.Check(zapcore.DebugLevel, "notion request")
	if ce == nil {
		return
	}
	ce.Write(zap.String("conn_id", t.connID), zap.String("method", method), zap.String("path", path),
		zap.Int("status", status), zap.Duration("duration", d), zap.String("request_id", requestID),
		zap.Int("attempt", attempt), zap.Error(err))
}

// readBody buffers the request body (notionapi's bodies can be read only
// once) and closes it, as the RoundTripper contract requires. A request
// without a body gives nil.
func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// isRead reports whether a request only reads: GET and HEAD, and the POSTs
// that are queries (search, database and data source queries). Only reads
// are repeated after a 5xx or a network error.
func isRead(method, path string) bool {
	switch method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPost:
	default:
		return false
	}
	path = strings.TrimSuffix(path, "/")
	if path == "/v1/search" {
		return true
	}
	for _, prefix := range []string{"/v1/databases/", "/v1/data_sources/"} {
		if id, ok := strings.CutPrefix(path, prefix); ok {
			id, ok = strings.CutSuffix(id, "/query")
			return ok && id != "" && !strings.Contains(id, "/")
		}
	}
	return false
}

func isRetryableServerStatus(status int) bool {
	switch status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func ensureSlash(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/" + p
}
