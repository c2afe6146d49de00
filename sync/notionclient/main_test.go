package notionclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/tokens"
)

// redisSrv is the package's redis-server; tests keep apart by key prefix.
var redisSrv *redistest.Server

func TestMain(m *testing.M) {
	code := redistest.RunMain(m, redistest.Options{}, func(s *redistest.Server) { redisSrv = s })
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// The production token source must keep satisfying TokenSource.
var _ TokenSource = (*tokens.Source)(nil)

// fakeTokens is a TokenSource whose Invalidate rotates to the next token only
// when the failed token is still the current one (as tokens.Source does).
type fakeTokens struct {
	mu            sync.Mutex
	current       string
	next          []string
	tokenErr      error
	invalidateErr error
	tokenCalls    int
	failed        []string // Invalidate's failedAccessToken, in call order
	rotations     int
}

func newFakeTokens(current string, next ...string) *fakeTokens {
	return &fakeTokens{current: current, next: next}
}

func (f *fakeTokens) Token(_ context.Context, connID string) (tokens.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenCalls++
	if f.tokenErr != nil {
		return tokens.Token{}, f.tokenErr
	}
	return tokens.Token{ConnID: connID, AccessToken: f.current, Version: int64(f.rotations + 1)}, nil
}

func (f *fakeTokens) Invalidate(_ context.Context, connID, failed string) (tokens.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = append(f.failed, failed)
	if f.invalidateErr != nil {
		return tokens.Token{}, f.invalidateErr
	}
	if failed == f.current && len(f.next) > 0 {
		f.current, f.next = f.next[0], f.next[1:]
		f.rotations++
	}
	return tokens.Token{ConnID: connID, AccessToken: f.current, Version: int64(f.rotations + 1)}, nil
}

func (f *fakeTokens) setCurrent(tok string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.current = tok
}

func (f *fakeTokens) failedTokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.failed...)
}

// seenRequest is what the fake Notion received.
type seenRequest struct {
	Method, Path, RawQuery, Host string
	Auth, Version, ContentType   string
	Body                         []byte
}

// fakeNotion is an httptest server whose handler sees the 1-based number of
// each request.
type fakeNotion struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []seenRequest
	handle func(w http.ResponseWriter, r *http.Request, n int)
}

func newFakeNotion(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) *fakeNotion {
	t.Helper()
	f := &fakeNotion{handle: handle}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, seenRequest{
			Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host,
			Auth: r.Header.Get("Authorization"), Version: r.Header.Get("Notion-Version"),
			ContentType: r.Header.Get("Content-Type"), Body: body,
		})
		n := len(f.reqs)
		f.mu.Unlock()
		f.handle(w, r, n)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeNotion) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.reqs...)
}

func (f *fakeNotion) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// reply writes a JSON answer with a request id header.
func reply(w http.ResponseWriter, status int, body string, headers ...string) {
	for i := 0; i+1 < len(headers); i += 2 {
		w.Header().Set(headers[i], headers[i+1])
	}
	w.Header().Set("Content-Type", "application/json")
	if w.Header().Get("X-Notion-Request-Id") == "" {
		w.Header().Set("X-Notion-Request-Id", "hdr-req-"+strconv.Itoa(status))
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// errorBody is Notion's error object.
func errorBody(status int, code, message, requestID string, additional map[string]any) string {
	m := map[string]any{"object": "error", "status": status, "code": code, "message": message}
	if requestID != "" {
		m["request_id"] = requestID
	}
	if additional != nil {
		m["additional_data"] = additional
	}
	b, _ := json.Marshal(m)
	return string(b)
}

const pageJSON = `{"object":"page","id":"11111111-2222-3333-4444-555555555555","properties":{}}`
const listJSON = `{"object":"list","results":[],"has_more":false,"next_cursor":null}`

// testClient builds a Client on the package's Redis. prefix "" means a fresh
// one; clients given the same prefix share rate-limit state, as worker
// processes sharing a Redis do.
func testClient(t testing.TB, ts TokenSource, cfg Config) *Client {
	t.Helper()
	rdb := redisSrv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	return testClientOn(t, rdb, ts, cfg)
}

func testClientOn(t testing.TB, rdb redis.UniversalClient, ts TokenSource, cfg Config) *Client {
	t.Helper()
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = redistest.UniquePrefix(t)
	}
	if cfg.RetryBaseDelay == 0 {
		cfg.RetryBaseDelay = time.Millisecond
	}
	if cfg.RetryMaxDelay == 0 {
		cfg.RetryMaxDelay = 2 * time.Millisecond
	}
	c, err := New(rdb, ts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// recorder is an Observer that keeps every event; onWait, if set, runs
// before each in-process wait.
type recorder struct {
	mu       sync.Mutex
	requests []int // statuses
	limited  []limitEvent
	waits    []limitEvent
	onWait   func(reason string, d time.Duration)
}

type limitEvent struct {
	Reason string
	D      time.Duration
}

func (r *recorder) OnRequest(_, _ string, status int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, status)
}

func (r *recorder) OnRateLimited(_ string, d time.Duration, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.limited = append(r.limited, limitEvent{reason, d})
}

func (r *recorder) OnBackoffWait(_, reason string, d time.Duration) {
	r.mu.Lock()
	r.waits = append(r.waits, limitEvent{reason, d})
	hook := r.onWait
	r.mu.Unlock()
	if hook != nil {
		hook(reason, d)
	}
}

func (r *recorder) waitEvents() []limitEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]limitEvent(nil), r.waits...)
}

func (r *recorder) limitEvents() []limitEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]limitEvent(nil), r.limited...)
}

// cmdCounter is a go-redis hook counting the commands sent.
type cmdCounter struct{ n atomic.Int64 }

func (h *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}
