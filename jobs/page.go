package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/record"
)

func (h *Handlers) handlePage(ctx context.Context, t *asynq.Task) error {
	p, err := decode[PagePayload](t)
	if err != nil {
		return err
	}
	log := h.taskLogger(ctx, t, p.ConnID)
	return h.finish(ctx, t, p.ConnID, h.syncPage(ctx, log, p, h.lazyGen(ctx, p.ConnID)))
}

// lazyGen returns the connection's task-id generation, read on first use
// (most pages have no child page to hand out) and kept once read. Safe for
// concurrent use.
func (h *Handlers) lazyGen(ctx context.Context, conn string) func() (int64, error) {
	var (
		mu   sync.Mutex
		gen  int64
		read bool
	)
	return func() (int64, error) {
		mu.Lock()
		defer mu.Unlock()
		if read {
			return gen, nil
		}
		g, err := h.state.gen(ctx, conn)
		if err != nil {
			return 0, err
		}
		gen, read = g, true
		return gen, nil
	}
}

// syncPage fetches the page object and, unless the sink already holds this
// version, its whole block tree, and writes both to the sink. Its Redis
// cost besides the rate limiter: one round trip to claim the page (and read
// a checkpoint), one to record it as stored (and release the claim), and
// its share of its worker's lease renewals (one round trip per ClaimTTL/3
// for all tasks of the worker).
func (h *Handlers) syncPage(ctx context.Context, log *zap.Logger, p PagePayload, gen func() (int64, error)) error {
	log = log.With(zap.String("page_id", p.PageID))
	member := "page:" + p.PageID
	if !p.LastEdited.IsZero() && !p.DiscoveredAt.IsZero() {
		stored, err := h.cfg.Sink.Stat(ctx, p.ConnID, sink.KindPage, p.PageID)
		if err != nil && !errors.Is(err, sink.ErrNotFound) {
			return fmt.Errorf("sink: %w", err)
		}
		if err == nil && !stored.Deleted() && (stored.LastEditedTime.After(p.LastEdited) ||
			stored.LastEditedTime.Equal(p.LastEdited) && !stored.SyncedAt.Before(p.DiscoveredAt)) {
			// A copy fetched after this version was discovered is stored.
			// The task that stored it recorded its error or note (or
			// cleared it): keep that.
			return h.finishObject(ctx, p.ConnID, doneArgs{member: member, objectID: p.PageID, keepError: true})
		}
	}
	// One task at a time fetches a given page: Notion requests are the
	// scarce resource, and a duplicate that waits finds the stored copy.
	cl, stored0, err := h.state.claimPage(ctx, p.ConnID, p.PageID)
	if err != nil {
		return err
	}
	// The claim lives ClaimTTL and is renewed while this task runs: a
	// worker that dies frees it within ClaimTTL.
	defer h.keeper.hold(&lease{conn: p.ConnID, key: cl.key, token: cl.token})()
	released := false
	defer func() {
		if !released {
			h.state.release(ctx, cl)
		}
	}()
	finish := func(a doneArgs) error {
		// The script releases the claim with the rest; if it fails (Redis,
		// a cancelled task), the deferred release still gives it back.
		a.member, a.objectID, a.claim = member, p.PageID, cl
		err := h.finishObject(ctx, p.ConnID, a)
		released = err == nil
		return err
	}
	done := func(pages int) error { return finish(doneArgs{pages: pages}) }
	// failed ends the page with a permanent error: it is done (the
	// connection's cursor moves on) and version (ms; 0: unknown) is marked,
	// so it is not asked again until the page is edited.
	failed := func(err error, version int64, detail ...zap.Field) error {
		msg := fmt.Sprintf("page %s not synced: %v", p.PageID, err)
		log.Warn("page recorded as a permanent per-object error until it is edited", append(detail, zap.Error(err))...)
		if err := finish(doneArgs{errMsg: msg, errKind: ErrorPermanent, capped: version}); err != nil {
			return err
		}
		if f := h.cfg.Hooks.OnObjectError; f != nil {
			f(p.ConnID, p.PageID, err)
		}
		return nil
	}
	if !p.LastEdited.IsZero() && stored0.capped == p.LastEdited.UnixMilli() {
		// The version the sweep (or a webhook) saw failed permanently
		// before: not even the page GET is sent again (its error stays).
		return finish(doneArgs{keepError: true, capped: stored0.capped})
	}
	syncedAt := h.cfg.Now()
	raw, err := h.cfg.Notion.Do(ctx, p.ConnID, http.MethodGet, "/v1/pages/"+url.PathEscape(p.PageID), nil)
	if notionclient.IsNotFound(err) {
		// The integration lost access (or the page is gone for good).
		if err := h.cfg.Sink.MarkUnshared(ctx, p.ConnID, p.PageID, syncedAt); err != nil {
			return fmt.Errorf("sink: %w", err)
		}
		log.Info("page not shared with the integration any more; recorded as unshared")
		return done(0)
	}
	if permanentAnswer(err, false) {
		// 403, 400: asking again gets the same answer. The version is the
		// one the sweep saw; a task without one (a child page found in its
		// parent's walk, a webhook) keeps the mark a sweep left, if any.
		version := msOrZero(p.LastEdited)
		if version == 0 {
			version = stored0.capped
		}
		return failed(&PermanentError{Object: "page " + p.PageID, Err: err}, version)
	}
	if err != nil {
		return fmt.Errorf("page %s: %w", p.PageID, err)
	}
	head, err := parseHead(raw)
	if err != nil {
		return fmt.Errorf("page %s: %w", p.PageID, err)
	}
	if head.deleted() {
		page, err := record.PageFromObject(p.ConnID, raw, nil, syncedAt)
		if err != nil {
			return fmt.Errorf("page %s: %w: %w", p.PageID, ErrMalformed, err)
		}
		if _, err := h.cfg.Sink.PutPage(ctx, page); err != nil {
			return fmt.Errorf("sink: %w", err)
		}
		log.Info("page archived or in trash; recorded as deleted")
		return done(0)
	}
	edited := head.LastEditedTime.UnixMilli()
	if stored0.capped == edited {
		// This version failed permanently before (a cap, or a permanent
		// answer for its blocks): it is not walked again until the page
		// changes (its error stays in the status).
		return finish(doneArgs{keepError: true, capped: edited})
	}
	stored, err := h.cfg.Sink.Stat(ctx, p.ConnID, sink.KindPage, head.ID)
	if err != nil && !errors.Is(err, sink.ErrNotFound) {
		return fmt.Errorf("sink: %w", err)
	}
	// A tombstone is never up to date with a live answer: an object
	// shared again keeps its old last_edited_time.
	if err == nil && !stored.Deleted() && (upToDate(stored.LastEditedTime, stored.SyncedAt, head.LastEditedTime) ||
		!p.DiscoveredAt.IsZero() && stored.LastEditedTime.Equal(head.LastEditedTime) && !stored.SyncedAt.Before(p.DiscoveredAt)) {
		return finish(doneArgs{keepError: true}) // another task got there first (and decided the error)
	}
	// Values Notion cut at 25 items are completed before the (longer,
	// checkpointed) block walk: a retry after a failure here repeats the
	// page GET only.
	raw, propRequests, err := h.completeProperties(ctx, p.ConnID, head.ID, raw)
	if errorKind(err) == ErrorPermanent {
		return failed(err, edited, zap.Int("property_requests", propRequests))
	}
	if err != nil {
		return fmt.Errorf("page %s properties: %w", p.PageID, err)
	}
	if propRequests > 0 {
		log.Debug("page property values completed", zap.Int("property_requests", propRequests))
	}
	w, resumed := resumeTreeWalk(head.ID, edited, h.walkCaps(), stored0.tree)
	if resumed {
		log.Info("resuming block walk from checkpoint", zap.Int("requests_done", w.requests), zap.Int("queued", len(w.queue)))
	}
	blocks, err := h.fetchTree(ctx, p.ConnID, head, w, gen, log)
	if errorKind(err) == ErrorPermanent {
		// A cap, or a permanent answer for a listing: retrying at once
		// would cost the same requests for the same answer. The page is
		// done with its error, so the connection's cursor moves on, and
		// this version is not walked again (see above). An edit of the
		// page walks it again.
		return failed(err, edited,
			zap.Int("requests", w.requests), zap.Int("blocks", w.blocks), zap.Int64("bytes", w.bytes))
	}
	if err != nil {
		return fmt.Errorf("page %s blocks: %w", p.PageID, err)
	}
	page, err := record.PageFromObject(p.ConnID, raw, blocks, syncedAt)
	if err != nil {
		return fmt.Errorf("page %s: %w: %w", p.PageID, ErrMalformed, err)
	}
	note := w.notes.String()
	if store, ok := h.fileStore(); ok {
		// Files go first: a stored page (which Stat then reports as up to
		// date) always has its files.
		links, fileNote, err := h.storeFiles(ctx, log, store, p.ConnID, head.ID, raw, blocks)
		if err != nil {
			return fmt.Errorf("page %s: %w", p.PageID, err)
		}
		page.Files = links
		if fileNote != "" {
			note = strings.TrimPrefix(note+"; "+fileNote, "; ")
		}
	}
	if _, err := h.cfg.Sink.PutPage(ctx, page); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	if note != "" {
		note = fmt.Sprintf("page %s stored with notes: %s", p.PageID, note)
		log.Warn("page stored with notes (part of its block tree or files missing)", zap.String("note", note))
	}
	return finish(doneArgs{pages: 1, errMsg: note})
}

