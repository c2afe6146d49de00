package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/tokens"
)

// Enqueuer turns the scheduler's decisions into tasks. Package jobs
// implements it (jobs.Client); tests use a hand-written fake.
//
// Both methods must be idempotent per task id, and a duplicate must not be an
// error: the scheduler asks again every tick until the work is done, and two
// schedulers that both believe they lead (for a moment) ask for the same
// tasks. An error wrapping asynq.ErrTaskIDConflict or asynq.ErrDuplicateTask
// is also counted as "already enqueued".
type Enqueuer interface {
	// EnqueueRefresh enqueues a proactive token refresh. The task id must be
	// derived from (connID, version), so a token version is refreshed by one
	// task however often it is asked for.
	EnqueueRefresh(ctx context.Context, connID string, version int64) error
	// EnqueueSweep enqueues a sync sweep for the scheduled slot. The task id
	// must be derived from (connID, slot): slot is the time the sweep was
	// scheduled for (read from Redis, not from a clock), so every scheduler
	// that acts on it produces the same id.
	EnqueueSweep(ctx context.Context, connID string, slot time.Time) error
}

// RefreshAtEnqueuer is optionally implemented by an Enqueuer. When it is,
// the scheduler calls EnqueueRefreshAt instead of EnqueueRefresh, passing the
// time the refresh is due: the token's refresh-due time, or the end of its
// failure backoff, whichever is later. An implementation should derive the
// task id from (connID, version, due) and run the task no earlier than due
// (asynq.ProcessAt): then each backoff step gets its own task even when a
// completed task's id is retained, and a task picked up within the lookahead
// does not run before the token is due. See doc.go.
type RefreshAtEnqueuer interface {
	EnqueueRefreshAt(ctx context.Context, connID string, version int64, due time.Time) error
}

// SweepBatchEnqueuer is optionally implemented by an Enqueuer. When it is,
// the sweeps that fall due in one tick are handed out in batches of up to
// Config.SweepBatch, one call (one task) per batch, instead of one
// EnqueueSweep each: an unchanged workspace's sweep is one Notion request,
// and a task of its own costs several Redis round trips. connIDs[i] is due
// for slots[i]. Duplicates are as harmless as for EnqueueSweep.
type SweepBatchEnqueuer interface {
	EnqueueSweeps(ctx context.Context, connIDs []string, slots []time.Time) error
}

// ReconcileEnqueuer is optionally implemented by an Enqueuer (jobs.Client
// does). When it is and Config.ReconcileInterval is positive, each active
// connection's reconciliation pass (a full comparison of the sink with
// what Notion shows; see package jobs) is enqueued once per
// ReconcileInterval, with the sweep whose slot window holds the
// connection's period boundary (ReconcileSlot). The task id must be
// derived from (connID, slot), so two schedulers that both act on it
// produce one task.
type ReconcileEnqueuer interface {
	EnqueueReconcile(ctx context.Context, connID string, slot time.Time) error
}

// Reaper hands the work of tasks whose worker died to new tasks (package
// jobs implements it: jobs.Reaper). The leader calls it first in every
// tick, so a dead worker's connections go on within about the tasks' lease
// plus Tick, not when asynq recovers the tasks (a minute or two).
type Reaper interface {
	Reap(ctx context.Context) (int, error)
}

// MetaSyncInterval is the connection metadata key (tokens.ConnectOptions.Meta)
// that overrides Config.SyncInterval for one connection. Its value is a Go
// duration ("15m", "1h30m"). Values that do not parse or are not positive
// are ignored; values below Config.Tick count as Config.Tick.
const MetaSyncInterval = "sync_interval"

// Hooks observe a Scheduler. Both are optional and called synchronously, so
// they must be fast and must not call back into the Scheduler's Run.
type Hooks struct {
	// OnLeaderChange is called when this instance gains (true) or loses
	// (false) the leader lease, from the goroutine that maintains the lease.
	// Run reports false before it returns if it was leading.
	OnLeaderChange func(isLeader bool)
	// OnTick is called after every tick, with what it did.
	OnTick func(stats TickStats)
}

