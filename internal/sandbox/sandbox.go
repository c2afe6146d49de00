package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/notionsync/notionsync/internal/notionfake"
)

// maxLatency bounds -latency and the admin API's latency.
const maxLatency = 10 * time.Minute

// Sandbox is a seeded notionfake.Server with the admin API. Build it with New
// and serve it with Serve (or Handler, then Close).
type Sandbox struct {
	cfg  Config
	log  *zap.Logger
	fake *notionfake.Server
	seed notionfake.SeedResult
	rand func() float64

	handler   http.Handler
	served    atomic.Bool
	closeOnce sync.Once

	// randomFailures counts the 503 faults queued by the fail rate.
	randomFailures atomic.Int64

	// mu guards settings and orders changes of them with the fake's.
	mu       sync.Mutex
	settings settings
}

// settings are the fault settings in force, as the admin API shows them.
type settings struct {
	FailRate     float64
	RateLimit    int
	DataLatency  string
	TokenLatency string
}

// New validates cfg, builds the fake, seeds workspace cfg.WorkspaceID and
// applies the rate limit and latency. It does not listen. log may be nil
// (no logging).
func New(cfg Config, log *zap.Logger) (*Sandbox, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sandbox: invalid config: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	// The fake makes at most Pages-1 pages nested; show what it does.
	cfg.Seed.NestedPages = min(cfg.Seed.NestedPages, max(cfg.Seed.Pages-1, 0))
	s := &Sandbox{cfg: cfg, log: log, rand: cfg.Rand}
	if s.rand == nil {
		s.rand = rand.Float64
	}
	s.fake = notionfake.New(notionfake.Options{
		ClientID:             cfg.ClientID,
		ClientSecret:         cfg.ClientSecret,
		RedirectURIs:         slices.Clone(cfg.RedirectURIs),
		ExpiresIn:            cfg.ExpiresIn,
		AccessTokenLifetime:  cfg.AccessTokenLifetime,
		AuthorizeWorkspaceID: cfg.WorkspaceID,
		Now:                  cfg.Now,
		Logger:               log.Named("notionfake"),
	})
	s.seed = s.fake.SeedWorkspace(cfg.WorkspaceID, cfg.Seed)
	s.fake.SetRateLimit(cfg.RateLimit)
	s.fake.SetLatency(cfg.Latency)
	s.fake.SetDataLatency(cfg.Latency)
	s.settings = settings{
		FailRate:     cfg.FailRate,
		RateLimit:    cfg.RateLimit,
		DataLatency:  cfg.Latency.String(),
		TokenLatency: cfg.Latency.String(),
	}

	mux := http.NewServeMux()
	s.registerAdminRoutes(mux)
	mux.Handle("/", s.failRandomly(s.fake.Handler()))
	s.handler = s.accessLog(mux)
	return s, nil
}

// Fake returns the notionfake.Server behind the sandbox, for in-process use
// (tests of the demo's orchestration).
func (s *Sandbox) Fake() *notionfake.Server { return s.fake }

// Seed returns what the seed created.
func (s *Sandbox) Seed() notionfake.SeedResult { return s.seed }

// WorkspaceID returns the id of the seeded workspace.
func (s *Sandbox) WorkspaceID() string { return s.cfg.WorkspaceID }

// Handler returns the sandbox's handler: the admin API under /_sandbox/ and
// the fake's endpoints. Callers that serve it themselves call Close when done.
func (s *Sandbox) Handler() http.Handler { return s.handler }

// Close aborts requests the fake holds (latency): their connections are
// closed without a response. It is idempotent; Serve calls it on shutdown.
func (s *Sandbox) Close() {
	s.closeOnce.Do(s.fake.Close)
}

