package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/tokens"
)

// A connection's pages are synced by one drain task at a time, not by a
// task per page. Notion's limit is per connection (3 requests/s), so one
// walk with a few pages in flight, paced by the rate limiter, uses a
// connection's whole budget, while a task per page put dozens of a connection's tasks in the
// queue at once: they filled the worker slots, waited for the same budget
// and left other connections' budgets unused. The drain also spends one
// asynq task on many Notion requests instead of one or two.
//
// The mechanism: sweeps and database tasks put changed pages on the
// connection's to-do hash (and in the pending set, as before) and take the
// connection's drain flag if it is free; whoever takes it drains: a sweep
// inline, in the slot it holds, a database task by enqueueing a drain.
// The drain walks the hash, syncing each page; a stored page leaves the
// hash and the pending set in one script. After DrainSlice it enqueues its
// own continuation at the tail of the queue, so connections take turns
// when there are fewer worker slots than connections with work. When the
// hash is empty it drops the flag, in one script that checks the hash, so
// pages added meanwhile are never left without a drain.

// busyDelay is how long a page that another task is syncing waits before
// the drain looks at it again.
const busyDelay = 2 * time.Second

// handleDrain runs one slice of a connection's drain.
func (h *Handlers) handleDrain(ctx context.Context, t *asynq.Task) error {
	p, err := decode[DrainPayload](t)
	if err != nil {
		return err
	}
	log := h.taskLogger(ctx, t, p.ConnID)
	// The flag names this task (startDrain put its id there). Run again
	// after its worker died, the task finds another drain's name there (the
	// reaper's) or nothing to do, and ends. A drain run by hand, outside
	// asynq, has no id: it adopts the list.
	owner, _ := asynq.GetTaskID(ctx)
	err = h.drain(ctx, log, owner, p)
	if err != nil && stopped(err) {
		// The connection stopped: its pages stay pending and on the to-do
		// list; the first sweep after it resumes starts a new drain.
		if derr := h.state.dropDrain(context.WithoutCancel(ctx), p.ConnID, leaseMember(leaseDrain, p.ConnID, owner)); derr != nil {
			log.Warn("could not drop the drain flag of a stopped connection", zap.Error(derr))
		}
	}
	return h.finish(ctx, t, p.ConnID, err)
}

// drain syncs the connection's waiting pages for up to DrainSlice, up to
// PagesInFlight at a time: the rate limiter paces them, and a few in flight
// keep the connection's budget busy when Notion answers slower than the
// budget's interval (3 requests/s leave a third of a second per request).
//
// A page that fails on its own with a transient error (Notion answers
// garbage or a 5xx for that object, the sink refuses it) is recorded as a
// transient per-object error, waits with exponential backoff (busyDelay
// doubling, at most maxPageBackoff) and stays pending, and the drain goes
// on with the other pages. (A permanent error never gets here: syncPage
// records it and the page is done; see objerror.go.) What concerns the whole connection ends the drain with the error,
// for asynq to retry: rate limiting, transient token trouble, a stopped
// connection, Redis, shutdown.
//
// owner is the name on the drain flag (the drain task's id, or the sweep
// that drains inline); "" (a drain run by hand) adopts the flag. While it
// runs, the drain holds the flag for ClaimTTL, renewed by the worker's
// keeper; if it loses the flag (its renewals failed for ClaimTTL and the
// reaper started another drain) its pages in flight stop and it ends.
func (h *Handlers) drain(ctx context.Context, log *zap.Logger, owner string, p DrainPayload) error {
	conn, queue := p.ConnID, cmp.Or(p.Queue, QueueSync)
	adopt := owner == ""
	if adopt {
		owner = newDrainID(conn)
	}
	owned, err := h.state.ownDrain(ctx, conn, owner, adopt)
	if err != nil || !owned {
		if err == nil {
			log.Debug("drain ends: another drain holds the connection's flag, or nothing waits")
		}
		return err
	}
	member := leaseMember(leaseDrain, conn, owner)
	// Pages in flight stop when the worker stops (Stop): their claims and
	// checkpoints are given back and the continuation is queued at once,
	// well inside the shutdown timeout. A handler still running when that
	// runs out would be abandoned holding its pages' claims.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lost atomic.Bool
	defer h.keeper.hold(&lease{conn: conn, key: h.state.drainKey(conn), token: owner, member: member, onLost: func() {
		lost.Store(true)
		cancel()
	}})()
	go func() {
		select {
		case <-h.stopping:
			cancel()
		case <-pctx.Done():
		}
	}()
	err = h.drainLoop(pctx, log, conn, owner, queue)
	switch {
	case err != nil && lost.Load():
		// (A nil err with lost set: the flag was handed on or released
		// just before a renewal saw it gone.)
		log.Warn("drain lost the connection's flag (its lease was not renewed in time); another drain goes on", zap.NamedError("stopped_by", err))
		return nil
	case err != nil && ctx.Err() == nil && h.isStopping():
		// Stopped by Stop (not by the task's own context): hand the
		// connection on.
		return h.startDrain(ctx, conn, owner, queue, time.Time{})
	}
	return err
}

