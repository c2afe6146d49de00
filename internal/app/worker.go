package app

import (
	"time"

	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/config"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/sync/files"
	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/pgsink"
	"github.com/notionsync/notionsync/tokens"
)

// RunWorker runs a worker process until ctx is done: an asynq server with
// every job handler, sharing one Redis client with the token store, the
// refresh locks and the rate limiter; health and metrics on HTTPAddr.
//
// When ctx is done the worker stops taking tasks, lets running ones finish
// within ShutdownTimeout and hands the rest back to their queues.
func RunWorker(ctx context.Context, cfg *config.Worker, log *zap.Logger) error {
	c, err := newCommon(ctx, log, cfg.Redis, cfg.Tokens, cfg.Notion, tokens.Hooks{})
	if err != nil {
		return err
	}
	defer c.close()

	notion, err := notionclient.New(c.rdb, c.source, notionclient.Config{
		BaseURL: cfg.Notion.APIURL, NotionVersion: cfg.Notion.Version,
		RatePerMinute: cfg.Notion.RateLimit, Burst: cfg.Notion.RateBurst,
		KeyPrefix: cfg.Redis.KeyPrefix, Logger: log.Named("notion"), Observer: c.metrics.NotionObserver(),
	})
	if err != nil {
		return err
	}
	defer notion.CloseIdleConnections()
	sk, err := sink.Open(ctx, cfg.Sync.SinkURL.Value(), sink.Options{Logger: log.Named("sink"),
		Postgres: pgsink.Options{BlobURL: cfg.Files.BlobURL.Value()}})
	if err != nil {
		return fmt.Errorf("NOTIONSYNC_SINK_URL: %w", err)
	}
	defer sk.Close()
	var dl *files.Downloader
	if cfg.Files.Enabled {
		dl, err = files.New(files.Config{
			AllowedHosts: cfg.Files.Hosts, AllowHTTP: cfg.Files.AllowInsecure, AllowPrivateAddresses: cfg.Files.AllowInsecure,
			MaxFileBytes: cfg.Files.MaxBytes, ConnectionQuota: cfg.Files.QuotaBytes, Concurrency: cfg.Files.DownloadConcurrency,
			Logger: log.Named("files"),
		})
		if err != nil {
			return err
		}
	}
	client := asynq.NewClientFromRedisClient(c.rdb)
	defer client.Close()
	h, err := jobs.New(jobs.Config{
		Files:  dl,
		Tokens: c.source, Notion: notion, Sink: sk, Redis: c.rdb, Enqueuer: jobs.SpreadQueues(client, cfg.Sync.QueueShards),
		KeyPrefix: cfg.Redis.KeyPrefix, Overlap: cfg.Sync.Overlap, MaxBlockDepth: cfg.Sync.MaxBlockDepth,
		MaxObjectBlocks: cfg.Sync.MaxObjectBlocks, MaxObjectRequests: cfg.Sync.MaxObjectRequests, MaxObjectBytes: cfg.Sync.MaxObjectBytes,
		DrainSlice: cfg.Sync.DrainSlice, PagesInFlight: cfg.Sync.PagesInFlight, ClaimTTL: cfg.Sync.ClaimTTL,
		UsersInterval: usersInterval(cfg.Sync.UsersInterval),
		Logger:        log.Named("jobs"), Hooks: c.metrics.JobHooks(jobs.Hooks{}),
	})
	if err != nil {
		return err
	}
	queues, err := servedQueues(c.rdb, cfg.Pool.Queues, cfg.Sync.QueueShards)
	if err != nil {
		return err
	}
	srv := asynq.NewServerFromRedisClient(c.rdb, h.ServerConfig(asynq.Config{
		Concurrency:     cfg.Pool.Concurrency,
		Queues:          queues,
		ShutdownTimeout: cfg.Pool.ShutdownTimeout,
		// asynq's own loops poll Redis whether or not there is work: in an
		// idle fleet they were most of its round trips (docs/BENCHMARKS.md).
		TaskCheckInterval:        cfg.Pool.PollInterval,
		DelayedTaskCheckInterval: cfg.Pool.DelayedCheckInterval,
		JanitorInterval:          cfg.Pool.JanitorInterval,
		Logger:                   jobs.AsynqLogger{L: log.Named("asynq")},
		LogLevel:                 asynq.WarnLevel,
		StrictPriority:           false,
	}))
	mux := asynq.NewServeMux()
	h.Register(mux)
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("asynq server: %w", err)
	}
	log.Info("worker started", zap.String("host", hostname()), zap.Int("concurrency", cfg.Pool.Concurrency),
		zap.Any("queues", cfg.Pool.Queues), zap.Int("queue_shards", cfg.Sync.QueueShards), zap.Int("queues_served", len(queues)),
		zap.String("http_addr", cfg.Pool.HTTPAddr))

	httpErr := make(chan error, 1)
	hctx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	go func() { httpErr <- serveHTTP(hctx, log, newHTTPServer(cfg.Pool.HTTPAddr, c.healthMux())) }()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-httpErr:
	}
	log.Info("worker stopping: no new tasks; running ones get the shutdown timeout", zap.Duration("timeout", cfg.Pool.ShutdownTimeout))
	h.Stop()       // drains stop their pages in flight and queue their continuations
	srv.Shutdown() // unfinished tasks go back to their queues
	stopHTTP()
	if runErr == nil {
		runErr = <-httpErr
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	log.Info("worker stopped")
	return nil
}

// usersInterval maps NOTIONSYNC_USERS_INTERVAL (0: off) to
// jobs.Config.UsersInterval (0: the default, negative: off).
func usersInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// servedQueues returns the asynq queues a worker serves: every part of each
// configured base queue (NOTIONSYNC_QUEUE_SHARDS), and the parts left in
// Redis from another number of parts, so that changing the number strands
// no task (jobs.ServedQueues).
func servedQueues(rdb redis.UniversalClient, weights config.QueueWeights, shards int) (map[string]int, error) {
	// Not closed: it would close the shared client.
	existing, err := asynq.NewInspectorFromRedisClient(rdb).Queues()
	if err != nil {
		return nil, fmt.Errorf("list asynq queues: %w", err)
	}
	return jobs.ServedQueues(weights, shards, existing), nil
}