// Serve serves the sandbox on ln until ctx is done, then shuts down
// gracefully: the fake aborts the requests it delays, the server stops
// accepting and waits (up to Config.ShutdownTimeout) for running requests.
// Once serving, it writes to ready the configuration an operator needs and
// last the line
//
//	notion-sandbox listening on http://ADDR (client_id=ID, workspace=WS)
//
// It returns nil after a shutdown caused by ctx, and an error if serving
// fails or the shutdown times out. Serve closes ln and may be called once.
func (s *Sandbox) Serve(ctx context.Context, ln net.Listener, ready io.Writer) error {
	if s.served.Swap(true) {
		_ = ln.Close()
		return errors.New("sandbox: Serve called twice")
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	addr := ln.Addr().String()
	s.log.Info("notion-sandbox serving", zap.String("addr", addr), zap.String("workspace", s.cfg.WorkspaceID),
		zap.Int("pages", len(s.seed.PageIDs)), zap.Int("databases", len(s.seed.DatabaseIDs)),
		zap.Int("rows", len(s.seed.RowIDs)), zap.Int("blocks", s.seed.BlockCount))
	if _, err := io.WriteString(ready, s.banner(addr)); err != nil {
		s.log.Warn("writing the ready line", zap.Error(err))
	}

	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("sandbox: serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("notion-sandbox shutting down")
	s.Close()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		<-errc
		return fmt.Errorf("sandbox: shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("sandbox: serve: %w", err)
	}
	return nil
}

// banner is what Serve writes once listening; its last line is the ready line.
func (s *Sandbox) banner(addr string) string {
	base := "http://" + addr
	secret := s.cfg.ClientSecret
	if secret != notionfake.DefaultClientSecret {
		secret = "(the one given with -client-secret)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "notion-sandbox: seeded workspace %s: %d pages, %d databases, %d rows, %d blocks\n",
		s.cfg.WorkspaceID, len(s.seed.PageIDs), len(s.seed.DatabaseIDs), len(s.seed.RowIDs), s.seed.BlockCount)
	fmt.Fprintf(&b, "notion-sandbox: point notionsync at it with\n"+
		"  NOTIONSYNC_NOTION_API_URL=%s\n  NOTIONSYNC_NOTION_CLIENT_ID=%s\n  NOTIONSYNC_NOTION_CLIENT_SECRET=%s\n",
		base, s.cfg.ClientID, secret)
	fmt.Fprintf(&b, "notion-sandbox: admin API %s/_sandbox/ (stats, workspace, expected, pages, revoke, faults)\n", base)
	fmt.Fprintf(&b, "notion-sandbox listening on %s (client_id=%s, workspace=%s)\n", base, s.cfg.ClientID, s.cfg.WorkspaceID)
	return b.String()
}

// NewLogger returns the console logger of the command, on stderr, at level.
func NewLogger(level zapcore.Level) (*zap.Logger, error) {
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.Encoding = "console"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	zc.DisableStacktrace = true
	zc.Sampling = nil
	log, err := zc.Build()
	if err != nil {
		return nil, fmt.Errorf("sandbox: build logger: %w", err)
	}
	return log, nil
}

// isDataPath reports whether path is one of the fake's data endpoints (under
// /v1/, not OAuth).
func isDataPath(path string) bool {
	return strings.HasPrefix(path, "/v1/") && !strings.HasPrefix(path, "/v1/oauth/")
}

// failRandomly queues, with probability FailRate, one 503 data fault in the
// fake before a data request is served (see the package documentation).
func (s *Sandbox) failRandomly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isDataPath(r.URL.Path) {
			s.mu.Lock()
			p := s.settings.FailRate
			s.mu.Unlock()
			if p > 0 && s.rand() < p {
				s.fake.FailDataNext(1, http.StatusServiceUnavailable)
				s.randomFailures.Add(1)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// accessLog logs one debug line per request: method, path, status, duration.
// Paths and statuses only: no query (the authorize redirect's state), no
// headers, no bodies.
func (s *Sandbox) accessLog(next http.Handler) http.Handler {
	log := s.log.Named("http")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !log.Core().Enabled(zapcore.DebugLevel) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusWriter{ResponseWriter: w}
		defer func() {
			fields := []zap.Field{zap.String("method", r.Method), zap.String("path", r.URL.Path),
				zap.Duration("took", time.Since(start))}
			switch {
			case rec.hijacked: // the fake dropped the connection (rotate-then-drop)
				fields = append(fields, zap.Bool("dropped", true))
			case rec.status == 0:
				fields = append(fields, zap.Int("status", http.StatusOK))
			default:
				fields = append(fields, zap.Int("status", rec.status))
			}
			log.Debug("request", fields...)
		}()
		next.ServeHTTP(rec, r)
	})
}

// statusWriter records the status of a response. It passes Hijack through:
// the fake drops connections by hijacking them.
type statusWriter struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("sandbox: %T cannot hijack", w.ResponseWriter)
	}
	w.hijacked = true
	return hj.Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
