package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/sync/files"
	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/tokens"
)

// Hooks observe the handlers (metrics, tests). All optional; called
// synchronously.
type Hooks struct {
	// OnPageSynced is called after a page was written to the sink.
	OnPageSynced func(connID string)
	// OnSweep reports a finished sweep: objects discovered since the cursor
	// and tasks newly enqueued for them.
	OnSweep func(connID string, discovered, enqueued int)
	// OnCursorAdvanced is called when a connection's cursor moved: every
	// object discovered up to it is in the sink.
	OnCursorAdvanced func(connID string, cursor time.Time)
	// OnObjectError reports a per-object problem that did not stop the
	// connection's sync (a database the API version cannot query, ...).
	OnObjectError func(connID, objectID string, err error)
	// OnReconcileStarted is called when a reconciliation pass starts (not
	// when it resumes).
	OnReconcileStarted func(connID string)
	// OnReconcile reports a finished reconciliation pass and its counts.
	OnReconcile func(connID string, counts ReconcileCounts)
}

// Config configures the handlers.
type Config struct {
	// Tokens refreshes tokens (TypeRefresh). Required.
	Tokens *tokens.Source
	// Notion is the client stack every Notion call goes through. Required.
	Notion *notionclient.Client
	// Sink stores what is synced. Required.
	Sink sink.Sink
	// Redis holds sync state (cursors, pending sets, checkpoints). Required.
	Redis redis.UniversalClient
	// Enqueuer enqueues the tasks a task fans out (normally an
	// *asynq.Client on the same Redis). Required.
	Enqueuer Enqueuer
	// KeyPrefix prefixes every Redis key. Default "notionsync:".
	KeyPrefix string
	// Overlap is how far before the cursor each sweep looks again, because
	// Notion rounds last_edited_time down to the minute and its search
	// index lags. Default 2m; at least 1m.
	Overlap time.Duration
	// MaxBlockDepth is the deepest level of nested blocks fetched below a
	// page; children below it are not fetched and the page is stored with
	// a note in its per-object errors. Default 20; at most
	// MaxBlockDepthLimit.
	MaxBlockDepth int
	// MaxObjectBlocks, MaxObjectRequests and MaxObjectBytes cap one page's
	// block walk: blocks listed, listing requests sent, bytes of blocks
	// received. MaxObjectRequests also caps the requests of one search or
	// database query listing, and (counted apart from the walk) the
	// property item listings of one page. An object that reaches a cap is recorded as
	// a per-object error naming it (see CapError) and, for a page, is not
	// walked again until it is edited. They bound what one hostile or
	// runaway object costs in requests, memory and checkpoint size.
	// Defaults 50,000 blocks, 5,000 requests, 64 MiB.
	MaxObjectBlocks   int
	MaxObjectRequests int
	MaxObjectBytes    int64
	// CheckpointEvery saves a large page's or query's pagination progress
	// every this many requests (and always when a task stops early), so a
	// retry resumes instead of restarting. Default 10.
	CheckpointEvery int
	// DrainSlice is how long one drain task syncs a connection's pages
	// before it hands its worker slot on and queues its continuation.
	// Default 30s.
	DrainSlice time.Duration
	// PagesInFlight is how many of one connection's pages its drain syncs
	// at once. The rate limiter paces them; more than one keeps the
	// connection's budget busy when Notion answers slower than the
	// budget's interval. Keep PagesInFlight / rate well under the
	// client's MaxWait. Default 3.
	PagesInFlight int
	// ClaimTTL is how long what a running task holds in Redis (its page
	// claims, a running drain's flag, a running sweep's or database task's
	// lease) outlives the last renewal by its worker, which renews all of
	// them every ClaimTTL/3 in one round trip. A SIGKILLed worker's
	// connections are taken over within about ClaimTTL plus the
	// scheduler's tick (see lease.go). At least 1s; default 8s.
	ClaimTTL time.Duration
	// UsersInterval is how often a connection's users (GET /v1/users) are
	// listed into the sink, which then names people and mentions; the
	// sweep lists them when this much time passed since the last listing
	// (see syncUsersClaimed). Default 1h; negative: never. Sinks without
	// sink.UserStore are skipped.
	UsersInterval time.Duration
	// Files downloads the Notion-hosted files pages reference into the
	// sink, when the sink is a record.FileStore (both backends are).
	// Default nil: files are not downloaded (the stored objects keep
	// Notion's expiring URLs).
	Files *files.Downloader
	// FileGCGrace is how long a stored file no live object references
	// (its block removed, its page deleted, a files value changed) is
	// kept before the reconciliation pass that ends after it deletes it
	// (record.FileCollector), measured from the first pass that found it
	// orphaned. Default DefaultFileGCGrace; negative: files are never
	// deleted.
	FileGCGrace time.Duration
	// Logger; default none.
	Logger *zap.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Hooks observe the handlers.
	Hooks Hooks
}

