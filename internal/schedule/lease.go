package schedule

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// The leader lease is one Redis string, <prefix>scheduler:leader, holding
// the leader's instance id with an expiry of LeaseTTL. Every script compares
// the stored id with the caller's before it touches the key, so an instance
// can only extend or delete its own lease.

// acquireScript takes the lease if nobody holds it, or extends it if the
// caller already holds it (a leader that stepped down because its renewals
// were failing, while the key in fact survived, gets it back at once instead
// of waiting for its own lease to expire).
//
//	KEYS[1] lease   ARGV[1] instance id   ARGV[2] TTL ms
//
// Returns 1 when the caller holds the lease afterwards, else 0.
var acquireScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// renewScript extends the lease only if the caller still holds it.
// Returns 1 on success, 0 when the lease expired or another instance holds it.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// releaseScript deletes the lease only if the caller holds it.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// errLostLease cancels the leader context when the lease is lost.
var errLostLease = errors.New("schedule: lost the leader lease")

// keepLease maintains the lease until ctx is done: a standby tries to
// acquire it every Tick, a leader renews it every renewEvery. kick is
// signalled when the lease is acquired, so the first tick runs at once.
func (s *Scheduler) keepLease(ctx context.Context, kick chan<- struct{}) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if s.leadingFlag() {
			s.renew(ctx)
		} else if s.acquire(ctx) {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
		next := s.cfg.Tick
		if s.leadingFlag() {
			next = s.renewEvery
		}
		timer.Reset(next)
	}
}

func (s *Scheduler) ttlMs() int64 { return s.cfg.LeaseTTL.Milliseconds() }

// acquire tries to take the lease; it reports whether this instance leads.
func (s *Scheduler) acquire(ctx context.Context) bool {
	sent := time.Now()
	cctx, cancel := context.WithTimeout(ctx, s.cfg.LeaseTTL/2)
	n, err := acquireScript.Run(cctx, s.rdb, []string{s.leaseKey}, s.cfg.InstanceID, s.ttlMs()).Int64()
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("leader lease: acquire failed", zap.Error(err))
		}
		return false
	}
	if n != 1 {
		return false
	}
	s.becomeLeader(ctx, sent)
	return true
}

// renew extends the lease. The validity window is counted from when the
// renewal was sent, not from when it was answered, so it never outlasts the
// expiry Redis applies (which starts when Redis runs the script, later); a
// slow answer is therefore still good, and the call may take up to
// LeaseTTL/2, after which its window would be over anyway.
func (s *Scheduler) renew(ctx context.Context) {
	sent := time.Now()
	cctx, cancel := context.WithTimeout(ctx, s.cfg.LeaseTTL/2)
	n, err := renewScript.Run(cctx, s.rdb, []string{s.leaseKey}, s.cfg.InstanceID, s.ttlMs()).Int64()
	cancel()
	switch {
	case err == nil && n == 1:
		s.mu.Lock()
		s.validUntil = sent.Add(s.cfg.LeaseTTL / 2)
		s.mu.Unlock()
	case err == nil:
		s.stepDown("the lease expired or another instance holds it")
	case ctx.Err() != nil:
		// Shutting down: Run releases the lease.
	case !s.IsLeader():
		s.stepDown("renewals failed for longer than LeaseTTL/2: " + err.Error())
	default:
		s.log.Warn("leader lease: renewal failed; still within the lease", zap.Error(err))
	}
}

// becomeLeader records a freshly acquired lease.
func (s *Scheduler) becomeLeader(parent context.Context, sent time.Time) {
	s.mu.Lock()
	s.leading = true
	s.validUntil = sent.Add(s.cfg.LeaseTTL / 2)
	s.leaderCtx, s.leaderCancel = context.WithCancelCause(parent)
	s.mu.Unlock()
	s.log.Info("leader lease acquired", zap.String("instance", s.cfg.InstanceID))
	if h := s.cfg.Hooks.OnLeaderChange; h != nil {
		h(true)
	}
}

// stepDown stops acting: it cancels the running tick and reports the change.
// It does not touch Redis.
func (s *Scheduler) stepDown(reason string) {
	s.mu.Lock()
	if !s.leading {
		s.mu.Unlock()
		return
	}
	s.leading = false
	s.validUntil = time.Time{}
	s.leaderCancel(errLostLease)
	s.leaderCtx, s.leaderCancel = nil, nil
	s.mu.Unlock()
	s.log.Warn("no longer the leader", zap.String("instance", s.cfg.InstanceID), zap.String("reason", reason))
	if h := s.cfg.Hooks.OnLeaderChange; h != nil {
		h(false)
	}
}

// release deletes the lease if this instance holds it, so a standby takes
// over at its next attempt instead of after LeaseTTL.
func (s *Scheduler) release(ctx context.Context) {
	wasLeading := s.leadingFlag()
	if wasLeading {
		s.mu.Lock()
		s.leading = false
		s.validUntil = time.Time{}
		s.leaderCancel(context.Canceled)
		s.leaderCtx, s.leaderCancel = nil, nil
		s.mu.Unlock()
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(s.cfg.LeaseTTL, 5*time.Second))
	defer cancel()
	n, err := releaseScript.Run(cctx, s.rdb, []string{s.leaseKey}, s.cfg.InstanceID).Int64()
	switch {
	case err != nil:
		s.log.Warn("leader lease: release failed; a standby takes over when it expires", zap.Error(err))
	case n == 1:
		s.log.Info("leader lease released", zap.String("instance", s.cfg.InstanceID))
	}
	if wasLeading {
		if h := s.cfg.Hooks.OnLeaderChange; h != nil {
			h(false)
		}
	}
}

func (s *Scheduler) leadingFlag() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leading
}

// leaderContext returns the context of the current leadership (cancelled
// when it ends) and whether this instance may act now.
func (s *Scheduler) leaderContext() (context.Context, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leading || !time.Now().Before(s.validUntil) {
		return nil, false
	}
	return s.leaderCtx, true
}
