package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/config"
	"github.com/notionsync/notionsync/internal/control"
	"github.com/notionsync/notionsync/internal/metrics"
	"github.com/notionsync/notionsync/internal/schedule"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/tokens"
)

// AsynqmonPath is where the control server mounts the queue dashboard.
const AsynqmonPath = "/admin/asynqmon"

// maxConnectionSeries caps notionsync_sync_lag_seconds{connection} when
// NOTIONSYNC_METRICS_CONNECTION_LABELS is on.
const maxConnectionSeries = 1000

// RunScheduler runs a scheduler process until ctx is done: the scheduling
// loop (acting only while it holds the leader lease, so replicas are safe)
// and the control plane over HTTP.
func RunScheduler(ctx context.Context, cfg *config.Scheduler, log *zap.Logger) error {
	c, err := newCommon(ctx, log, cfg.Redis, cfg.Tokens, cfg.Notion, tokens.Hooks{})
	if err != nil {
		return err
	}
	defer c.close()
	client := asynq.NewClientFromRedisClient(c.rdb)
	defer client.Close()
	// Every task goes to its connection's part of its queue.
	enq := jobs.SpreadQueues(client, cfg.Sync.QueueShards)
	jc := jobs.NewClient(enq)
	states := jobs.NewStateReader(c.rdb, cfg.Redis.KeyPrefix).SpreadQueues(cfg.Sync.QueueShards)

	// Per-connection series name every connection id; they are opt-in
	// (cardinality, and exposure to whoever reads the metrics).
	perConn := 0
	if cfg.Control.MetricsConnectionLabels {
		perConn = maxConnectionSeries
	}
	conns, err := metrics.NewConnectionsCollector(c.store, states.States, perConn)
	if err != nil {
		return err
	}
	queues, err := metrics.NewQueueCollector(asynq.NewInspectorFromRedisClient(c.rdb))
	if err != nil {
		return err
	}
	c.reg.MustRegister(conns, queues)

	reaper, err := jobs.NewReaper(jobs.ReaperConfig{Redis: c.rdb, KeyPrefix: cfg.Redis.KeyPrefix, Enqueuer: enq, Logger: log.Named("reaper")})
	if err != nil {
		return err
	}
	reconcile := cfg.Sync.ReconcileInterval
	if reconcile == 0 {
		reconcile = -1 // disabled (the scheduler's zero means its default)
	}
	sched, err := schedule.New(schedule.Config{
		Redis: c.rdb, Store: c.store, Enqueuer: jc, Reaper: reaper, KeyPrefix: cfg.Redis.KeyPrefix,
		Tick: cfg.Control.Tick, LeaseTTL: cfg.Control.LeaderLease, SyncInterval: cfg.Sync.Interval,
		ReconcileInterval: reconcile,
		Logger:            log.Named("schedule"), Hooks: c.metrics.ScheduleHooks(schedule.Hooks{}),
	})
	if err != nil {
		return err
	}

	mon := asynqmon.New(asynqmon.Options{
		RootPath:     AsynqmonPath,
		RedisConnOpt: sharedRedis{c.rdb},
		ReadOnly:     cfg.Control.AsynqmonReadOnly,
	})
	// No mon.Close(): it would close the shared Redis client (c.close does).
	// Validated by config.Load.
	proxies, err := cfg.Control.TrustedProxyPrefixes()
	if err != nil {
		return err
	}
	ctl, err := control.New(control.Config{
		Source: c.source, Store: c.store, OAuth: c.oauth, Redis: c.rdb, Enqueuer: jc,
		PublicURL: strings.TrimRight(cfg.Control.PublicURL, "/"), RedirectURI: cfg.Notion.RedirectURI,
		AdminToken: cfg.Control.AdminToken.Value(), KeyPrefix: cfg.Redis.KeyPrefix, Timing: c.timing,
		Asynqmon:           mon,
		NotionWebhookToken: cfg.Control.NotionWebhookToken.Value(),
		NotionWebhookSetup: cfg.Control.NotionWebhookSetup,
		ReauthWebhook:      control.ReauthWebhookConfig{URL: cfg.Control.WebhookURL.Value(), Secret: cfg.Control.WebhookSecret.Value()},
		TrustedProxies:     proxies, LinkTTL: cfg.Control.ReconnectLinkTTL, MaxOAuthStates: cfg.Control.OAuthMaxStates,
		SyncInfo: func(ctx context.Context, id string) (any, error) {
			return states.State(ctx, id)
		},
		SyncInfos: func(ctx context.Context, ids []string) ([]any, error) {
			ss, err := states.States(ctx, ids)
			if err != nil {
				return nil, err
			}
			out := make([]any, len(ss))
			for i := range ss {
				out[i] = ss[i]
			}
			return out, nil
		},
		Console: consoleSync(states),
		Hooks:   c.metrics.ControlHooks(control.Hooks{}),
		Logger:  log.Named("control"),
	})
	if err != nil {
		return err
	}
	defer ctl.Close()
	// The console pages connections by status; records written before the
	// status indexes existed are indexed once (a marker remembers it).
	if n, err := c.store.IndexStatuses(ctx); err != nil {
		return fmt.Errorf("index connections by status: %w", err)
	} else if n > 0 {
		log.Info("connections indexed by status", zap.Int("connections", n))
	}
	log.Info("scheduler started", zap.String("host", hostname()), zap.String("control_addr", cfg.Control.ControlAddr),
		zap.String("metrics_addr", cfg.Control.MetricsAddr),
		zap.String("oauth_start", cfg.Control.PublicURL+"/oauth/start"))

	// Every goroutine started here is waited for before returning: the
	// deferred close of the Redis client must come after the loop released
	// its lease and the HTTP server stopped.
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	schedErr := make(chan error, 1)
	wg.Go(func() { schedErr <- sched.Run(rctx) })
	if cfg.Control.WebhookURL.IsSet() {
		rn := &reauthNotifier{rdb: c.rdb, store: c.store, prefix: cfg.Redis.KeyPrefix, notify: ctl.NotifyNeedsReauth, log: log.Named("reauth-webhook")}
		wg.Go(func() {
			if err := rn.run(rctx); err != nil {
				log.Error("needs_reauth webhook notifier stopped", zap.Error(err))
			}
		})
	}
	httpErr := make(chan error, 2)
	wg.Go(func() { httpErr <- serveHTTP(rctx, log, newHTTPServer(cfg.Control.ControlAddr, ctl.Handler())) })
	// Metrics have their own listener (loopback by default), never the
	// browser-facing control server.
	wg.Go(func() { httpErr <- serveHTTP(rctx, log, newHTTPServer(cfg.Control.MetricsAddr, c.metricsMux())) })

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-schedErr:
		runErr = fmt.Errorf("scheduler loop: %w", err)
	case err := <-httpErr:
		runErr = err
	}
	stop()
	log.Info("scheduler stopping")
	wg.Wait() // the loop releases its lease; the HTTP server drains
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ctl.Shutdown(sctx); err != nil {
		log.Warn("control plane shutdown", zap.Error(err))
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) && !errors.Is(runErr, http.ErrServerClosed) {
		return runErr
	}
	log.Info("scheduler stopped")
	return nil
}

// sharedRedis hands asynqmon the process's Redis client (single node,
// Sentinel or cluster alike) instead of a second connection pool. On a
// cluster it is a *redis.ClusterClient, which asynqmon recognises: its Redis
// page then shows the cluster's nodes and each queue's slot and master.
type sharedRedis struct{ c redis.UniversalClient }

func (s sharedRedis) MakeRedisClient() any { return s.c }