// Config configures a Scheduler. Durations and counts left zero take the
// documented default.
type Config struct {
	// Redis holds the leader lease, the sweep schedule and the discovery
	// cursors (single node, Sentinel or Redis Cluster). Required. Normally
	// the same client the Store uses.
	Redis redis.UniversalClient
	// Store is read for due refreshes (Due), connection state (Get) and
	// discovery (List). Required.
	Store *tokens.Store
	// Enqueuer receives the tasks. Required.
	Enqueuer Enqueuer
	// Reaper, if set, is called at the start of every tick the leader runs.
	Reaper Reaper

	// KeyPrefix prefixes the scheduler's Redis keys. Default "notionsync:".
	KeyPrefix string
	// Tick is how often the leader acts and a standby tries to take the
	// lease. Default 5s.
	Tick time.Duration
	// LeaseTTL is the expiry of the leader lease. It must be more than
	// 2*Tick. The leader renews it every LeaseTTL/5 and stops acting when
	// its last successful renewal was sent more than LeaseTTL/2 ago. After a
	// leader dies without releasing, a standby takes over within
	// LeaseTTL + Tick. Default 15s.
	LeaseTTL time.Duration
	// RefreshLookahead: each tick takes the connections whose refresh is due
	// before now+RefreshLookahead, so the task is queued by the time the
	// token is due. Default 2*Tick; a negative value means none (only what
	// is already due). See doc.go for how it interacts with the refresh task.
	RefreshLookahead time.Duration
	// MaxRefreshPerTick caps the refreshes read and enqueued per tick.
	// Default 1000.
	MaxRefreshPerTick int
	// SyncInterval is how often an active connection is swept, unless its
	// metadata overrides it (MetaSyncInterval). At least Tick. Default 5m.
	SyncInterval time.Duration
	// ReconcileInterval is how often each active connection gets a
	// reconciliation pass (when the Enqueuer implements ReconcileEnqueuer).
	// Connections are spread over the interval by a hash of their id
	// (ReconcileSlot), so a fleet's passes do not start at once. Default
	// 24h; a negative value disables the passes.
	ReconcileInterval time.Duration
	// ParkInterval is how often a connection that needs re-authorization or
	// is disconnected is looked at again by the sweep schedule (one read, no
	// task). Default 1h.
	ParkInterval time.Duration
	// MaxSweepsPerTick caps the sweeps read and enqueued per tick.
	// Default 1000.
	MaxSweepsPerTick int
	// DiscoverPerTick caps how many newly created connections one tick adds
	// to the sweep schedule (it follows the tail of the store's connection
	// list). Default 1000.
	DiscoverPerTick int
	// RescanPerTick is how many connections of the full connection list are
	// re-checked per tick, cycling, to repair the sweep schedule
	// (connections it lost). Default 100; a negative value disables the
	// rescan. Run does it once per DiscoverInterval, that many ticks' worth
	// at once (one page read instead of several).
	RescanPerTick int
	// DiscoverInterval is how often Run's ticks look for new connections
	// and rescan (DiscoverPerTick and RescanPerTick are scaled by the
	// ticks in between, so the throughput is the same). Discovery costs a
	// few Redis round trips whether or not anything is new, and a new
	// connection does not wait for it: the control plane enqueues its first
	// sync itself; discovery only gives it its place on the sweep schedule.
	// Tick (the exported method) always discovers. At least Tick; default
	// 15s.
	DiscoverInterval time.Duration
	// SweepBatch is the most sweeps handed out in one call when the
	// Enqueuer implements SweepBatchEnqueuer. Default 50; 1 hands out every
	// sweep on its own (EnqueueSweep).
	SweepBatch int
	// Concurrency bounds the Redis reads and enqueues a tick runs at once.
	// Default 8.
	Concurrency int
	// InstanceID names this instance in the lease. Default
	// "<hostname>-<pid>-<random>". Two instances must never share one.
	InstanceID string
	// Logger receives structured logs. Default: no logs.
	Logger *zap.Logger
	// Now is the clock for scheduling decisions (due times, sweep slots).
	// The lease always runs on the real monotonic clock, since Redis expires
	// it in real time. Default time.Now.
	Now func() time.Time
	// Hooks observe the Scheduler.
	Hooks Hooks
}

