package notionclient

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jomei/notionapi"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/tokens"
)

// TokenSource hands out the access token of a connection. tokens.Source
// implements it. Both methods are called concurrently from many goroutines.
type TokenSource interface {
	// Token returns a valid access token for connID.
	Token(ctx context.Context, connID string) (tokens.Token, error)
	// Invalidate reports that Notion rejected failedAccessToken with 401.
	// It refreshes only if the stored token is still that one, and returns
	// the current valid token either way.
	Invalidate(ctx context.Context, connID, failedAccessToken string) (tokens.Token, error)
}

// Defaults of Config.
const (
	DefaultBaseURL        = "https://api.notion.com"
	DefaultNotionVersion  = "2025-09-03"
	DefaultRatePerMinute  = 180
	DefaultBurst          = 30
	DefaultMaxWait        = 2 * time.Second
	DefaultMaxRetries     = 3
	DefaultRetryBaseDelay = 250 * time.Millisecond
	DefaultRetryMaxDelay  = 5 * time.Second
	DefaultKeyPrefix      = "notionsync:"
	DefaultMaxResponse    = 64 << 20
	DefaultUserAgent      = "notionsync"
)

// statusServiceOverload is Notion's 529 service_overload.
const statusServiceOverload = 529

// placeholderToken is what notionapi puts in its Authorization header; the
// transport always replaces it.
const placeholderToken = "notionclient-placeholder"

// Config configures a Client. The zero value of every field selects its
// default.
type Config struct {
	// BaseURL is where requests go (default "https://api.notion.com"). It may
	// carry a path prefix ("http://fake:8080/notion"): request paths are
	// appended to it.
	BaseURL string
	// NotionVersion is the Notion-Version header sent when a request has
	// none (default "2025-09-03": databases are containers of data
	// sources; see the package documentation for why this version).
	NotionVersion string
	// RatePerMinute is each connection's request budget, shared by every
	// process using the same Redis (default 180, Notion's documented limit;
	// at most 60,000,000).
	RatePerMinute int
	// Burst is how many requests a rested connection may send at once
	// (default 30: ten seconds' worth of 180/min). A larger burst fills a
	// job's first pages faster but makes 429s more likely, since Notion
	// also limits each workspace across all its connections.
	Burst int
	// MaxWait is the longest one request waits in-process, in total, for
	// rate budget, a shared backoff or a Retry-After (default 2s). When a
	// longer wait is needed the request returns a *RateLimitError at once,
	// so that the job is rescheduled instead of holding a worker slot.
	// Negative: never wait.
	MaxWait time.Duration
	// MaxRetries is how many times a read is retried after a 5xx, a 409 or
	// a network error (default 3; negative: never). Writes are retried
	// only after 409.
	MaxRetries int
	// RetryBaseDelay and RetryMaxDelay bound the exponential backoff (with
	// jitter) between those retries (defaults 250ms and 5s).
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// KeyPrefix prefixes every Redis key (default "notionsync:").
	KeyPrefix string
	// Logger receives a debug entry per request and a warning per 429
	// (default: no logging).
	Logger *zap.Logger
	// Now is the clock used to time requests and read HTTP-date
	// Retry-After values (default time.Now). Rate limiting uses Redis's
	// clock.
	Now func() time.Time
	// Transport sends the requests (default: a clone of
	// http.DefaultTransport with a 60s response-header timeout).
	Transport http.RoundTripper
	// Observer receives metrics events (default: none).
	Observer Observer
	// MaxResponseBytes bounds the body Do reads (default 64 MiB).
	MaxResponseBytes int64
	// UserAgent is sent when a request has no User-Agent (default
	// "notionsync").
	UserAgent string
}

// Client is the stack every sync job uses to talk to Notion. Its methods
// are safe for concurrent use; it holds no per-connection state in memory
// (budgets and backoffs live in Redis), so any number of connections and
// processes may share one Redis.
type Client struct {
	rdb redis.UniversalClient
	ts  TokenSource

	base        http.RoundTripper
	baseURL     *url.URL
	version     string
	userAgent   string
	maxResponse int64

	intervalMicros int64
	burst          int
	maxWait        time.Duration
	maxRetries     int
	retryBase      time.Duration
	retryMax       time.Duration
	keyPrefix      string

	log *zap.Logger
	now func() time.Time
	obs Observer
}

