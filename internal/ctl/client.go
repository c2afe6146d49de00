package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxResponse bounds a response body the client reads.
const maxResponse = 64 << 20

// apiPrefix is the path of the admin API under the server's base URL.
const apiPrefix = "/api/v1"

// runner is one command's view of the world: the parsed global flags, the
// streams and the HTTP client.
type runner struct {
	env  Env
	g    *globals
	cmd  string
	base *url.URL
	http *http.Client
	// limit is the command's time limit, for messages.
	limit time.Duration
}

// apiError is an error answer of the control plane (or of something in
// front of it).
type apiError struct {
	Status     int
	Code       string // the body's "error"; "" when the body was not the API's JSON
	Message    string // the body's "message"
	RetryAfter string // the Retry-After header, if any
	server     string
	method     string
	path       string
}

func (e *apiError) Error() string {
	switch {
	case e.Status == http.StatusUnauthorized:
		return fmt.Sprintf("admin token rejected by the control server at %s (check %s)", e.server, EnvToken)
	case e.Code == "":
		return fmt.Sprintf("unexpected answer from the control server at %s to %s %s: HTTP %d %s",
			e.server, e.method, e.path, e.Status, http.StatusText(e.Status))
	case e.Status == http.StatusNotFound && e.Code != "not_found":
		return fmt.Sprintf("the control server at %s does not serve %s %s (%s): is -server the control plane, and of the same version?",
			e.server, e.method, e.path, e.Message)
	}
	msg := fmt.Sprintf("%s (HTTP %d, %s)", e.Message, e.Status, e.Code)
	if e.RetryAfter != "" {
		msg += "; retry after " + e.RetryAfter + "s"
	}
	return msg
}

// server returns the base URL for messages, without any password.
func (r *runner) server() string { return r.base.Redacted() }

// endpoint returns the absolute URL of path (under the base URL's path).
func (r *runner) endpoint(path string, q url.Values) string {
	u := *r.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = q.Encode()
	return u.String()
}

func (r *runner) requireToken() error {
	if r.g.token == "" {
		return usagef(r.cmd, "no admin token: set %s (or pass -token)", EnvToken)
	}
	return nil
}

// call sends one admin API request and returns the response body of a 2xx
// answer. Other answers become *apiError; transport failures say the server
// could not be reached.
func (r *runner) call(ctx context.Context, method, path string, q url.Values, body []byte) ([]byte, int, error) {
	if err := r.requireToken(); err != nil {
		return nil, 0, err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.endpoint(apiPrefix+path, q), rd)
	if err != nil {
		return nil, 0, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+r.g.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", progName)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, 0, r.transportError(ctx, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, 0, r.transportError(ctx, err)
	}
	if len(raw) > maxResponse {
		return nil, 0, fmt.Errorf("the answer of the control server at %s is larger than %d bytes", r.server(), maxResponse)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, 0, fmt.Errorf("the control server at %s redirected %s %s to %q; point -server at the address it redirects to",
			r.server(), method, apiPrefix+path, resp.Header.Get("Location"))
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After"),
			server: r.server(), method: method, path: apiPrefix + path}
		var body struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &body) == nil && body.Error != "" {
			e.Code, e.Message = body.Error, clean(body.Message)
		}
		return nil, resp.StatusCode, e
	}
	return raw, resp.StatusCode, nil
}

// transportError explains a request that got no answer.
func (r *runner) transportError(ctx context.Context, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("no answer from the control server at %s within %s (raise -timeout?)", r.server(), r.limit)
	case ctx.Err() != nil:
		return errors.New("interrupted")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is the server's, named below
	}
	return fmt.Errorf("cannot reach the control server at %s: %v", r.server(), err)
}

// getJSON calls the API and decodes a 2xx answer into v; it returns the raw
// body for -output json.
func (r *runner) getJSON(ctx context.Context, method, path string, q url.Values, body []byte, v any) ([]byte, error) {
	raw, _, err := r.call(ctx, method, path, q, body)
	if err != nil {
		return nil, err
	}
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			return nil, fmt.Errorf("the control server at %s answered %s %s%s with a body that is not the expected JSON: %v",
				r.server(), method, apiPrefix, path, err)
		}
	}
	return raw, nil
}

// withTimeout bounds a command by -timeout (or def when -timeout was not
// given).
func (r *runner) withTimeout(ctx context.Context, def time.Duration) (context.Context, context.CancelFunc) {
	d := r.g.timeout
	if !r.g.timeoutOK {
		d = def
	}
	r.limit = d
	return context.WithTimeout(ctx, d)
}

// jsonOutput reports -output json.
func (r *runner) jsonOutput() bool { return r.g.output == "json" }

// printJSON writes raw JSON indented to stdout.
func (r *runner) printJSON(raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("the control server's answer is not JSON: %v", err)
	}
	buf.WriteByte('\n')
	_, err := r.env.Stdout.Write(buf.Bytes())
	return err
}

// printValue writes v as indented JSON to stdout.
func (r *runner) printValue(v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return r.printJSON(raw)
}

func (r *runner) outf(format string, args ...any) {
	fmt.Fprintf(r.env.Stdout, format, args...)
}

func (r *runner) errf(format string, args ...any) {
	fmt.Fprintf(r.env.Stderr, format, args...)
}