// TickStats reports what one tick did.
type TickStats struct {
	// RefreshDue is how many connections the due index returned.
	RefreshDue int
	// RefreshEnqueued is how many refresh tasks were enqueued (or were
	// already queued: the Enqueuer de-duplicates).
	RefreshEnqueued int
	// SweepsDue is how many sweeps were due.
	SweepsDue int
	// SweepsEnqueued is how many sweep tasks were enqueued (or were already
	// queued).
	SweepsEnqueued int
	// ReconcilesEnqueued is how many reconciliation passes were enqueued
	// (or were already queued).
	ReconcilesEnqueued int
	// Skipped counts due entries that needed no task: a sweep of a paused
	// connection, anything of a needs_reauth, disconnected or missing one,
	// or a refresh that is no longer due by the record (another process
	// refreshed it, or a failure backed it off, after the index was read).
	Skipped int
	// Discovered is how many connections were added to the sweep schedule.
	Discovered int
	// Reaped is how many leases of dead tasks the Reaper handed on.
	Reaped int
	// Errors counts per-connection failures (a read or an enqueue); they are
	// retried on a later tick.
	Errors int
	// Took is the tick's wall time.
	Took time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.Redis == nil {
		return c, errors.New("schedule: Config.Redis is required")
	}
	if c.Store == nil {
		return c, errors.New("schedule: Config.Store is required")
	}
	if c.Enqueuer == nil {
		return c, errors.New("schedule: Config.Enqueuer is required")
	}
	for name, d := range map[string]time.Duration{
		"Tick": c.Tick, "LeaseTTL": c.LeaseTTL, "SyncInterval": c.SyncInterval, "ParkInterval": c.ParkInterval,
		"DiscoverInterval": c.DiscoverInterval,
	} {
		if d < 0 {
			return c, fmt.Errorf("schedule: Config.%s must not be negative", name)
		}
	}
	for name, n := range map[string]int{
		"MaxRefreshPerTick": c.MaxRefreshPerTick, "MaxSweepsPerTick": c.MaxSweepsPerTick,
		"DiscoverPerTick": c.DiscoverPerTick, "Concurrency": c.Concurrency, "SweepBatch": c.SweepBatch,
	} {
		if n < 0 {
			return c, fmt.Errorf("schedule: Config.%s must not be negative", name)
		}
	}
	c.KeyPrefix = cmpOr(c.KeyPrefix, "notionsync:")
	c.Tick = cmpOr(c.Tick, 5*time.Second)
	c.LeaseTTL = cmpOr(c.LeaseTTL, 15*time.Second)
	if c.LeaseTTL <= 2*c.Tick {
		return c, fmt.Errorf("schedule: LeaseTTL (%s) must be more than twice Tick (%s)", c.LeaseTTL, c.Tick)
	}
	switch {
	case c.RefreshLookahead == 0:
		c.RefreshLookahead = 2 * c.Tick
	case c.RefreshLookahead < 0:
		c.RefreshLookahead = 0
	}
	c.MaxRefreshPerTick = cmpOr(c.MaxRefreshPerTick, 1000)
	c.SyncInterval = cmpOr(c.SyncInterval, 5*time.Minute)
	c.ReconcileInterval = cmpOr(c.ReconcileInterval, 24*time.Hour)
	if c.SyncInterval < c.Tick {
		return c, fmt.Errorf("schedule: SyncInterval (%s) must be at least Tick (%s)", c.SyncInterval, c.Tick)
	}
	c.ParkInterval = cmpOr(c.ParkInterval, time.Hour)
	c.MaxSweepsPerTick = cmpOr(c.MaxSweepsPerTick, 1000)
	c.DiscoverPerTick = cmpOr(c.DiscoverPerTick, 1000)
	c.RescanPerTick = cmpOr(c.RescanPerTick, 100)
	c.DiscoverInterval = max(cmpOr(c.DiscoverInterval, 15*time.Second), c.Tick)
	c.Concurrency = cmpOr(c.Concurrency, 8)
	c.SweepBatch = cmpOr(c.SweepBatch, 50)
	if c.InstanceID == "" {
		c.InstanceID = defaultInstanceID()
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func defaultInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "scheduler"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand crashes instead)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