// Defaults and limits of the walk caps (see Config).
const (
	DefaultMaxObjectBlocks   = 50_000
	DefaultMaxObjectRequests = 5_000
	DefaultMaxObjectBytes    = 64 << 20
	// MaxBlockDepthLimit is the largest MaxBlockDepth accepted. Notion's
	// own editor nests far less; a deeper tree is a runaway (or hostile)
	// one, and the block caps bound it anyway.
	MaxBlockDepthLimit = 100
)

// Handlers run notionsync's tasks. Safe for concurrent use by asynq's
// worker goroutines (and by several worker processes on one Redis).
type Handlers struct {
	cfg    Config
	log    *zap.Logger
	state  *state
	keeper *keeper

	stopOnce sync.Once
	stopping chan struct{} // closed by Stop
}

// New validates cfg.
func New(cfg Config) (*Handlers, error) {
	switch {
	case cfg.Tokens == nil:
		return nil, errors.New("jobs: Config.Tokens is required")
	case cfg.Notion == nil:
		return nil, errors.New("jobs: Config.Notion is required")
	case cfg.Sink == nil:
		return nil, errors.New("jobs: Config.Sink is required")
	case cfg.Redis == nil:
		return nil, errors.New("jobs: Config.Redis is required")
	case cfg.Enqueuer == nil:
		return nil, errors.New("jobs: Config.Enqueuer is required")
	}
	if cfg.Overlap == 0 {
		cfg.Overlap = 2 * time.Minute
	}
	if cfg.Overlap < time.Minute {
		return nil, fmt.Errorf("jobs: Overlap %s is below one minute (last_edited_time is rounded to the minute)", cfg.Overlap)
	}
	if cfg.MaxBlockDepth <= 0 {
		cfg.MaxBlockDepth = 20
	}
	if cfg.MaxBlockDepth > MaxBlockDepthLimit {
		return nil, fmt.Errorf("jobs: MaxBlockDepth %d is above %d", cfg.MaxBlockDepth, MaxBlockDepthLimit)
	}
	cfg.MaxObjectBlocks = cmp.Or(max(cfg.MaxObjectBlocks, 0), DefaultMaxObjectBlocks)
	cfg.MaxObjectRequests = cmp.Or(max(cfg.MaxObjectRequests, 0), DefaultMaxObjectRequests)
	cfg.MaxObjectBytes = cmp.Or(max(cfg.MaxObjectBytes, 0), DefaultMaxObjectBytes)
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 10
	}
	if cfg.PagesInFlight <= 0 {
		cfg.PagesInFlight = 3
	}
	if cfg.DrainSlice <= 0 {
		cfg.DrainSlice = 30 * time.Second
	}
	if cfg.ClaimTTL == 0 {
		cfg.ClaimTTL = DefaultClaimTTL
	}
	if cfg.ClaimTTL < time.Second {
		return nil, fmt.Errorf("jobs: ClaimTTL %s is below one second", cfg.ClaimTTL)
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "notionsync:"
	}
	if cfg.UsersInterval == 0 {
		cfg.UsersInterval = DefaultUsersInterval
	}
	if cfg.FileGCGrace == 0 {
		cfg.FileGCGrace = DefaultFileGCGrace
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	st := &state{rdb: cfg.Redis, prefix: cfg.KeyPrefix, claimTTL: cfg.ClaimTTL}
	return &Handlers{cfg: cfg, log: cfg.Logger, state: st, keeper: newKeeper(st, cfg.ClaimTTL, cfg.Logger),
		stopping: make(chan struct{})}, nil
}

