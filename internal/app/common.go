package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/notionsync/notionsync/config"
	"github.com/notionsync/notionsync/internal/metrics"
	"github.com/notionsync/notionsync/tokens"
	"github.com/notionsync/notionsync/tokens/notionauth"
)

// NewLogger builds the process logger from configuration.
func NewLogger(c config.Log) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("NOTIONSYNC_LOG_LEVEL: %w", err)
	}
	zc := zap.NewProductionConfig()
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.DisableStacktrace = true // errors carry their context; traces only add noise
	zc.OutputPaths, zc.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
	return zc.Build()
}

// common holds what both processes build the same way.
type common struct {
	log     *zap.Logger
	rdb     redis.UniversalClient
	store   *tokens.Store
	source  *tokens.Source
	oauth   *notionauth.Client
	timing  tokens.Timing
	reg     *prometheus.Registry
	metrics *metrics.Metrics
}

// newCommon connects to Redis and builds the token machinery. hooks are
// chained after the metrics hooks.
func newCommon(ctx context.Context, log *zap.Logger, rc config.Redis, tc config.Tokens, nc config.Notion, hooks tokens.Hooks) (*common, error) {
	c := &common{log: log, reg: prometheus.NewRegistry()}
	c.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := metrics.New(c.reg)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	rh, err := metrics.NewRedisHook(c.reg, rc.KeyPrefix)
	if err != nil {
		return nil, err
	}
	opts, err := rc.UniversalOptions()
	if err != nil {
		return nil, err
	}
	c.rdb = redis.NewUniversalClient(opts)
	// Every component of the process (asynq and redsync included) uses
	// this one client, so one hook counts all their round trips.
	c.rdb.AddHook(rh)
	ok := false
	defer func() {
		if !ok {
			c.close()
		}
	}()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pingRedis(pctx, c.rdb); err != nil {
		return nil, fmt.Errorf("redis at %s: %w", rc.Where(), err)
	}
	var keys []tokens.Key
	for _, k := range tc.Keys.Keys() {
		keys = append(keys, tokens.Key{ID: k.ID, Secret: k.Secret})
	}
	kr, err := tokens.NewKeyring(keys...)
	if err != nil {
		return nil, err
	}
	c.store, err = tokens.NewStore(tokens.StoreConfig{Redis: c.rdb, Keyring: kr, KeyPrefix: rc.KeyPrefix})
	if err != nil {
		return nil, err
	}
	c.oauth, err = notionauth.New(notionauth.Config{ClientID: nc.ClientID, ClientSecret: nc.ClientSecret.Value(),
		BaseURL: nc.APIURL, NotionVersion: nc.Version})
	if err != nil {
		return nil, err
	}
	c.timing = tokens.Timing{AccessTokenLifetime: tc.AccessTokenLifetime, RefreshMargin: tc.RefreshMargin, RefreshJitter: tc.RefreshJitter}
	cacheAge := time.Duration(0)
	if !tc.Cache {
		cacheAge = -1
	}
	c.source, err = tokens.NewSource(ctx, tokens.Config{
		Store: c.store, Provider: c.oauth, Timing: c.timing,
		CallTimeout: tc.CallTimeout, LockTTL: tc.RefreshLockTTL, CacheMaxAge: cacheAge,
		Logger: log.Named("tokens"), Hooks: m.TokenHooks(hooks),
	})
	if err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

func (c *common) close() {
	if c.source != nil {
		_ = c.source.Close()
	}
	if c.rdb != nil {
		_ = c.rdb.Close()
	}
}

// healthMux serves /healthz (the process is alive), /readyz (Redis answers
// and the token keys open a sample of the stored tokens) and /metrics.
func (c *common) healthMux() *http.ServeMux {
	keys := &keyringCheck{store: c.store, log: c.log, now: time.Now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := pingRedis(ctx, c.rdb); err != nil {
			http.Error(w, "redis unreachable", http.StatusServiceUnavailable)
			return
		}
		if err := keys.check(ctx); err != nil {
			var ke *tokens.KeyError
			if errors.As(err, &ke) {
				http.Error(w, keyringNotReady(ke), http.StatusServiceUnavailable)
				return
			}
			http.Error(w, "redis unreachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", c.metricsHandler())
	return mux
}

// pingRedis checks that Redis answers. On a cluster a plain PING goes to
// one node picked at random, which says little: every master is asked
// (after a fresh look at the slot map, so a promoted replica counts and a
// failed master does not). While a master is down and not yet replaced,
// the scripts of the connections in its slots fail, so the process is not
// ready; it is again once the cluster has failed over.
func pingRedis(ctx context.Context, rdb redis.UniversalClient) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			if err := node.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("master %s: %w", node.Options().Addr, err)
			}
			return nil
		})
	}
	return rdb.Ping(ctx).Err()
}

func (c *common) metricsHandler() http.Handler {
	return promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{})
}

// metricsMux serves GET /metrics alone (the scheduler's metrics listener).
func (c *common) metricsMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", c.metricsHandler())
	return mux
}

// serveHTTP runs srv until ctx is done, then shuts it down gracefully.
func serveHTTP(ctx context.Context, log *zap.Logger, srv *http.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server on %s: %w", srv.Addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http server shutdown", zap.Error(err))
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func newHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
}

// hostname is used in logs to tell replicas apart.
func hostname() string {
	h, _ := os.Hostname()
	return h
}
