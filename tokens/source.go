package tokens

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// Outcome is the result of one refresh attempt, as reported to Hooks.
type Outcome string

const (
	OutcomeRefreshed      Outcome = "refreshed"
	OutcomeTransient      Outcome = "transient"
	OutcomeNeedsReauth    Outcome = "needs_reauth"
	OutcomeClientRejected Outcome = "client_rejected"
	OutcomeStaleWrite     Outcome = "stale_write"
)

// Hooks observe a Source. Every field is optional; hooks are called
// synchronously, so they must be fast and must not call back into the Source.
// Metrics are attached here (the package imports no metrics library).
type Hooks struct {
	// OnRefresh reports the outcome of every refresh that called the provider.
	OnRefresh func(connID string, outcome Outcome, took time.Duration)
	// OnTokenCall reports every call of the token endpoint and its latency;
	// err is nil on success.
	OnTokenCall func(connID string, err error, took time.Duration)
	// OnLockAcquired reports how long a caller waited before it held the
	// connection's refresh lock.
	OnLockAcquired func(connID string, waited time.Duration)
	// OnLockBusy is called when a caller finds another process refreshing
	// the connection and starts waiting for its notification.
	OnLockBusy func(connID string)
	// OnNeedsReauth is called once when this process marks a connection
	// needs_reauth.
	OnNeedsReauth func(connID string, reason Reason, detail string)

	// BeforeTokenCall and AfterTokenResponse run inside a refresh, while the
	// lock is held: just before the token endpoint is called, and after a
	// successful response but before it is stored. They exist so tests can
	// stop a process at those points.
	BeforeTokenCall    func(connID string)
	AfterTokenResponse func(connID string)
}

// Config configures a Source.
type Config struct {
	// Store holds the connections. Required.
	Store *Store
	// Provider spends refresh tokens. Required.
	Provider Provider
	// Timing decides expiry and refresh-due times (see Timing for defaults).
	Timing Timing
	// CallTimeout bounds one call of the token endpoint. Default 10s.
	CallTimeout time.Duration
	// LockTTL is the expiry of the per-connection refresh lock. It must be
	// more than twice CallTimeout; the lock is extended every LockTTL/3 while
	// a call runs. Default 30s.
	LockTTL time.Duration
	// UnknownOutcomeRetries is how many times a refresh whose outcome is
	// unknown (timeout, 5xx, dropped connection) is retried with the same
	// refresh token before giving up for now. Default 2.
	UnknownOutcomeRetries int
	// RetryBackoff is the first delay between those retries (it doubles).
	// Default 500ms.
	RetryBackoff time.Duration
	// FailureBackoff is the first delay after a refresh failed for now; it
	// doubles per consecutive failure up to MaxFailureBackoff. No refresh of
	// the connection is attempted before it passes. Default 5s.
	FailureBackoff time.Duration
	// MaxFailureBackoff caps FailureBackoff. Default 10m.
	MaxFailureBackoff time.Duration
	// MaxWait bounds how long a flight waits for another process's refresh
	// before it gives up with a TransientError. It should cover a whole
	// refresh with its retries. Default 2*LockTTL + (UnknownOutcomeRetries+1)
	// * CallTimeout.
	MaxWait time.Duration
	// CacheMaxAge bounds how long a token read from Redis is served from
	// memory; notifications drop entries as soon as any process changes the
	// connection. Negative disables the cache. Default 30s.
	CacheMaxAge time.Duration
	// Logger receives structured logs (never a token). Default: no logs.
	Logger *zap.Logger
	// Hooks observe the Source.
	Hooks Hooks
}

// Source hands out valid access tokens and refreshes them so that, across
// any number of goroutines and processes sharing one Redis, each refresh
// token is spent exactly once (see doc.go for the protocol).
//
// All methods are safe for concurrent use. A refresh, once started, runs to
// its own deadline even if the caller that triggered it gives up (its
// context is cancelled): a rotation the provider committed is always stored.
type Source struct {
	cfg   Config
	store *Store
	log   *zap.Logger
	rs    *redsync.Redsync
	hub   *hub
	cache *tokenCache
	group singleflight.Group
}

