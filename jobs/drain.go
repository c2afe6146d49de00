package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/tokens"
)

// A connection's pages are synced by one drain task at a time, not by a
// task per page. Notion's limit is per connection (3 requests/s), so one
// sequential walk paced by the rate limiter uses a connection's whole
// budget, while a task per page put dozens of a connection's tasks in the
// queue at once: they filled the worker slots, waited for the same budget
// and left other connections' budgets unused. The drain also spends one
// asynq task on many Notion requests instead of one or two.
//
// The mechanism: sweeps and database tasks put changed pages on the
// connection's to-do hash (and in the pending set, as before) and take the
// connection's drain flag if it is free; whoever takes it enqueues a drain.
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
	err = h.drain(ctx, log, p)
	if err != nil && stopped(err) {
		// The connection stopped: its pages stay pending and on the to-do
		// list; the first sweep after it resumes starts a new drain.
		if derr := h.state.dropDrain(context.WithoutCancel(ctx), p.ConnID); derr != nil {
			log.Warn("could not drop the drain flag of a stopped connection", zap.Error(derr))
		}
	}
	return h.finish(ctx, p.ConnID, err)
}

// drain syncs the connection's waiting pages for up to DrainSlice.
//
// A page that fails on its own (Notion answers garbage or an error for
// that object, the sink refuses it) is recorded as a per-object error,
// waits with exponential backoff (busyDelay doubling, at most
// maxPageBackoff) and stays pending, and the drain goes on with the other
// pages. What concerns the whole connection ends the drain with the error,
// for asynq to retry: rate limiting, transient token trouble, a stopped
// connection, Redis, shutdown.
func (h *Handlers) drain(ctx context.Context, log *zap.Logger, p DrainPayload) error {
	conn, queue := p.ConnID, cmp.Or(p.Queue, QueueSync)
	start := time.Now()
	gen := h.lazyGen(ctx, conn)
	var (
		cursor  uint64
		due     int       // pages tried in this pass
		nextDue time.Time // earliest page backing off in this pass
	)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if h.isStopping() {
			// The worker is stopping: hand the connection on.
			return h.startDrain(ctx, conn, queue, time.Time{})
		}
		items, next, err := h.state.scanTodo(ctx, conn, cursor, drainLease)
		if err != nil {
			return err
		}
		yield := false
		for _, it := range items {
			now := time.Now()
			if it.NotBefore > now.UnixMilli() {
				nextDue = earliest(nextDue, time.UnixMilli(it.NotBefore))
				continue
			}
			due++
			err := h.syncPage(ctx, log, it.payload(conn), gen)
			switch {
			case err == nil:
			case errors.Is(err, ErrBusy):
				it.NotBefore = now.Add(busyDelay).UnixMilli()
				nextDue = earliest(nextDue, time.UnixMilli(it.NotBefore))
				if err := h.state.deferTodo(ctx, conn, it, ""); err != nil {
					return err
				}
			case connectionWide(ctx, err):
				return err
			default:
				it.Attempts++
				it.NotBefore = now.Add(pageBackoff(it.Attempts)).UnixMilli()
				nextDue = earliest(nextDue, time.UnixMilli(it.NotBefore))
				log.Warn("page not synced; retrying it later while the connection's other pages go on",
					zap.String("page_id", it.ID), zap.Int("attempts", it.Attempts), zap.Time("not_before", time.UnixMilli(it.NotBefore)), zap.Error(err))
				if err := h.state.deferTodo(ctx, conn, it, err.Error()); err != nil {
					return err
				}
				if f := h.cfg.Hooks.OnObjectError; f != nil {
					f(conn, it.ID, err)
				}
			}
			// At least one page per slice, then take turns: the
			// continuation joins the tail of the queue.
			if yield = time.Since(start) >= h.cfg.DrainSlice || h.isStopping(); yield {
				break
			}
		}
		if yield {
			return h.startDrain(ctx, conn, queue, time.Time{})
		}
		if cursor = next; cursor != 0 {
			continue
		}
		// A whole pass is done.
		if due == 0 {
			if nextDue.IsZero() {
				released, err := h.state.releaseDrain(ctx, conn)
				if err != nil || released {
					return err
				}
				continue // pages arrived meanwhile
			}
			// Only pages backing off are left: come back for the first.
			return h.startDrain(ctx, conn, queue, nextDue)
		}
		due, nextDue = 0, time.Time{}
	}
}

// connectionWide reports whether a page's error concerns the whole
// connection (or the worker), not the page.
func connectionWide(ctx context.Context, err error) bool {
	return stopped(err) || ctx.Err() != nil ||
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

// ensureDrain starts a drain for pages that wait without one.
func (h *Handlers) ensureDrain(ctx context.Context, conn, queue string) error {
	ok, err := h.state.ensureDrain(ctx, conn, h.cfg.Now())
	if err != nil || !ok {
		return err
	}
	return h.startDrain(ctx, conn, queue, time.Time{})
}

// startDrain enqueues a drain task (the caller holds the drain flag), to
// run at at (zero: now). If that fails the flag is dropped, so that the
// next sweep starts one.
func (h *Handlers) startDrain(ctx context.Context, conn, queue string, at time.Time) error {
	id := fmt.Sprintf("drain:%s:%d:%x", conn, time.Now().UnixMilli(), rand.Uint64())
	// Drain ids are unique: nothing to de-duplicate, nothing to retain.
	opts := []asynq.Option{asynq.Retention(0)}
	if !at.IsZero() {
		opts = append(opts, asynq.ProcessAt(at))
	}
	if _, err := enqueue(ctx, h.cfg.Enqueuer, TypeDrain, DrainPayload{ConnID: conn, Queue: queue}, id, queue, opts...); err != nil {
		if derr := h.state.dropDrain(context.WithoutCancel(ctx), conn); derr != nil {
			h.log.Warn("could not drop the drain flag after a failed enqueue", zap.String("conn_id", conn), zap.Error(derr))
		}
		return err
	}
	return nil
}
