package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"

	"github.com/notionsync/notionsync/internal/control"
	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/sandbox"
)

// maxErrorBody bounds how much of an error response an error shows.
const maxErrorBody = 512

// maxBody bounds a response body read by the Cluster.
const maxBody = 32 << 20

// StatusError is a non-2xx answer of the admin API or the sandbox.
type StatusError struct {
	Method, URL string
	StatusCode  int
	Body        string // the start of the body
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("demo: %s %s: %d %s: %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode), e.Body)
}

// doJSON sends in (if not nil) as JSON and decodes the answer into out (if
// not nil). admin adds the admin credential.
func (c *Cluster) doJSON(ctx context.Context, method, rawURL string, admin bool, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("demo: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if admin {
		req.Header.Set("Authorization", "Bearer "+c.adminToken)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("demo: %s %s: %w", method, rawURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("demo: %s %s: read body: %w", method, rawURL, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Method: method, URL: rawURL, StatusCode: resp.StatusCode,
			Body: strings.TrimSpace(string(data[:min(len(data), maxErrorBody)]))}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("demo: %s %s: decode: %w", method, rawURL, err)
		}
	}
	return nil
}

// controlURL returns the base URL of the first scheduler still running, so
// admin calls survive the loss of scheduler 0.
func (c *Cluster) controlURL() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.schedulers {
		if !s.proc.Exited() {
			return "http://" + s.addr, nil
		}
	}
	return "", errors.New("demo: no scheduler is running")
}

// Admin calls the control plane's admin API (path such as
// "/api/v1/connections") on a running scheduler, with the admin token.
func (c *Cluster) Admin(ctx context.Context, method, path string, in, out any) error {
	base, err := c.controlURL()
	if err != nil {
		return err
	}
	return c.doJSON(ctx, method, base+path, true, in, out)
}

// SandboxAdmin calls the sandbox's admin API (path such as
// "/_sandbox/stats").
func (c *Cluster) SandboxAdmin(ctx context.Context, method, path string, in, out any) error {
	base := c.SandboxURL()
	if base == "" {
		return errors.New("demo: not started")
	}
	return c.doJSON(ctx, method, base+path, false, in, out)
}

// Connection returns the admin API's view of connection id.
func (c *Cluster) Connection(ctx context.Context, id string) (control.ConnectionView, error) {
	var v control.ConnectionView
	err := c.Admin(ctx, http.MethodGet, "/api/v1/connections/"+url.PathEscape(id), nil, &v)
	return v, err
}

// SyncNow asks the control plane for a sweep of connection id.
func (c *Cluster) SyncNow(ctx context.Context, id string) error {
	return c.Admin(ctx, http.MethodPost, "/api/v1/connections/"+url.PathEscape(id)+"/sync", nil, nil)
}

// ReconcileNow asks the control plane for a reconciliation pass of
// connection id.
func (c *Cluster) ReconcileNow(ctx context.Context, id string) error {
	return c.Admin(ctx, http.MethodPost, "/api/v1/connections/"+url.PathEscape(id)+"/reconcile", nil, nil)
}

// SandboxStats returns the sandbox's counters.
func (c *Cluster) SandboxStats(ctx context.Context) (sandbox.StatsResponse, error) {
	var st sandbox.StatsResponse
	err := c.SandboxAdmin(ctx, http.MethodGet, "/_sandbox/stats", nil, &st)
	return st, err
}

// Expected returns what a complete sync of the sandbox's workspace holds.
func (c *Cluster) Expected(ctx context.Context) (sandbox.ExpectedResponse, error) {
	var e sandbox.ExpectedResponse
	err := c.SandboxAdmin(ctx, http.MethodGet, "/_sandbox/expected", nil, &e)
	return e, err
}

// TouchPage edits page id's first paragraph in the sandbox to text, as a
// user typing.
func (c *Cluster) TouchPage(ctx context.Context, id, text string) error {
	return c.SandboxAdmin(ctx, http.MethodPost, "/_sandbox/pages/"+url.PathEscape(id)+"/touch",
		map[string]string{"text": text}, nil)
}

// SetSandboxFaults posts a faults request (see package internal/sandbox),
// for example map[string]any{"latency": "300ms", "target": "data"}.
func (c *Cluster) SetSandboxFaults(ctx context.Context, faults any) error {
	return c.SandboxAdmin(ctx, http.MethodPost, "/_sandbox/faults", faults, nil)
}

