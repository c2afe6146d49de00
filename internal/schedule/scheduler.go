package schedule

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/tokens"
)

// ErrAlreadyRunning is returned by Run when the Scheduler is already running.
var ErrAlreadyRunning = errors.New("schedule: Run is already running")

// Scheduler enqueues proactive token refreshes and periodic sync sweeps,
// acting only while it holds the leader lease. See doc.go.
type Scheduler struct {
	cfg        Config
	rdb        redis.UniversalClient
	store      *tokens.Store
	enq        Enqueuer
	enqAt      RefreshAtEnqueuer  // nil unless cfg.Enqueuer implements it
	enqBatch   SweepBatchEnqueuer // nil unless cfg.Enqueuer implements it and SweepBatch > 1
	enqRecon   ReconcileEnqueuer  // nil unless cfg.Enqueuer implements it and ReconcileInterval > 0
	log        *zap.Logger
	now        func() time.Time
	leaseKey   string
	sweepKeys  [keyspace.Shards]string // shard i of the sweep schedule
	cursorKey  string
	renewEvery time.Duration

	running atomic.Bool

	mu           sync.Mutex
	leading      bool
	validUntil   time.Time // real, monotonic: acting is allowed before it
	leaderCtx    context.Context
	leaderCancel context.CancelCauseFunc
}

// New validates cfg and returns a Scheduler. It does not touch Redis.
func New(cfg Config) (*Scheduler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Scheduler{
		cfg:        cfg,
		rdb:        cfg.Redis,
		store:      cfg.Store,
		enq:        cfg.Enqueuer,
		log:        cfg.Logger,
		now:        cfg.Now,
		leaseKey:   cfg.KeyPrefix + "scheduler:leader",
		cursorKey:  cfg.KeyPrefix + "sweeps:cursor",
		renewEvery: cfg.LeaseTTL / 5,
	}
	for i := range keyspace.Shards {
		s.sweepKeys[i] = keyspace.Shard(cfg.KeyPrefix, i) + "sweeps"
	}
	s.enqAt, _ = cfg.Enqueuer.(RefreshAtEnqueuer)
	if cfg.SweepBatch > 1 {
		s.enqBatch, _ = cfg.Enqueuer.(SweepBatchEnqueuer)
	}
	if cfg.ReconcileInterval > 0 {
		s.enqRecon, _ = cfg.Enqueuer.(ReconcileEnqueuer)
	}
	return s, nil
}

// Run competes for the leader lease and, while it holds it, runs a tick
// every Tick. It blocks until ctx is done, then stops ticking, releases the
// lease (so a standby takes over at its next attempt) and returns nil.
// Redis failures are logged and retried; they never end Run. Run must not be
// called again while it runs (ErrAlreadyRunning).
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer s.running.Store(false)

	kick := make(chan struct{}, 1)
	leaseCtx, stopLease := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.keepLease(leaseCtx, kick) })

	s.tickLoop(ctx, kick)

	stopLease()
	wg.Wait()
	s.release(ctx)
	return nil
}

// tickLoop runs a tick every Tick (and at once after the lease is acquired)
// while this instance may act.
func (s *Scheduler) tickLoop(ctx context.Context, kick <-chan struct{}) {
	ticker := time.NewTicker(s.cfg.Tick)
	defer ticker.Stop()
	var p pace
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-kick:
			p = pace{} // a new leadership starts with a full tick
		}
		lctx, ok := s.leaderContext()
		if !ok {
			p = pace{}
			continue
		}
		_, err := s.tick(lctx, s.IsLeader, &p)
		switch {
		case err == nil:
		case errors.Is(err, errLostLease), errors.Is(context.Cause(lctx), errLostLease):
			s.log.Info("tick stopped: the leader lease was lost")
		case ctx.Err() != nil:
		default:
			s.log.Warn("tick failed", zap.Error(err))
		}
	}
}

// IsLeader reports whether this instance holds the lease and may act: its
// last successful renewal was sent less than LeaseTTL/2 ago. Safe for
// concurrent use.
func (s *Scheduler) IsLeader() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leading && time.Now().Before(s.validUntil)
}

// Tick runs one tick now, whether or not this instance holds the lease (Run
// calls it only while it does). It is exported for tests, benchmarks and
// operators; running it concurrently with a leader is safe, because every
// task it enqueues has the id the leader would use (see doc.go). The error
// reports a failure to read or write the schedule; per-connection failures
// are counted in TickStats.Errors and retried on a later tick.
func (s *Scheduler) Tick(ctx context.Context) (TickStats, error) {
	return s.tick(ctx, nil, nil)
}

// pace is what Run's tick loop remembers between ticks to leave out the
// parts of a tick that cannot find anything (see tick). The zero value
// runs everything.
type pace struct {
	// nextRefresh: the refresh-due index need not be read before it.
	nextRefresh time.Time
	// nextDiscover: discovery and rescan are not run before it.
	nextDiscover time.Time
}
