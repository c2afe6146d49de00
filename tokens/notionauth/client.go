package notionauth

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/notionsync/notionsync/tokens"
)

// Defaults applied by New.
const (
	DefaultBaseURL       = "https://api.notion.com"
	DefaultNotionVersion = "2022-06-28"
	// DefaultTimeout bounds a call whose context carries no deadline.
	DefaultTimeout = 60 * time.Second
)

// maxResponseBody bounds how much of a response body is read.
const maxResponseBody = 1 << 20

// Config configures a Client.
type Config struct {
	// ClientID and ClientSecret are the integration's OAuth credentials.
	// Required.
	ClientID     string
	ClientSecret string
	// BaseURL is Notion's API root, without a trailing /v1. Default
	// DefaultBaseURL; tests point it at internal/notionfake.
	BaseURL string
	// NotionVersion is sent as the Notion-Version header. Default
	// DefaultNotionVersion.
	NotionVersion string
	// HTTPClient sends the requests. Default: a client with dial, TLS and
	// idle timeouts but no overall Timeout, since deadlines come from the
	// context. The Client never follows redirects, whatever this client's
	// CheckRedirect says.
	HTTPClient *http.Client
	// DefaultTimeout bounds a call whose context has no deadline. Default
	// DefaultTimeout.
	DefaultTimeout time.Duration
	// Now is the clock used to read HTTP-date Retry-After values. Default
	// time.Now.
	Now func() time.Time
}

// Client calls Notion's OAuth endpoints. It is safe for concurrent use and
// never retries on its own.
type Client struct {
	clientID      string
	clientSecret  string
	authorization string // Basic header value
	base          string // BaseURL without trailing slash
	version       string
	hc            *http.Client
	timeout       time.Duration
	now           func() time.Time
}

var _ tokens.Provider = (*Client)(nil)

// New validates cfg, applies its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	var errs []error
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("ClientID is required"))
	}
	if cfg.ClientSecret == "" {
		errs = append(errs, errors.New("ClientSecret is required"))
	}
	base := strings.TrimRight(cmp.Or(cfg.BaseURL, DefaultBaseURL), "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// The value is not quoted: it could hold credentials.
		errs = append(errs, errors.New("BaseURL must be an absolute http(s) URL without user info, query or fragment"))
	}
	if cfg.DefaultTimeout < 0 {
		errs = append(errs, errors.New("DefaultTimeout must not be negative"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(append([]error{errors.New("notionauth: invalid Config")}, errs...)...)
	}
	hc := defaultHTTPClient()
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		c.CheckRedirect = noRedirects
		hc = &c
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Client{
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		authorization: "Basic " + base64.StdEncoding.EncodeToString(
			[]byte(cfg.ClientID+":"+cfg.ClientSecret)),
		base:    base,
		version: cmp.Or(cfg.NotionVersion, DefaultNotionVersion),
		hc:      hc,
		timeout: cmp.Or(cfg.DefaultTimeout, DefaultTimeout),
		now:     now,
	}, nil
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func defaultHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:   10 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
			MaxIdleConns:          16,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: noRedirects,
	}
}

// Exchange is the result of an authorization-code exchange.
type Exchange struct {
	tokens.Grant
	BotID         string
	WorkspaceID   string
	WorkspaceName string
	// WorkspaceIcon is a URL, an emoji or "".
	WorkspaceIcon string
	// Owner is the raw owner object ({"type":"user","user":{..}} or
	// {"type":"workspace",..}); nil when absent or null.
	Owner json.RawMessage
	// DuplicatedTemplateID is "" when Notion sent null.
	DuplicatedTemplateID string
}

// Refresh spends refreshToken for a new grant (tokens.Provider). It sends one
// request and does not retry. Failures are *tokens.ProviderError classified
// as tokens.ErrorKind documents; they never contain a token.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*tokens.Grant, error) {
	if refreshToken == "" {
		return nil, &tokens.ProviderError{Kind: tokens.KindPermanent, Description: "empty refresh token"}
	}
	red := c.redactor(refreshToken)
	res, perr := c.post(ctx, "/v1/oauth/token",
		map[string]string{"grant_type": "refresh_token", "refresh_token": refreshToken})
	if perr != nil {
		return nil, perr
	}
	ex, perr := interpretTokenResponse(res, red, c.now())
	if perr != nil {
		return nil, perr
	}
	g := ex.Grant
	g.WorkspaceID = ex.WorkspaceID
	return &g, nil
}

// Exchange trades an authorization code for the connection's first grant.
// redirectURI must equal, byte for byte, the one given to AuthorizeURL.
// Errors are classified as for Refresh.
func (c *Client) Exchange(ctx context.Context, code, redirectURI string) (*Exchange, error) {
	if code == "" {
		return nil, &tokens.ProviderError{Kind: tokens.KindPermanent, Description: "empty authorization code"}
	}
	body := map[string]string{"grant_type": "authorization_code", "code": code}
	if redirectURI != "" {
		body["redirect_uri"] = redirectURI
	}
	res, perr := c.post(ctx, "/v1/oauth/token", body)
	if perr != nil {
		return nil, perr
	}
	ex, perr := interpretTokenResponse(res, c.redactor(code), c.now())
	if perr != nil {
		return nil, perr
	}
	return ex, nil
}