// NewSource validates cfg, subscribes to the notification channel (ctx bounds
// that) and returns a Source. Call Close when done.
func NewSource(ctx context.Context, cfg Config) (*Source, error) {
	if cfg.Store == nil {
		return nil, errors.New("tokens: Config.Store is required")
	}
	if cfg.Provider == nil {
		return nil, errors.New("tokens: Config.Provider is required")
	}
	cfg.Timing = cfg.Timing.withDefaults()
	cfg.CallTimeout = cmpOr(cfg.CallTimeout, 10*time.Second)
	cfg.LockTTL = cmpOr(cfg.LockTTL, 30*time.Second)
	if cfg.LockTTL <= 2*cfg.CallTimeout {
		return nil, fmt.Errorf("tokens: LockTTL (%s) must be more than twice CallTimeout (%s)", cfg.LockTTL, cfg.CallTimeout)
	}
	if cfg.UnknownOutcomeRetries < 0 {
		return nil, errors.New("tokens: UnknownOutcomeRetries must not be negative")
	}
	cfg.UnknownOutcomeRetries = cmpOr(cfg.UnknownOutcomeRetries, 2)
	cfg.RetryBackoff = cmpOr(cfg.RetryBackoff, 500*time.Millisecond)
	cfg.FailureBackoff = cmpOr(cfg.FailureBackoff, 5*time.Second)
	cfg.MaxFailureBackoff = cmpOr(cfg.MaxFailureBackoff, 10*time.Minute)
	cfg.MaxWait = cmpOr(cfg.MaxWait, 2*cfg.LockTTL+time.Duration(cfg.UnknownOutcomeRetries+1)*cfg.CallTimeout)
	cfg.CacheMaxAge = cmpOr(cfg.CacheMaxAge, 30*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	s := &Source{
		cfg:   cfg,
		store: cfg.Store,
		log:   cfg.Logger,
		rs:    redsync.New(goredis.NewPool(cfg.Store.rdb)),
		cache: &tokenCache{maxAge: cfg.CacheMaxAge, now: cfg.Store.now, m: map[string]cacheEntry{}},
	}
	h, err := newHub(ctx, cfg.Store.rdb, cfg.Store.channel, s.cache, s.log, cfg.Store.now)
	if err != nil {
		return nil, fmt.Errorf("tokens: subscribe to notifications: %w", err)
	}
	s.hub = h
	return s, nil
}

// Close stops the notification subscription. Refreshes in flight finish.
func (s *Source) Close() error { return s.hub.close() }

// Store returns the Store the Source reads and writes.
func (s *Source) Store() *Store { return s.store }

// Token returns a valid access token for the connection.
//
// Fast path: a cached token, or one Redis round trip, while the token's
// refresh is not due. Slow path: the refresh protocol described in doc.go;
// the caller waits for it at most until ctx is done.
//
// Errors: *ReauthError (ErrReauthRequired) when the grant is dead, returned
// without any network call once the connection is marked; ErrPaused;
// ErrDisconnected; ErrNotFound; *TransientError (ErrTransient) with a
// suggested delay when no valid token can be had now.
func (s *Source) Token(ctx context.Context, connID string) (Token, error) {
	if tok, ok := s.cache.get(connID); ok {
		return tok, nil
	}
	epoch := s.cache.mark()
	rec, err := s.store.load(ctx, connID)
	if err != nil {
		return Token{}, s.readErr(connID, err)
	}
	if err := statusErr(rec, false); err != nil {
		return Token{}, err
	}
	if rec.access != "" && s.store.now().Before(rec.RefreshDue) {
		tok := rec.token()
		s.cache.put(tok, rec.RefreshDue, epoch)
		return tok, nil
	}
	return s.do(ctx, connID, cond{kind: condDue})
}

// Warm reads the connections' records in one Redis round trip and keeps
// the access tokens that Token would hand out from its fast path (active
// connection, refresh not due) in the process's cache, so that Token then
// answers them without Redis. It writes nothing, refreshes nothing, and
// leaves every other connection to Token. Connections already cached are
// not read. A no-op when the cache is off. For callers about to use many
// connections at once (a batch of sweeps).
func (s *Source) Warm(ctx context.Context, connIDs []string) error {
	if s.cache.maxAge <= 0 {
		return nil
	}
	ids := make([]string, 0, len(connIDs))
	for _, id := range connIDs {
		if _, ok := s.cache.get(id); !ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	epoch := s.cache.mark()
	recs, err := s.store.loadMany(ctx, ids)
	if err != nil {
		return err
	}
	now := s.store.now()
	for _, rec := range recs {
		if rec == nil || statusErr(rec, false) != nil {
			continue
		}
		if rec.access != "" && now.Before(rec.RefreshDue) {
			s.cache.put(rec.token(), rec.RefreshDue, epoch)
		}
	}
	return nil
}

// Invalidate is for a data call that got 401 with failedAccessToken. If the
// stored access token is still that one, the connection is refreshed (once,
// however many callers report the same failure); otherwise the newer stored
// token is returned without any refresh.
func (s *Source) Invalidate(ctx context.Context, connID, failedAccessToken string) (Token, error) {
	s.cache.drop(connID)
	rec, err := s.store.load(ctx, connID)
	if err != nil {
		return Token{}, s.readErr(connID, err)
	}
	if err := statusErr(rec, false); err != nil {
		return Token{}, err
	}
	if rec.access != "" && rec.access != failedAccessToken && s.store.now().Before(rec.RefreshDue) {
		return rec.token(), nil
	}
	return s.do(ctx, connID, cond{kind: condInvalidate, failed: failedAccessToken})
}

// Refresh refreshes the connection's token if its refresh is due (the
// scheduler's proactive refresh). Paused connections are refreshed too, so
// their grant stays alive; a connection that needs re-authorization is not
// touched and its *ReauthError is returned.
func (s *Source) Refresh(ctx context.Context, connID string) error {
	rec, err := s.store.load(ctx, connID)
	if err != nil {
		return s.readErr(connID, err)
	}
	if err := statusErr(rec, true); err != nil {
		return err
	}
	if rec.access != "" && s.store.now().Before(rec.RefreshDue) {
		return nil
	}
	_, err = s.do(ctx, connID, cond{kind: condDue})
	return err
}

// ForceRefresh refreshes the connection now, unless another refresh lands
// first (then that one's token is returned). It ignores any failure backoff;
// it is meant for an operator's "refresh now".
func (s *Source) ForceRefresh(ctx context.Context, connID string) (Token, error) {
	rec, err := s.store.load(ctx, connID)
	if err != nil {
		return Token{}, s.readErr(connID, err)
	}
	if err := statusErr(rec, true); err != nil {
		return Token{}, err
	}
	return s.do(ctx, connID, cond{kind: condForce, from: rec.Version})
}

// ForceRefreshFrom is ForceRefresh for an operator's request that was
// queued: from is the token version the operator saw when asking. The
// connection is refreshed now, whether or not it is due, unless its version
// already moved past from (then the stored token is returned and nothing is
// called). Fencing on the version the request was made against, not the one
// read when the task runs, is what keeps a redelivered task (a worker that
// died after the refresh and before the ack) from rotating a second time.
// It takes the same single-flight, lock and versioned write as every other
// refresh.
func (s *Source) ForceRefreshFrom(ctx context.Context, connID string, from int64) (Token, error) {
	rec, err := s.store.load(ctx, connID)
	if err != nil {
		return Token{}, s.readErr(connID, err)
	}
	if err := statusErr(rec, true); err != nil {
		return Token{}, err
	}
	return s.do(ctx, connID, cond{kind: condForce, from: from})
}

func (s *Source) readErr(connID string, err error) error {
	if errors.Is(err, ErrNotFound) {
		return err
	}
	if isRedisOutage(err) {
		return &TransientError{ConnID: connID, RetryAfter: time.Second, Err: err}
	}
	return err
}

// isRedisOutage reports whether err is a failure to talk to Redis (rather
// than, say, a record that cannot be decrypted).
func isRedisOutage(err error) bool {
	var de *decryptError
	return !errors.As(err, &de)
}

// statusErr turns a connection's status into the error callers branch on.
func statusErr(rec *record, allowPaused bool) error {
	switch rec.Status {
	case StatusNeedsReauth:
		return &ReauthError{ConnID: rec.ID, Reason: rec.Reason, Detail: rec.Detail}
	case StatusDisconnected:
		return fmt.Errorf("%w: %s", ErrDisconnected, rec.ID)
	case StatusPaused:
		if !allowPaused {
			return fmt.Errorf("%w: %s", ErrPaused, rec.ID)
		}
	}
	return nil
}

type condKind int

const (
	condDue        condKind = iota // refresh if the refresh is due
	condInvalidate                 // refresh if the stored access token is the failed one
	condForce                      // refresh unless the version moved
)

// cond is what a refresh flight is asked to achieve. Flights with equal
// conditions for one connection are merged (single-flight).
type cond struct {
	kind   condKind
	failed string
	from   int64
}

func (c cond) key(connID string) string {
	switch c.kind {
	case condInvalidate:
		sum := sha256.Sum256([]byte(c.failed))
		return connID + "|401|" + hex.EncodeToString(sum[:8])
	case condForce:
		return fmt.Sprintf("%s|force|%d", connID, c.from)
	}
	return connID + "|due"
}

// do runs (or joins) the refresh flight for connID and waits for it while
// ctx allows. The flight itself is detached from ctx (invariant 5).
func (s *Source) do(ctx context.Context, connID string, c cond) (Token, error) {
	ch := s.group.DoChan(c.key(connID), func() (any, error) {
		return s.flight(context.WithoutCancel(ctx), connID, c)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return Token{}, r.Err
		}
		return r.Val.(Token), nil
	case <-ctx.Done():
		return Token{}, fmt.Errorf("tokens: waiting for connection %s: %w", connID, context.Cause(ctx))
	}
}

// judge decides, from a freshly read record, whether the flight is already
// answered without a refresh.
func (s *Source) judge(rec *record, c cond) (Token, error, bool) {
	if err := statusErr(rec, true); err != nil {
		return Token{}, err, true
	}
	now := s.store.now()
	fresh := rec.access != "" && now.Before(rec.RefreshDue)
	switch c.kind {
	case condDue:
		if fresh {
			return rec.token(), nil, true
		}
	case condInvalidate:
		if fresh && rec.access != c.failed {
			return rec.token(), nil, true
		}
	case condForce:
		if rec.Version != c.from && fresh {
			return rec.token(), nil, true
		}
	}
	if c.kind != condForce && now.Before(rec.RetryAt) {
		// A recent refresh failed for now: no new attempt before RetryAt
		// (no refresh storms). A still-valid token is better than an error.
		if c.kind == condDue && rec.access != "" && now.Before(rec.AccessExpiry) {
			return rec.token(), nil, true
		}
		return Token{}, &TransientError{ConnID: rec.ID, RetryAfter: rec.RetryAt.Sub(now),
			Err: errors.New("a recent refresh failed; backing off")}, true
	}
	return Token{}, nil, false
}

// flight is the cross-process part of the protocol: read, try the lock,
// refresh while holding it, or wait to be woken and read again.
func (s *Source) flight(ctx context.Context, connID string, c cond) (Token, error) {
	start := time.Now()
	deadline := start.Add(s.cfg.MaxWait)
	for {
		woken, stopWaiting := s.hub.subscribe(connID)
		rec, err := s.store.load(ctx, connID)
		if err != nil {
			stopWaiting()
			return Token{}, s.readErr(connID, err)
		}
		if tok, err, done := s.judge(rec, c); done {
			stopWaiting()
			return tok, err
		}
		mu := s.rs.NewMutex(s.store.lockKey(connID),
			redsync.WithExpiry(s.cfg.LockTTL), redsync.WithTries(1))
		lockErr := mu.TryLockContext(ctx)
		if lockErr == nil {
			stopWaiting()
			if h := s.cfg.Hooks.OnLockAcquired; h != nil {
				h(connID, time.Since(start))
			}
			tok, err, again := s.refreshLocked(ctx, connID, c, mu)
			s.unlock(connID, mu)
			if !again {
				return tok, err
			}
			continue
		}
		if !lockTaken(lockErr) {
			stopWaiting()
			return Token{}, &TransientError{ConnID: connID, RetryAfter: time.Second,
				Err: fmt.Errorf("refresh lock: %w", lockErr)}
		}
		// Another process is refreshing. Wait until it publishes (or, as a
		// safety net if the notification is lost, until its lock would have
		// expired), then read again.
		remaining := time.Until(deadline)
		if remaining <= 0 {
			stopWaiting()
			return Token{}, &TransientError{ConnID: connID, RetryAfter: time.Second,
				Err: errors.New("timed out waiting for another process's refresh")}
		}
		if h := s.cfg.Hooks.OnLockBusy; h != nil {
			h(connID)
		}
		timer := time.NewTimer(min(remaining, s.cfg.LockTTL))
		select {
		case <-woken:
		case <-timer.C:
		}
		timer.Stop()
		stopWaiting()
	}
}

func lockTaken(err error) bool {
	var taken *redsync.ErrTaken
	var takenV redsync.ErrTaken
	return errors.As(err, &taken) || errors.As(err, &takenV) || errors.Is(err, redsync.ErrFailed)
}

func (s *Source) unlock(connID string, mu *redsync.Mutex) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := mu.UnlockContext(ctx); err != nil {
		// The lock expires on its own; the fence keeps writes safe meanwhile.
		s.log.Warn("refresh lock release failed", zap.String("conn_id", connID), zap.Error(err))
	}
	// Wake waiters even when nothing was written (they re-read and decide).
	if err := s.store.notify(ctx, connID, "unlocked"); err != nil {
		s.log.Warn("refresh notification failed", zap.String("conn_id", connID), zap.Error(err))
	}
}

// keepLocked extends the lock every LockTTL/3 until the returned func is
// called (redsync has no watchdog; invariant 5).
func (s *Source) keepLocked(connID string, mu *redsync.Mutex) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.LockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if ok, err := mu.ExtendContext(ctx); !ok && ctx.Err() == nil {
					s.log.Warn("refresh lock could not be extended; the version fence still protects the write",
						zap.String("conn_id", connID), zap.Error(err))
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// refreshLocked runs with the connection's lock held. again=true asks the
// flight to start over (the version moved under us).
func (s *Source) refreshLocked(ctx context.Context, connID string, c cond, mu *redsync.Mutex) (tok Token, err error, again bool) {
	// Invariant 2: re-read after the lock; someone may have refreshed.
	rec, err := s.store.load(ctx, connID)
	if err != nil {
		return Token{}, s.readErr(connID, err), false
	}
	if tok, err, done := s.judge(rec, c); done {
		return tok, err, false
	}
	refreshToken, err := s.store.refreshToken(rec)
	if err != nil {
		return Token{}, err, false
	}
	if refreshToken == "" {
		if c.kind == condDue && rec.access != "" && s.store.now().Before(rec.AccessExpiry) {
			return rec.token(), nil, false
		}
		return s.needsReauth(ctx, rec, ReasonNoRefreshToken, "no refresh token is stored and the access token is no longer usable")
	}

	prev, err := s.store.beginRefresh(ctx, connID, rec.Version)
	if errors.Is(err, ErrVersionConflict) {
		return Token{}, nil, true
	}
	if err != nil {
		return Token{}, &TransientError{ConnID: connID, RetryAfter: time.Second, Err: err}, false
	}
	pv, ok := markerVersion(prev)
	inDoubt := ok && pv == rec.Version // an earlier attempt from this version never finished

	stop := s.keepLocked(connID, mu)
	defer stop()
	began := time.Now()
	grant, unknownSeen, callErr := s.callProvider(ctx, connID, refreshToken)
	if callErr != nil {
		return s.refreshFailed(ctx, rec, c, callErr, inDoubt, unknownSeen, time.Since(began))
	}
	if h := s.cfg.Hooks.AfterTokenResponse; h != nil {
		h(connID)
	}
	return s.commit(ctx, rec, grant, began)
}

// callProvider calls the token endpoint, retrying an unknown outcome with the
// same refresh token (invariant 7). Each call gets its own deadline,
// independent of any caller (invariant 5).
func (s *Source) callProvider(ctx context.Context, connID, refreshToken string) (*Grant, bool, error) {
	unknownSeen := false
	delay := s.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		if h := s.cfg.Hooks.BeforeTokenCall; h != nil {
			h(connID)
		}
		callCtx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
		t0 := time.Now()
		grant, err := s.cfg.Provider.Refresh(callCtx, refreshToken)
		cancel()
		if err == nil && (grant == nil || grant.AccessToken == "") {
			err = &ProviderError{Kind: KindOutcomeUnknown, Description: "provider returned no access token"}
		}
		if h := s.cfg.Hooks.OnTokenCall; h != nil {
			h(connID, err, time.Since(t0))
		}
		if err == nil {
			return grant, unknownSeen, nil
		}
		kind, _ := classify(err)
		if kind != KindOutcomeUnknown {
			return nil, unknownSeen, err
		}
		unknownSeen = true
		if attempt >= s.cfg.UnknownOutcomeRetries {
			return nil, unknownSeen, err
		}
		s.log.Info("token call outcome unknown; retrying with the same refresh token",
			zap.String("conn_id", connID), zap.Int("attempt", attempt+1), zap.Error(err))
		t := time.NewTimer(delay)
		<-t.C
		delay *= 2
	}
}

// refreshFailed decides what a failed token call means.
func (s *Source) refreshFailed(ctx context.Context, rec *record, c cond, callErr error, inDoubt, unknownSeen bool, took time.Duration) (Token, error, bool) {
	connID := rec.ID
	kind, pe := classify(callErr)
	if kind == KindInvalidGrant {
		// Invariant 6: judged after a re-read.
		cur, err := s.store.load(ctx, connID)
		if err != nil {
			return Token{}, s.readErr(connID, err), false
		}
		if cur.Version != rec.Version {
			return Token{}, nil, true // someone else rotated: adopt their pair
		}
		reason, detail := ReasonRevoked, "the provider rejected the refresh token (invalid_grant): access was revoked, or something outside notionsync spent this refresh token"
		if pe != nil && pe.Description != "" {
			detail += ": " + pe.Description
		}
		if inDoubt || unknownSeen {
			reason = ReasonLostRotation
			detail = fmt.Sprintf("an earlier refresh from version %d had an unknown outcome (timeout, 5xx, dropped connection or a killed process) and the provider then rejected the refresh token as used: the rotated pair was lost", rec.Version)
		}
		s.report(connID, OutcomeNeedsReauth, took)
		return s.needsReauth(ctx, rec, reason, detail)
	}

	b := backoff{base: s.cfg.FailureBackoff, max: s.cfg.MaxFailureBackoff}
	if pe != nil {
		b.min = pe.RetryAfter
	}
	event, outcome := EventRefreshFailed, OutcomeTransient
	var cause error = callErr
	if kind == KindInvalidClient || kind == KindPermanent {
		// An operator problem: the connection's grant is not judged dead.
		b.base = max(b.base, time.Minute)
		event, outcome = EventClientRejected, OutcomeClientRejected
		cause = fmt.Errorf("%w: %w", ErrClientRejected, callErr)
	}
	// Keep the in-flight marker when a rotation may have happened.
	clearMarker := kind != KindOutcomeUnknown && !unknownSeen && !inDoubt
	retryAt, err := s.store.recordFailure(ctx, connID, rec.Version, b, clearMarker, event, callErr.Error())
	if errors.Is(err, ErrVersionConflict) {
		return Token{}, nil, true
	}
	s.report(connID, outcome, took)
	s.log.Warn("token refresh failed; will retry",
		zap.String("conn_id", connID), zap.Int64("version", rec.Version),
		zap.Stringer("kind", kind), zap.Time("retry_at", retryAt), zap.Error(callErr))
	now := s.store.now()
	if c.kind == condDue && rec.access != "" && now.Before(rec.AccessExpiry) {
		return rec.token(), nil, false // still valid: serve it
	}
	return Token{}, &TransientError{ConnID: connID, RetryAfter: max(retryAt.Sub(now), 0), Err: cause}, false
}

// needsReauth marks the connection, fenced on the version it was judged at.
func (s *Source) needsReauth(ctx context.Context, rec *record, reason Reason, detail string) (Token, error, bool) {
	err := s.store.markReauth(ctx, rec.ID, rec.Version, reason, detail)
	if errors.Is(err, ErrVersionConflict) {
		return Token{}, nil, true
	}
	if err != nil && !errors.Is(err, errWrongStatus) {
		return Token{}, &TransientError{ConnID: rec.ID, RetryAfter: time.Second, Err: err}, false
	}
	if err == nil {
		s.log.Warn("connection needs re-authorization",
			zap.String("conn_id", rec.ID), zap.String("reason", string(reason)), zap.String("detail", detail))
		if h := s.cfg.Hooks.OnNeedsReauth; h != nil {
			h(rec.ID, reason, detail)
		}
	}
	return Token{}, &ReauthError{ConnID: rec.ID, Reason: reason, Detail: detail}, false
}

// commit stores a rotated pair with the fenced write (invariants 3 and 4)
// before anyone sees the new access token.
func (s *Source) commit(ctx context.Context, rec *record, grant *Grant, began time.Time) (Token, error, bool) {
	connID := rec.ID
	delay := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		tok, err := s.store.writePair(ctx, connID, rec.Version, "refresh", grant, s.cfg.Timing,
			EventRefreshed, "", "", "")
		switch {
		case err == nil:
			s.report(connID, OutcomeRefreshed, time.Since(began))
			s.log.Info("token refreshed", zap.String("conn_id", connID), zap.Int64("version", tok.Version))
			return tok, nil, false
		case errors.Is(err, ErrVersionConflict):
			// Our lock expired and another holder wrote a newer pair: the
			// fence refused our stale write. Adopt the stored pair.
			s.report(connID, OutcomeStaleWrite, time.Since(began))
			s.log.Error("stale token write rejected by the version fence",
				zap.String("conn_id", connID), zap.Int64("from_version", rec.Version), zap.Error(err))
			_ = s.store.appendEvent(ctx, connID, rec.Version, EventStaleWrite,
				fmt.Sprintf("a refresh from version %d finished after its lock expired; its write was refused", rec.Version))
			return Token{}, nil, true
		case errors.Is(err, ErrNotFound):
			return Token{}, fmt.Errorf("%w: %s", ErrDisconnected, connID), false
		}
		// Redis failed: the rotated pair exists only in this process. Keep
		// trying (the lock is still being extended); giving up loses it.
		if attempt >= 6 {
			s.log.Error("rotated token pair could not be stored", zap.String("conn_id", connID), zap.Error(err))
			return Token{}, &TransientError{ConnID: connID, RetryAfter: time.Second, Err: err}, false
		}
		s.log.Warn("storing rotated token pair failed; retrying", zap.String("conn_id", connID), zap.Error(err))
		t := time.NewTimer(delay)
		<-t.C
		delay *= 2
	}
}