func (h *Handlers) walkCaps() walkCaps {
	return walkCaps{blocks: h.cfg.MaxObjectBlocks, requests: h.cfg.MaxObjectRequests, bytes: h.cfg.MaxObjectBytes, depth: h.cfg.MaxBlockDepth}
}

// fetchTree walks a page's blocks (one level per request, every level
// paginated), breadth first, descending where has_children, except into
// child pages and child databases, which are their own objects and get
// their own tasks. The walk is bounded (see walk.go): each block is
// listed once, a repeated cursor or a cap ends it with a *CapError. It is
// checkpointed so that a retry (after a rate limit, a shutdown or a crash)
// resumes where it stopped. A resumed walk whose cursor Notion refuses
// starts over once.
func (h *Handlers) fetchTree(ctx context.Context, conn string, page objectHead, w *treeWalk, gen func() (int64, error), log *zap.Logger) ([]sink.Block, error) {
	restarted := false
	save := func() {
		if err := h.state.saveTree(context.WithoutCancel(ctx), conn, w); err != nil {
			log.Warn("could not save checkpoint", zap.Error(err))
		}
	}
	onChild := func(b objectHead) { h.enqueueChild(ctx, conn, gen, b, log) }
	for {
		// A walk stops between requests when its task does (shutdown, a
		// deadline), not only inside the next request.
		if err := ctx.Err(); err != nil {
			save()
			return nil, err
		}
		if h.isStopping() {
			// The worker is shutting down: a long walk (a page task's, which
			// Stop does not cancel) hands its progress back now instead of
			// running into the shutdown timeout.
			save()
			return nil, errStopping
		}
		item, more, err := w.next()
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		path := "/v1/blocks/" + url.PathEscape(item.ID) + "/children?page_size=100"
		if item.Cursor != "" {
			path += "&start_cursor=" + url.QueryEscape(item.Cursor)
		}
		raw, err := h.cfg.Notion.Do(ctx, conn, http.MethodGet, path, nil)
		if item.Cursor != "" && !restarted && cursorRefused(err) {
			log.Warn("Notion refused a stored pagination cursor; walking the page's blocks again from the start", zap.Error(err))
			w.restart()
			restarted = true
			continue
		}
		if err == nil {
			var list listResponse
			if list, err = parseList(raw); err == nil {
				c := treeChunk{Parent: item.ID, Cursor: item.Cursor, Next: list.next(), Results: list.Results}
				if err = w.apply(c, onChild); err == nil {
					w.unsaved = append(w.unsaved, c)
				}
			}
		}
		if item.Cursor != "" && restarted && cursorRefused(err) {
			// Transient: the page is retried with backoff (a cursor refused
			// by chance, say, loses nothing); the task does not loop.
			err = fmt.Errorf("children of block %s: %w: %w", item.ID, ErrCursorExpiring, err)
		} else if permanentAnswer(err, item.Cursor != "") {
			err = &PermanentError{Object: "children of block " + item.ID, Err: err}
		}
		if errorKind(err) == ErrorPermanent {
			return nil, err // the checkpoint is dropped with the page
		}
		if err != nil {
			save()
			return nil, err
		}
		if len(w.unsaved) >= h.cfg.CheckpointEvery {
			save()
		}
	}
	blocks, err := assemble(page.ID, w.children)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return blocks, nil
}