// Stop makes running drain tasks end at once: the pages in flight stop
// (their claims and checkpoints given back), each drain queues its
// continuation and returns, so a worker that is shutting down hands its
// connections on well inside the shutdown timeout instead of being
// abandoned mid-page. Call it before the asynq server's Shutdown. Other
// tasks are not affected; Stop is idempotent.
func (h *Handlers) Stop() { h.stopOnce.Do(func() { close(h.stopping) }) }

func (h *Handlers) isStopping() bool {
	select {
	case <-h.stopping:
		return true
	default:
		return false
	}
}

// Register installs the handlers on mux.
func (h *Handlers) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TypeRefresh, h.handleRefresh)
	mux.HandleFunc(TypeSweep, h.handleSweep)
	mux.HandleFunc(TypeSweeps, h.handleSweeps)
	mux.HandleFunc(TypePage, h.handlePage)
	mux.HandleFunc(TypeDrain, h.handleDrain)
	mux.HandleFunc(TypeDatabase, h.handleDatabase)
	mux.HandleFunc(TypeDataSource, h.handleDataSource)
	mux.HandleFunc(TypeReconcile, h.handleReconcile)
}

// State returns a connection's sync progress.
func (h *Handlers) State(ctx context.Context, connID string) (SyncState, error) {
	return h.state.get(ctx, connID)
}

// ServerConfig fills in the parts of an asynq server configuration that
// these handlers depend on: queue weights (if unset), retry delays that
// honour Notion's Retry-After and tokens' backoff, and IsFailure, so that
// waiting for rate budget or for a token never uses up a task's retries.
func (h *Handlers) ServerConfig(c asynq.Config) asynq.Config {
	if len(c.Queues) == 0 {
		c.Queues = DefaultQueues
	}
	c.RetryDelayFunc = RetryDelay
	c.IsFailure = IsFailure
	if c.ErrorHandler == nil {
		c.ErrorHandler = asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			id, _ := asynq.GetTaskID(ctx)
			lvl := h.log.Warn
			if !IsFailure(err) {
				lvl = h.log.Debug
			}
			lvl("task did not complete", zap.String("task_type", t.Type()), zap.String("task_id", id), zap.Error(err))
		})
	}
	return c
}

// RetryDelay is the asynq RetryDelayFunc for notionsync's tasks: the delay
// Notion (Retry-After) or tokens (backoff) asked for, with a little jitter so
// a connection's tasks do not return all at once; otherwise exponential
// backoff from 2 s up to 10 minutes.
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if errors.Is(err, ErrBusy) {
		return time.Second + time.Duration(rand.Int64N(int64(time.Second)))
	}
	if d, ok := notionclient.RetryAfter(err); ok && d > 0 {
		return d + time.Duration(rand.Int64N(int64(d/4)+int64(time.Second)))
	}
	d := min(time.Duration(1<<min(n, 10))*2*time.Second, 10*time.Minute)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// IsFailure reports whether err counts against a task's retries. Rate
// limiting and transient token trouble do not: the task is simply run later.
func IsFailure(err error) bool {
	return !errors.Is(err, notionclient.ErrRateLimited) && !errors.Is(err, tokens.ErrTransient) && !errors.Is(err, ErrBusy) &&
		!errors.Is(err, errStopping) // the worker shut down: not the task's fault
}