// New validates cfg and returns a Client. rdb holds the shared rate-limit
// state; ts supplies tokens.
func New(rdb redis.UniversalClient, ts TokenSource, cfg Config) (*Client, error) {
	if rdb == nil {
		return nil, errors.New("notionclient: nil redis client")
	}
	if ts == nil {
		return nil, errors.New("notionclient: nil token source")
	}
	base, err := url.Parse(cmp.Or(cfg.BaseURL, DefaultBaseURL))
	if err != nil {
		return nil, fmt.Errorf("notionclient: BaseURL: %w", err)
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.RawQuery != "" || base.Fragment != "" || base.User != nil {
		return nil, fmt.Errorf("notionclient: BaseURL %q: want http(s)://host[/prefix] without query or credentials", base.Redacted())
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	base.RawPath = strings.TrimSuffix(base.RawPath, "/")

	rate := cmp.Or(cfg.RatePerMinute, DefaultRatePerMinute)
	burst := cmp.Or(cfg.Burst, DefaultBurst)
	switch {
	case rate < 0 || rate > 60_000_000:
		return nil, fmt.Errorf("notionclient: RatePerMinute %d out of range [1, 60000000]", rate)
	case burst < 0:
		return nil, fmt.Errorf("notionclient: negative Burst %d", burst)
	case cfg.RetryBaseDelay < 0 || cfg.RetryMaxDelay < 0 || cfg.MaxResponseBytes < 0:
		return nil, errors.New("notionclient: negative RetryBaseDelay, RetryMaxDelay or MaxResponseBytes")
	}

	c := &Client{
		rdb:            rdb,
		ts:             ts,
		base:           cfg.Transport,
		baseURL:        base,
		version:        cmp.Or(cfg.NotionVersion, DefaultNotionVersion),
		userAgent:      cmp.Or(cfg.UserAgent, DefaultUserAgent),
		maxResponse:    cmp.Or(cfg.MaxResponseBytes, DefaultMaxResponse),
		intervalMicros: int64(time.Minute/time.Microsecond) / int64(rate),
		burst:          burst,
		maxWait:        max(cmp.Or(cfg.MaxWait, DefaultMaxWait), 0),
		maxRetries:     max(cmp.Or(cfg.MaxRetries, DefaultMaxRetries), 0),
		retryBase:      cmp.Or(cfg.RetryBaseDelay, DefaultRetryBaseDelay),
		retryMax:       cmp.Or(cfg.RetryMaxDelay, DefaultRetryMaxDelay),
		keyPrefix:      cmp.Or(cfg.KeyPrefix, DefaultKeyPrefix),
		log:            cfg.Logger,
		now:            cfg.Now,
		obs:            cfg.Observer,
	}
	if c.base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = 60 * time.Second
		c.base = t
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.obs == nil {
		c.obs = NopObserver{}
	}
	return c, nil
}

// Transport returns the http.RoundTripper of connID: it points requests at
// BaseURL, authenticates them with connID's token, applies the shared rate
// limit and retries (see the package documentation). Non-2xx answers are
// returned as errors (*APIError, *RateLimitError, a tokens error), never as
// responses. It is cheap; it is safe for concurrent use.
func (c *Client) Transport(connID string) http.RoundTripper {
	return &connTransport{c: c, connID: connID, keys: c.keys(connID)}
}

// For returns a notionapi client for connID that sends everything through
// Transport(connID). It is cheap: build one per job. Errors returned by its
// methods wrap this package's typed errors (net/http adds a *url.Error
// around them); use errors.As / errors.Is, IsNotFound, RetryAfter.
func (c *Client) For(connID string) *notionapi.Client {
	return notionapi.NewClient(placeholderToken,
		notionapi.WithHTTPClient(&http.Client{Transport: c.Transport(connID)}),
		// notionapi's own 429 loop re-sends consumed bodies and never closes
		// 429 bodies; with 1 it gives up on the first 429 (which our
		// transport never returns anyway: it turns 429s into errors).
		notionapi.WithRetry(1),
		notionapi.WithVersion(c.version),
	)
}

// Do sends one request for connID and returns the raw JSON body of a 2xx
// answer (notionapi drops the data of block types it does not know; the sink
// stores raw JSON). path is relative to BaseURL and may carry a query, e.g.
// "/v1/blocks/ID/children?page_size=100". body is sent as JSON: nil for
// none, []byte and json.RawMessage as they are, anything else marshalled.
func (c *Client) Do(ctx context.Context, connID, method, path string, body any) (json.RawMessage, error) {
	u, err := url.Parse(path)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/") {
		return nil, fmt.Errorf("notionclient: Do: path %q must be absolute, e.g. /v1/pages/ID", path)
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case json.RawMessage:
		rd = bytes.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("notionclient: Do %s %s: encoding body: %w", method, u.Path, err)
		}
		rd = bytes.NewReader(data)
	}
	target := url.URL{Scheme: c.baseURL.Scheme, Host: c.baseURL.Host, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("notionclient: Do %s %s: %w", method, u.Path, err)
	}
	req.Header.Set("Accept", "application/json")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Transport(connID).RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("notionclient: Do %s %s: reading response: %w", method, u.Path, err)
	}
	if int64(len(data)) > c.maxResponse {
		return nil, fmt.Errorf("notionclient: Do %s %s: response larger than %d bytes", method, u.Path, c.maxResponse)
	}
	return json.RawMessage(data), nil
}

// CloseIdleConnections closes the idle keep-alive connections of the
// underlying transport, if it has that method.
func (c *Client) CloseIdleConnections() {
	if t, ok := c.base.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}