// enqueueChild hands a child page or child database found inside a page to
// its own task (best effort: the sweep finds them too).
func (h *Handlers) enqueueChild(ctx context.Context, conn string, genFn func() (int64, error), b objectHead, log *zap.Logger) {
	gen, err := genFn()
	if err != nil {
		log.Warn("could not enqueue child object", zap.String("block_id", b.ID), zap.Error(err))
		return
	}
	switch b.Type {
	case "child_page":
		// A child_page block's last_edited_time is the block's, not the
		// page's: the task fetches the page and decides.
		_, err = enqueue(ctx, h.cfg.Enqueuer, TypePage, PagePayload{ConnID: conn, PageID: b.ID, DiscoveredAt: h.cfg.Now()},
			fmt.Sprintf("g%d:child:%s:%s:%d", gen, conn, b.ID, b.LastEditedTime.Unix()), QueueSync)
	case "child_database":
		_, err = enqueue(ctx, h.cfg.Enqueuer, TypeDatabase, DatabasePayload{ConnID: conn, DatabaseID: b.ID, LastEdited: b.LastEditedTime},
			fmt.Sprintf("g%d:childdb:%s:%s:%d", gen, conn, b.ID, h.cfg.Now().Truncate(time.Minute).Unix()), QueueSync)
	}
	if err != nil {
		log.Warn("could not enqueue child object", zap.String("block_id", b.ID), zap.Error(err))
	}
}