// ExpectedFor returns what a complete sync of sandbox workspace ws holds
// (GET /_sandbox/expected?workspace=ws).
func (c *Cluster) ExpectedFor(ctx context.Context, ws string) (sandbox.ExpectedResponse, error) {
	var e sandbox.ExpectedResponse
	err := c.SandboxAdmin(ctx, http.MethodGet, "/_sandbox/expected?workspace="+url.QueryEscape(ws), nil, &e)
	return e, err
}

// PoisonSandbox poisons sandbox objects (POST /_sandbox/poison) and returns
// the objects poisoned.
func (c *Cluster) PoisonSandbox(ctx context.Context, req sandbox.PoisonRequest) ([]notionfake.Poisoned, error) {
	var resp sandbox.PoisonResponse
	err := c.SandboxAdmin(ctx, http.MethodPost, "/_sandbox/poison", req, &resp)
	return resp.Poisoned, err
}

// SandboxPoisoned returns the poisoned sandbox objects, each with the number
// of requests it answered.
func (c *Cluster) SandboxPoisoned(ctx context.Context) ([]notionfake.Poisoned, error) {
	var resp sandbox.PoisonResponse
	err := c.SandboxAdmin(ctx, http.MethodGet, "/_sandbox/poison", nil, &resp)
	return resp.Poisoned, err
}

// ClearSandboxPoison lifts every poison of the sandbox and returns how many
// objects were poisoned.
func (c *Cluster) ClearSandboxPoison(ctx context.Context) (int, error) {
	var resp sandbox.ClearPoisonResponse
	err := c.SandboxAdmin(ctx, http.MethodDelete, "/_sandbox/poison", nil, &resp)
	return resp.Cleared, err
}

// pageTitle extracts the <h1> of a control-plane page.
var pageTitle = regexp.MustCompile(`<h1[^>]*>([^<]*)</h1>`)

// Connect connects the sandbox's workspace through the real OAuth redirect
// flow, as a browser would: GET <public URL>/oauth/start, follow the
// redirect to the sandbox's authorize page (which approves at once), and
// from there to /oauth/callback, with a cookie jar for the flow's cookie.
// The callback must answer its success page. The connection id is then read
// from the admin API: the connection whose metadata names the sandbox's
// workspace. Connecting again re-authorizes the same connection.
func (c *Cluster) Connect(ctx context.Context) (string, error) {
	public := c.PublicURL()
	if public == "" {
		return "", errors.New("demo: not started")
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	var hops []string
	browser := &http.Client{
		Jar:     jar,
		Timeout: httpTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			hops = append(hops, req.URL.Scheme+"://"+req.URL.Host+req.URL.Path) // never the query (code, state)
			return nil
		},
	}
	defer browser.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, public+control.StartPath, nil)
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	resp, err := browser.Do(req)
	if err != nil {
		return "", fmt.Errorf("demo: OAuth flow: %w", redactURLError(err))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return "", fmt.Errorf("demo: OAuth flow: read the callback page: %w", err)
	}
	title := ""
	if m := pageTitle.FindSubmatch(body); m != nil {
		title = string(m[1])
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != control.CallbackPath {
		return "", fmt.Errorf("demo: OAuth flow ended at %s with %s (%q) after %v",
			resp.Request.URL.Path, resp.Status, title, hops)
	}

	var ws sandbox.WorkspaceResponse
	if err := c.SandboxAdmin(ctx, http.MethodGet, "/_sandbox/workspace", nil, &ws); err != nil {
		return "", err
	}
	id, err := c.findConnection(ctx, ws.WorkspaceID)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.connID = id
	c.mu.Unlock()
	fmt.Fprintf(c.opts.Out, "demo: OAuth flow %s -> %s: %q; connection %s\n", control.StartPath, strings.Join(hops, " -> "), title, id)
	return id, nil
}

// findConnection pages through the connections for the one of workspace.
func (c *Cluster) findConnection(ctx context.Context, workspace string) (string, error) {
	after := ""
	for {
		var list control.ConnectionList
		if err := c.Admin(ctx, http.MethodGet, "/api/v1/connections?limit=1000&after="+url.QueryEscape(after), nil, &list); err != nil {
			return "", err
		}
		for _, v := range list.Connections {
			if v.Meta[control.MetaWorkspaceID] == workspace {
				return v.ID, nil
			}
		}
		if list.Next == "" {
			return "", fmt.Errorf("demo: the callback succeeded but no connection names workspace %q", workspace)
		}
		after = list.Next
	}
}

// redactURLError drops the URL (it may carry an authorization code) from
// an error of http.Client.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s%s: %w", ue.Op, hostOf(ue.URL), pathOf(ue.URL), ue.Err)
	}
	return err
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(url)"
	}
	return u.Scheme + "://" + u.Host
}

func pathOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Path
}
