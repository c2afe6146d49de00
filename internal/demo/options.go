package demo

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Options configures a Cluster. Fields left zero take the documented
// default.
type Options struct {
	// Dir is the working directory: logs/ (one file per process), synced/
	// (the file sink's root) and redis/ (Redis's append-only file). Start
	// empties those three sub-directories; it refuses a non-empty Dir that
	// a demo did not create (it has no .notionsync-demo marker file), and
	// a Dir another demo is running in (it holds a lock on the marker file
	// until its Stop ends). Default "demo-data".
	Dir string
	// Workers is the number of worker processes. Default 3.
	Workers int
	// Schedulers is the number of scheduler replicas. Scheduler 0's address
	// is the public URL (OAuth start and callback) of all of them. Default 1.
	Schedulers int
	// BinDir holds the worker, scheduler and notion-sandbox binaries
	// (make build puts them in bin/). Default "bin".
	BinDir string
	// SandboxArgs are extra notion-sandbox flags (seed size, faults),
	// appended after the ones the Cluster sets, so they win. Default none.
	SandboxArgs []string
	// AccessTokenLifetime is how long the sandbox accepts an access token,
	// sent to notionsync as expires_in as well. Short, so that coordinated
	// refreshes happen while the demo runs. Default 90s.
	AccessTokenLifetime time.Duration
	// RefreshMargin and RefreshJitter are how early tokens are refreshed
	// (NOTIONSYNC_REFRESH_MARGIN, NOTIONSYNC_REFRESH_JITTER). Defaults: a
	// third and a ninth of AccessTokenLifetime (90s: 30s and 10s).
	RefreshMargin time.Duration
	RefreshJitter time.Duration
	// SyncInterval is how often each connection is swept. Default 15s.
	SyncInterval time.Duration
	// SchedulerTick is the scheduler's tick. Default 1s.
	SchedulerTick time.Duration
	// LeaderLease is the scheduler leader lease; more than 2*SchedulerTick.
	// Default 3s.
	LeaderLease time.Duration
	// RateLimit is notionsync's per-connection budget in Notion requests per
	// minute (NOTIONSYNC_NOTION_RATE_LIMIT); the burst is a tenth of it.
	// The sandbox itself limits nothing unless SandboxArgs says so
	// (-rate-limit). Default 1200: fast enough to watch, slow enough to see
	// the progress.
	RateLimit int
	// WorkerConcurrency is the tasks each worker runs at once
	// (NOTIONSYNC_WORKER_CONCURRENCY). Default 50, the workers' own default,
	// so that the demo runs what the README and docs/configuration.md
	// describe.
	WorkerConcurrency int
	// ProgressHeartbeat is how often Watch repeats a progress line that has
	// not changed (a changed line is written at once). Default 30s.
	ProgressHeartbeat time.Duration
	// RedisCluster runs Redis as a Redis Cluster of ClusterMasters masters
	// with one replica each (2*ClusterMasters redis-server processes, made
	// by redis-cli --cluster create) instead of one server; the schedulers
	// and workers get NOTIONSYNC_REDIS_CLUSTER_ADDRS and
	// NOTIONSYNC_QUEUE_SHARDS=ClusterMasters. KillRedisMaster then plays a
	// master's crash. Default false (one redis-server).
	RedisCluster bool
	// Env holds extra KEY=VALUE variables for the schedulers and workers,
	// after the Cluster's own, so they win. Default none.
	Env []string
	// StartTimeout bounds the wait for each process to become ready.
	// Default 30s.
	StartTimeout time.Duration
	// StopTimeout bounds the graceful stop of each group of processes
	// (workers and schedulers, then the sandbox, then Redis) before
	// SIGKILL. Default 20s.
	StopTimeout time.Duration
	// Out receives human-readable progress (Start, Connect, Watch, Stop).
	// Default io.Discard.
	Out io.Writer
}

