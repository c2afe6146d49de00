package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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
	return h.finish(ctx, p.ConnID, h.syncPage(ctx, log, p, h.lazyGen(ctx, p.ConnID)))
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
		if err == nil && (stored.LastEditedTime.After(p.LastEdited) ||
			stored.LastEditedTime.Equal(p.LastEdited) && !stored.SyncedAt.Before(p.DiscoveredAt)) {
			// A copy fetched after this version was discovered is stored.
			return h.finishObject(ctx, p.ConnID, doneArgs{member: member, objectID: p.PageID})
		}
	}
	// One task at a time fetches a given page: Notion requests are the
	// scarce resource, and a duplicate that waits finds the stored copy.
	var ck treeCheckpoint
	cl, resumed, err := h.state.claimPage(ctx, p.ConnID, p.PageID, &ck)
	if err != nil {
		return err
	}
	// The claim lives ClaimTTL and is renewed while this task runs: a
	// worker that dies frees it within ClaimTTL.
	defer h.keeper.hold(&lease{key: cl.key, token: cl.token})()
	released := false
	defer func() {
		if !released {
			h.state.release(ctx, cl)
		}
	}()
	done := func(pages int) error {
		// The script releases the claim with the rest; if it fails (Redis,
		// a cancelled task), the deferred release still gives it back.
		err := h.finishObject(ctx, p.ConnID, doneArgs{member: member, pages: pages, objectID: p.PageID, claim: cl})
		released = err == nil
		return err
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
	stored, err := h.cfg.Sink.Stat(ctx, p.ConnID, sink.KindPage, head.ID)
	if err != nil && !errors.Is(err, sink.ErrNotFound) {
		return fmt.Errorf("sink: %w", err)
	}
	if err == nil && (upToDate(stored.LastEditedTime, stored.SyncedAt, head.LastEditedTime) ||
		!p.DiscoveredAt.IsZero() && stored.LastEditedTime.Equal(head.LastEditedTime) && !stored.SyncedAt.Before(p.DiscoveredAt)) {
		return done(0) // another task got there first
	}
	if !resumed || ck.Edited != head.LastEditedTime.UnixMilli() {
		ck = newTreeCheckpoint(head)
	} else {
		log.Info("resuming block walk from checkpoint", zap.Int("parents_done", len(ck.Children)), zap.Int("queued", len(ck.Queue)))
	}
	blocks, err := h.fetchTree(ctx, p.ConnID, head, &ck, gen, log)
	if err != nil {
		return fmt.Errorf("page %s blocks: %w", p.PageID, err)
	}
	page, err := record.PageFromObject(p.ConnID, raw, blocks, syncedAt)
	if err != nil {
		return fmt.Errorf("page %s: %w: %w", p.PageID, ErrMalformed, err)
	}
	if _, err := h.cfg.Sink.PutPage(ctx, page); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	return done(1)
}

// treeCheckpoint is a page's block-tree walk in progress.
type treeCheckpoint struct {
	// Edited is the page version the walk belongs to (unix ms).
	Edited int64 `json:"edited"`
	// Children holds the children fetched so far, by parent block id.
	Children map[string][]json.RawMessage `json:"children"`
	// Queue is what is left to fetch, front first.
	Queue []treeItem `json:"queue"`
}

type treeItem struct {
	ID     string `json:"id"`
	Cursor string `json:"cursor,omitempty"`
	Depth  int    `json:"depth"`
}

func newTreeCheckpoint(page objectHead) treeCheckpoint {
	return treeCheckpoint{Edited: page.LastEditedTime.UnixMilli(), Children: map[string][]json.RawMessage{},
		Queue: []treeItem{{ID: page.ID}}}
}

// fetchTree walks a page's blocks (one level per request, every level
// paginated), recursing where has_children, except into child pages and
// child databases, which are their own objects and get their own tasks. The
// walk starts from ck and is checkpointed so that a retry (after a rate
// limit or a crash) resumes where it stopped. A resumed walk whose cursor
// Notion refuses starts over once.
func (h *Handlers) fetchTree(ctx context.Context, conn string, page objectHead, ck *treeCheckpoint, gen func() (int64, error), log *zap.Logger) ([]sink.Block, error) {
	restarted := false
	for n := 1; len(ck.Queue) > 0; n++ {
		item := ck.Queue[0]
		path := "/v1/blocks/" + url.PathEscape(item.ID) + "/children?page_size=100"
		if item.Cursor != "" {
			path += "&start_cursor=" + url.QueryEscape(item.Cursor)
		}
		raw, err := h.cfg.Notion.Do(ctx, conn, http.MethodGet, path, nil)
		if item.Cursor != "" && !restarted && cursorRefused(err) {
			log.Warn("Notion refused a stored pagination cursor; walking the page's blocks again from the start", zap.Error(err))
			*ck = newTreeCheckpoint(page)
			restarted = true
			continue
		}
		if err == nil {
			var list listResponse
			list, err = parseList(raw)
			if err == nil {
				var more []treeItem
				for _, r := range list.Results {
					b, herr := parseHead(r)
					if herr != nil {
						err = herr
						break
					}
					ck.Children[item.ID] = append(ck.Children[item.ID], r)
					switch {
					case b.Type == "child_page" || b.Type == "child_database":
						h.enqueueChild(ctx, conn, gen, b, log)
					case b.HasChildren && item.Depth+1 < h.cfg.MaxBlockDepth:
						more = append(more, treeItem{ID: b.ID, Depth: item.Depth + 1})
					case b.HasChildren:
						log.Warn("block tree deeper than the limit; not descending", zap.String("block_id", b.ID), zap.Int("max_depth", h.cfg.MaxBlockDepth))
					}
				}
				if err == nil {
					rest := ck.Queue[1:]
					if next := list.next(); next != "" {
						rest = append([]treeItem{{ID: item.ID, Cursor: next, Depth: item.Depth}}, rest...)
					}
					ck.Queue = append(rest, more...)
				}
			}
		}
		if err != nil {
			if serr := h.state.saveCheckpoint(context.WithoutCancel(ctx), conn, "page", page.ID, ck); serr != nil {
				log.Warn("could not save checkpoint", zap.Error(serr))
			}
			return nil, err
		}
		if n%h.cfg.CheckpointEvery == 0 {
			if err := h.state.saveCheckpoint(context.WithoutCancel(ctx), conn, "page", page.ID, ck); err != nil {
				log.Warn("could not save checkpoint", zap.Error(err))
			}
		}
	}
	blocks, err := assemble(page.ID, ck.Children, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return blocks, nil
}

// assemble builds the tree below parent from the fetched children lists.
func assemble(parent string, children map[string][]json.RawMessage, depth int) ([]sink.Block, error) {
	raws := children[parent]
	if len(raws) == 0 || depth > 1000 {
		return nil, nil
	}
	out := make([]sink.Block, 0, len(raws))
	for _, r := range raws {
		b, err := record.BlockFromRaw(r)
		if err != nil {
			return nil, err
		}
		if b.HasChildren {
			if b.Children, err = assemble(b.ID, children, depth+1); err != nil {
				return nil, err
			}
		}
		out = append(out, b)
	}
	return out, nil
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