// stopped reports whether err means the connection cannot be synced now
// (needs re-authorization, paused, disconnected, unknown): its tasks stop
// without any further Notion call and are not retried.
func stopped(err error) bool {
	return errors.Is(err, tokens.ErrReauthRequired) || errors.Is(err, tokens.ErrPaused) ||
		errors.Is(err, tokens.ErrDisconnected) || errors.Is(err, tokens.ErrNotFound)
}

// finish turns a sync, page, database, sweep or drain task's error into
// what asynq should do with it. A connection that is paused, needs
// re-authorization, was disconnected or is gone ends the task as a success
// whose result (asynq's ResultWriter) names the verdict: the task did what
// it should, which is nothing. Archiving these (SkipRetry) made asynqmon
// count every task of a paused or needs_reauth connection as a failure, so
// the sync queues' error rates no longer meant errors. Either way the task
// is not retried and makes no further call: terminal means quiet. The
// caller has already given back what the task held (a drain's flag, a
// sweep's pending-set entry).
func (h *Handlers) finish(ctx context.Context, t *asynq.Task, connID string, err error) error {
	if err == nil {
		return nil
	}
	v, ok := verdictOf(connID, err)
	if !ok {
		return err
	}
	// A completed task keeps its id for its retention (an archived one did
	// too): later sweeps must not collide with the ids of the tasks ended
	// now, so move the connection to a new task-id generation.
	if gerr := h.state.bumpGen(context.WithoutCancel(ctx), connID); gerr != nil {
		h.log.Warn("could not bump task generation", zap.String("conn_id", connID), zap.Error(gerr))
	}
	h.writeVerdict(t, v)
	h.log.Debug("task ended on a stopped connection", zap.String("task_type", t.Type()), zap.String("conn_id", connID), zap.String("verdict", v.Verdict))
	return nil
}

// Verdict is the result (asynq's ResultWriter; asynqmon shows it on the
// completed task) of a task that found its connection stopped: paused,
// beyond refreshing, or gone. It is small JSON and never holds a token.
type Verdict struct {
	ConnID string `json:"conn_id"`
	// Verdict is the connection's state: "paused", "needs_reauth",
	// "disconnected" or "not_found". A refresh task never reports "paused":
	// a paused connection's tokens are still refreshed.
	Verdict string `json:"verdict"`
	// Reason and Detail are the needs_reauth verdict's (never a token).
	Reason tokens.Reason `json:"reason,omitempty"`
	Detail string        `json:"detail,omitempty"`
}

// RefreshVerdict is a refresh task's Verdict (the name it had first).
type RefreshVerdict = Verdict

// verdictOf returns the verdict err names, if the connection is stopped
// (see stopped).
func verdictOf(connID string, err error) (Verdict, bool) {
	v := Verdict{ConnID: connID}
	var re *tokens.ReauthError
	switch {
	case errors.As(err, &re):
		v.Verdict, v.Reason, v.Detail = string(tokens.StatusNeedsReauth), re.Reason, re.Detail
	case errors.Is(err, tokens.ErrReauthRequired):
		v.Verdict = string(tokens.StatusNeedsReauth)
	case errors.Is(err, tokens.ErrPaused):
		v.Verdict = string(tokens.StatusPaused)
	case errors.Is(err, tokens.ErrDisconnected):
		v.Verdict = string(tokens.StatusDisconnected)
	case errors.Is(err, tokens.ErrNotFound):
		v.Verdict = "not_found"
	default:
		return Verdict{}, false
	}
	return v, true
}

// writeVerdict stores v as t's result. A task built outside an asynq server
// (ServeMux.ProcessTask) has no result writer; a task without retention (a
// drain) is deleted on success, so its result is not kept.
func (h *Handlers) writeVerdict(t *asynq.Task, v Verdict) {
	rw := t.ResultWriter()
	if rw == nil {
		return
	}
	b, err := json.Marshal(v)
	if err == nil {
		_, err = rw.Write(b)
	}
	if err != nil {
		// The verdict is stored on the connection; only the task's result
		// is missing.
		h.log.Warn("could not write a task's verdict", zap.String("task_type", t.Type()), zap.String("conn_id", v.ConnID), zap.Error(err))
	}
}