// Defaults of Options.
const (
	DefaultDir                 = "demo-data"
	DefaultWorkers             = 3
	DefaultSchedulers          = 1
	DefaultBinDir              = "bin"
	DefaultAccessTokenLifetime = 90 * time.Second
	DefaultSyncInterval        = 15 * time.Second
	DefaultSchedulerTick       = time.Second
	DefaultLeaderLease         = 3 * time.Second
	DefaultRateLimit           = 1200
	DefaultWorkerConcurrency   = 50
	DefaultProgressHeartbeat   = 30 * time.Second
	DefaultStartTimeout        = 30 * time.Second
	DefaultStopTimeout         = 20 * time.Second
)

// maxProcesses bounds Workers and Schedulers, so that a typo cannot fork
// hundreds of processes.
const maxProcesses = 64

func (o Options) withDefaults() (Options, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for name, n := range map[string]int{"Workers": o.Workers, "Schedulers": o.Schedulers} {
		if n < 0 || n > maxProcesses {
			bad("demo: Options.%s %d outside 0..%d", name, n, maxProcesses)
		}
	}
	for name, d := range map[string]time.Duration{
		"AccessTokenLifetime": o.AccessTokenLifetime, "RefreshMargin": o.RefreshMargin,
		"RefreshJitter": o.RefreshJitter, "SyncInterval": o.SyncInterval, "SchedulerTick": o.SchedulerTick,
		"LeaderLease": o.LeaderLease, "StartTimeout": o.StartTimeout, "StopTimeout": o.StopTimeout,
		"ProgressHeartbeat": o.ProgressHeartbeat,
	} {
		if d < 0 {
			bad("demo: Options.%s %v is negative", name, d)
		}
	}
	if o.RateLimit < 0 || o.WorkerConcurrency < 0 {
		bad("demo: Options.RateLimit and WorkerConcurrency must not be negative")
	}
	for _, kv := range o.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			bad("demo: Options.Env entry %q is not KEY=VALUE", kv)
		}
	}
	o.Dir = cmpOr(o.Dir, DefaultDir)
	o.Workers = cmpOr(o.Workers, DefaultWorkers)
	o.Schedulers = cmpOr(o.Schedulers, DefaultSchedulers)
	o.BinDir = cmpOr(o.BinDir, DefaultBinDir)
	o.AccessTokenLifetime = cmpOr(o.AccessTokenLifetime, DefaultAccessTokenLifetime)
	o.RefreshMargin = cmpOr(o.RefreshMargin, (o.AccessTokenLifetime / 3).Round(100*time.Millisecond))
	o.RefreshJitter = cmpOr(o.RefreshJitter, (o.AccessTokenLifetime / 9).Round(100*time.Millisecond))
	o.SyncInterval = cmpOr(o.SyncInterval, DefaultSyncInterval)
	o.SchedulerTick = cmpOr(o.SchedulerTick, DefaultSchedulerTick)
	o.LeaderLease = cmpOr(o.LeaderLease, DefaultLeaderLease)
	o.RateLimit = cmpOr(o.RateLimit, DefaultRateLimit)
	o.WorkerConcurrency = cmpOr(o.WorkerConcurrency, DefaultWorkerConcurrency)
	o.ProgressHeartbeat = cmpOr(o.ProgressHeartbeat, DefaultProgressHeartbeat)
	o.StartTimeout = cmpOr(o.StartTimeout, DefaultStartTimeout)
	o.StopTimeout = cmpOr(o.StopTimeout, DefaultStopTimeout)
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.RefreshMargin >= o.AccessTokenLifetime {
		bad("demo: RefreshMargin %v must be less than AccessTokenLifetime %v", o.RefreshMargin, o.AccessTokenLifetime)
	}
	if o.LeaderLease <= 2*o.SchedulerTick {
		bad("demo: LeaderLease %v must be more than twice SchedulerTick %v", o.LeaderLease, o.SchedulerTick)
	}
	if o.SyncInterval < o.SchedulerTick {
		bad("demo: SyncInterval %v must be at least SchedulerTick %v", o.SyncInterval, o.SchedulerTick)
	}
	return o, errors.Join(errs...)
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