func (s *Source) report(connID string, o Outcome, took time.Duration) {
	if h := s.cfg.Hooks.OnRefresh; h != nil {
		h(connID, o, took)
	}
}

// Revoker revokes a grant at the provider; tokens/notionauth.Client is one.
type Revoker interface {
	Revoke(ctx context.Context, token string) error
}

// DisconnectAndRevoke revokes the connection's grant at the provider, with
// whatever token is stored and in any status (best effort: the access
// token, then the refresh token), and then deletes the stored pair and
// marks the connection disconnected (Store.Disconnect). revoked reports
// whether the provider accepted a revocation. The secrets never leave this
// package except to r.
func (s *Source) DisconnectAndRevoke(ctx context.Context, connID string, r Revoker) (revoked bool, err error) {
	rec, err := s.store.load(ctx, connID)
	if err != nil {
		return false, s.readErr(connID, err)
	}
	if rec.Status != StatusDisconnected && r != nil {
		candidates := []string{rec.access}
		if rt, err := s.store.refreshToken(rec); err == nil {
			candidates = append(candidates, rt)
		}
		for _, tok := range candidates {
			if tok == "" {
				continue
			}
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.CallTimeout)
			rerr := r.Revoke(rctx, tok)
			cancel()
			if rerr == nil {
				revoked = true
				break
			}
			s.log.Info("revocation at the provider failed", zap.String("conn_id", connID), zap.Error(rerr))
		}
	}
	if err := s.store.Disconnect(ctx, connID); err != nil {
		return revoked, err
	}
	s.cache.drop(connID)
	return revoked, nil
}