// handleRefresh refreshes a connection's tokens when due. A connection that
// needs re-authorization, was disconnected or is gone ends the task as a
// success with its verdict as the task's result: the verdict is the
// expected, final answer (tokens recorded and reported it), not an error.
// Archiving it (SkipRetry) made asynqmon count every such refresh as a
// failure, a third of the tokens queue in a first run, so its error rate
// no longer meant errors. Either way the task is not retried and makes no
// further call: terminal means quiet.
func (h *Handlers) handleRefresh(ctx context.Context, t *asynq.Task) error {
	p, err := decode[RefreshPayload](t)
	if err != nil {
		return err
	}
	if p.Force {
		_, err = h.cfg.Tokens.ForceRefreshFrom(ctx, p.ConnID, p.Version)
	} else {
		err = h.cfg.Tokens.Refresh(ctx, p.ConnID)
	}
	v, terminal := verdictOf(p.ConnID, err)
	if !terminal {
		return err
	}
	h.writeVerdict(t, v)
	h.log.Debug("refresh task ended on a terminal status", zap.String("conn_id", p.ConnID), zap.String("verdict", v.Verdict))
	return nil
}

// objectError records err as objectID's per-object error of kind.
func (h *Handlers) objectError(ctx context.Context, connID, objectID string, kind ErrorKind, err error) {
	h.log.Warn("object not synced", zap.String("conn_id", connID), zap.String("object_id", objectID), zap.String("kind", string(kind)), zap.Error(err))
	if serr := h.state.setError(ctx, connID, objectID, kind, err.Error(), h.cfg.Now()); serr != nil {
		h.log.Warn("could not record object error", zap.String("conn_id", connID), zap.Error(serr))
	}
	if f := h.cfg.Hooks.OnObjectError; f != nil {
		f(connID, objectID, err)
	}
}

// finishTimeout bounds recording a finished object once its task's context
// has ended (see finishObject): well inside a worker's shutdown timeout.
const finishTimeout = 5 * time.Second

// markDone records member as stored and reports a cursor move.
func (h *Handlers) markDone(ctx context.Context, connID, member string, pages int) error {
	return h.finishObject(ctx, connID, doneArgs{member: member, pages: pages})
}

// finishObject records an object as stored (see doneArgs) and reports it.
func (h *Handlers) finishObject(ctx context.Context, connID string, a doneArgs) error {
	// The object is in the sink (or its outcome is decided): recording it
	// must not be cut short by the task's context ending (a worker's
	// graceful shutdown cancels it), or the stored page would be fetched
	// again and found stored, and never counted nor released. Bounded, so
	// a Redis outage still ends the task.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	cursor, err := h.state.done(ctx, connID, a, h.cfg.Now())
	if err != nil {
		return err
	}
	if a.pages > 0 && h.cfg.Hooks.OnPageSynced != nil {
		h.cfg.Hooks.OnPageSynced(connID)
	}
	h.cursorMoved(connID, cursor)
	return nil
}

// cursorMoved reports a cursor move (a zero cursor: it did not move).
func (h *Handlers) cursorMoved(connID string, cursor time.Time) {
	if cursor.IsZero() {
		return
	}
	h.log.Debug("cursor advanced", zap.String("conn_id", connID), zap.Time("cursor", cursor))
	if f := h.cfg.Hooks.OnCursorAdvanced; f != nil {
		f(connID, cursor)
	}
}

func (h *Handlers) taskLogger(ctx context.Context, t *asynq.Task, connID string) *zap.Logger {
	id, _ := asynq.GetTaskID(ctx)
	return h.log.With(zap.String("task_type", t.Type()), zap.String("task_id", id), zap.String("conn_id", connID))
}