// errStopping ends a drain loop when the worker stops.
var errStopping = errors.New("jobs: worker stopping")

func (h *Handlers) drainLoop(ctx context.Context, log *zap.Logger, conn, owner, queue string) error {
	run := &drainRun{start: time.Now(), gen: h.lazyGen(ctx, conn)}
	var cursor uint64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if h.isStopping() {
			return errStopping
		}
		items, next, err := h.state.scanTodo(ctx, conn, cursor)
		if err != nil {
			return err
		}
		yield, err := h.drainItems(ctx, log, conn, items, run)
		if err != nil {
			return err
		}
		if yield {
			if h.isStopping() {
				return errStopping
			}
			// Take turns: the continuation joins the tail of the queue.
			return h.startDrain(ctx, conn, owner, queue, time.Time{})
		}
		if cursor = next; cursor != 0 {
			continue
		}
		// A whole pass is done.
		if run.due == 0 {
			if run.nextDue.IsZero() {
				released, err := h.state.releaseDrain(ctx, conn, leaseMember(leaseDrain, conn, owner))
				if err != nil || released {
					return err
				}
				continue // pages arrived meanwhile
			}
			// Only pages backing off are left: come back for the first.
			return h.startDrain(ctx, conn, owner, queue, run.nextDue)
		}
		run.due, run.nextDue = 0, time.Time{}
	}
}

// drainRun is one drain task's progress.
type drainRun struct {
	start   time.Time
	gen     func() (int64, error)
	started int // pages started in this run

	mu      sync.Mutex
	due     int       // pages tried in this pass
	nextDue time.Time // earliest page backing off in this pass
}

func (r *drainRun) later(t time.Time) {
	r.mu.Lock()
	r.nextDue = earliest(r.nextDue, t)
	r.mu.Unlock()
}