// Revoke revokes the connection owning token (an access or refresh token).
// Errors are *tokens.ProviderError.
func (c *Client) Revoke(ctx context.Context, token string) error {
	if token == "" {
		return &tokens.ProviderError{Kind: tokens.KindPermanent, Description: "empty token"}
	}
	res, perr := c.post(ctx, "/v1/oauth/revoke", map[string]string{"token": token})
	if perr != nil {
		return perr
	}
	if !is2xx(res.status) {
		return errorFromResponse(res, c.redactor(token), c.now())
	}
	return nil
}

// Introspect reports whether Notion considers token active. Errors are
// *tokens.ProviderError.
func (c *Client) Introspect(ctx context.Context, token string) (active bool, err error) {
	if token == "" {
		return false, &tokens.ProviderError{Kind: tokens.KindPermanent, Description: "empty token"}
	}
	res, perr := c.post(ctx, "/v1/oauth/introspect", map[string]string{"token": token})
	if perr != nil {
		return false, perr
	}
	red := c.redactor(token)
	if !is2xx(res.status) {
		return false, errorFromResponse(res, red, c.now())
	}
	return decodeIntrospection(res)
}

// AuthorizeURL returns the URL to send a user to for authorizing the
// integration; Notion redirects back to redirectURI with code and state.
func (c *Client) AuthorizeURL(redirectURI, state string) string {
	return c.base + "/v1/oauth/authorize?client_id=" + url.QueryEscape(c.clientID) +
		"&response_type=code&owner=user&redirect_uri=" + url.QueryEscape(redirectURI) +
		"&state=" + url.QueryEscape(state)
}

func (c *Client) redactor(sent string) redactor {
	return redactor{secrets: []string{sent, c.clientSecret}}
}

// rawResponse is a response as read off the wire.
type rawResponse struct {
	status    int
	header    http.Header
	body      []byte // at most maxResponseBody bytes
	truncated bool   // the body was longer than maxResponseBody
	readErr   error  // reading the body failed
}

// post sends payload as JSON with client authentication. A transport failure
// is returned classified; any HTTP response is returned as is.
func (c *Client) post(ctx context.Context, path string, payload map[string]string) (*rawResponse, *tokens.ProviderError) {
	if err := ctx.Err(); err != nil {
		return nil, &tokens.ProviderError{Kind: tokens.KindNotProcessed, Description: "request not sent", Err: err}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	body, err := json.Marshal(payload)
	if err != nil { // a map of strings always marshals
		return nil, &tokens.ProviderError{Kind: tokens.KindPermanent, Description: "encoding request failed"}
	}
	var trace sendTrace
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace.clientTrace()),
		http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, &tokens.ProviderError{Kind: tokens.KindPermanent, Description: "building request failed"}
	}
	req.Header.Set("Authorization", c.authorization)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Notion-Version", c.version)

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, transportError(err, &trace)
	}
	defer resp.Body.Close()
	res := &rawResponse{status: resp.StatusCode, header: resp.Header}
	res.body, res.readErr = io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if len(res.body) > maxResponseBody {
		res.body, res.truncated = res.body[:maxResponseBody], true
	}
	return res, nil
}

// sendTrace records how far a request got, to tell "never sent" from "maybe
// processed".
type sendTrace struct {
	mu      sync.Mutex
	getConn bool // the transport honours httptrace and looked for a connection
	gotConn bool // a connection was obtained
	wrote   bool // the whole request was written
}

func (t *sendTrace) clientTrace() *httptrace.ClientTrace {
	set := func(f *bool) {
		t.mu.Lock()
		*f = true
		t.mu.Unlock()
	}
	return &httptrace.ClientTrace{
		GetConn: func(string) { set(&t.getConn) },
		GotConn: func(httptrace.GotConnInfo) { set(&t.gotConn) },
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				set(&t.wrote)
			}
		},
	}
}

// transportError classifies a failure without an HTTP response. The request
// certainly never reached Notion when dialing failed (connection refused,
// DNS) before anything was written, or when the transport looked for a
// connection and never got one (a deadline during dial or TLS handshake).
// Anything else, a deadline or reset after a connection was obtained
// included, may have been processed.
func transportError(err error, t *sendTrace) *tokens.ProviderError {
	t.mu.Lock()
	getConn, gotConn, wrote := t.getConn, t.gotConn, t.wrote
	t.mu.Unlock()
	if (isDialError(err) && !wrote) || (getConn && !gotConn) {
		return &tokens.ProviderError{Kind: tokens.KindNotProcessed, Description: "request not sent", Err: err}
	}
	return &tokens.ProviderError{Kind: tokens.KindOutcomeUnknown,
		Description: "no response; the request may have been processed", Err: err}
}

func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}