// drainItems syncs the due pages among items, PagesInFlight at a time. It
// reports yield when the slice is used up (after at least one page) or the
// worker is stopping, and the first error that concerns the connection;
// either stops it from starting more pages, and it returns once the pages
// in flight are done.
func (h *Handlers) drainItems(ctx context.Context, log *zap.Logger, conn string, items []todoItem, run *drainRun) (yield bool, err error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first != nil
	}
	sem := make(chan struct{}, h.cfg.PagesInFlight)
	for _, it := range items {
		if it.NotBefore > time.Now().UnixMilli() {
			run.later(time.UnixMilli(it.NotBefore))
			continue
		}
		if yield = run.started > 0 && time.Since(run.start) >= h.cfg.DrainSlice || h.isStopping(); yield {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil || failed() {
			break
		}
		run.started++
		run.mu.Lock()
		run.due++
		run.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := h.drainPage(ctx, log, conn, it, run); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return yield, first
}

// drainPage syncs one page; it returns only errors that concern the whole
// connection (or Redis): a page's own failure is recorded and deferred.
func (h *Handlers) drainPage(ctx context.Context, log *zap.Logger, conn string, it todoItem, run *drainRun) error {
	now := time.Now()
	err := h.syncPage(ctx, log, it.payload(conn), run.gen)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrBusy):
		it.NotBefore = now.Add(busyDelay).UnixMilli()
		run.later(time.UnixMilli(it.NotBefore))
		return h.state.deferTodo(ctx, conn, it, "", h.cfg.Now())
	case connectionWide(ctx, err):
		return err
	}
	it.Attempts++
	it.NotBefore = now.Add(pageBackoff(it.Attempts)).UnixMilli()
	run.later(time.UnixMilli(it.NotBefore))
	log.Warn("page not synced; retrying it later while the connection's other pages go on",
		zap.String("page_id", it.ID), zap.Int("attempts", it.Attempts), zap.Time("not_before", time.UnixMilli(it.NotBefore)), zap.Error(err))
	if err := h.state.deferTodo(ctx, conn, it, err.Error(), h.cfg.Now()); err != nil {
		return err
	}
	if f := h.cfg.Hooks.OnObjectError; f != nil {
		f(conn, it.ID, err)
	}
	return nil
}

// connectionWide reports whether a page's error concerns the whole
// connection (or the worker), not the page.
func connectionWide(ctx context.Context, err error) bool {
	return stopped(err) || ctx.Err() != nil || errors.Is(err, errStopping) ||
		errors.Is(err, notionclient.ErrRateLimited) || errors.Is(err, tokens.ErrTransient) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// maxPageBackoff caps the wait of a page that keeps failing.
const maxPageBackoff = time.Minute

// pageBackoff is the wait after a page's n-th failed attempt: 2 s doubling
// up to a minute, plus up to a quarter of jitter.
func pageBackoff(n int) time.Duration {
	d := min(busyDelay<<min(n-1, 10), maxPageBackoff)
	return d + time.Duration(rand.Int64N(int64(d/4)+1))
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func (it todoItem) payload(conn string) PagePayload {
	p := PagePayload{ConnID: conn, PageID: it.ID}
	if it.LastEdited > 0 {
		p.LastEdited = time.UnixMilli(it.LastEdited).UTC()
	}
	if it.DiscoveredAt > 0 {
		p.DiscoveredAt = time.UnixMilli(it.DiscoveredAt).UTC()
	}
	return p
}

// startDrain enqueues a drain task (the caller, owner, holds the drain
// flag), to run at at (zero: now). If that fails the flag is dropped, so
// that the next sweep starts one.
func (h *Handlers) startDrain(ctx context.Context, conn, owner, queue string, at time.Time) error {
	id := newDrainID(conn)
	// The flag names the drain before the drain exists: a task run again
	// after this point no longer owns the list, the drain does. While it
	// waits in the queue no worker renews it: it gets the queue's lease.
	lease := drainLease
	if !at.IsZero() {
		lease += max(time.Until(at), 0)
	}
	var prev string
	if owner != "" {
		prev = leaseMember(leaseDrain, conn, owner)
	}
	if err := h.state.passDrain(ctx, conn, id, lease, prev); err != nil {
		return fmt.Errorf("sync state of %s: %w", conn, err)
	}
	// Drain ids are unique: nothing to de-duplicate, nothing to retain.
	opts := []asynq.Option{asynq.Retention(0)}
	if !at.IsZero() {
		opts = append(opts, asynq.ProcessAt(at))
	}
	if _, err := enqueue(ctx, h.cfg.Enqueuer, TypeDrain, DrainPayload{ConnID: conn, Queue: queue}, id, queue, opts...); err != nil {
		if derr := h.state.dropDrain(context.WithoutCancel(ctx), conn, ""); derr != nil {
			h.log.Warn("could not drop the drain flag after a failed enqueue", zap.String("conn_id", conn), zap.Error(derr))
		}
		return err
	}
	return nil
}
