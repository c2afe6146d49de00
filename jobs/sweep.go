package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/sync/sink"
)

// sweepCheckpoint lets a sweep interrupted mid-search (rate limit, crash)
// resume from its last page of results.
type sweepCheckpoint struct {
	Floor  int64  `json:"floor"`  // ms; results older than this end the sweep
	Next   string `json:"next"`   // start_cursor of the next search page
	Target int64  `json:"target"` // newest last_edited_time seen so far (ms)
	Found  int    `json:"found"`
	// Requests counts the search requests of this sweep, across resumes:
	// the listing's cap (MaxObjectRequests) holds however often it stops.
	Requests int `json:"requests,omitempty"`
}

// handleSweep discovers what changed since the connection's cursor: one
// search sorted by last_edited_time, newest first, paged until results are
// older than the cursor minus the overlap. An unchanged workspace costs one
// request. Each changed page or database becomes its own task.
func (h *Handlers) handleSweep(ctx context.Context, t *asynq.Task) error {
	p, err := decode[SweepPayload](t)
	if err != nil {
		return err
	}
	taskID, _ := asynq.GetTaskID(ctx)
	err = h.sweep(ctx, h.taskLogger(ctx, t, p.ConnID), p.ConnID, "sweep:"+taskID, true)
	if err != nil && stopped(err) {
		// The connection stopped (paused, needs re-authorization): this
		// sweep will not run again, so it must not hold the cursor. Its
		// target was never recorded, so the cursor cannot pass what it did
		// not hand out.
		if derr := h.markDone(context.WithoutCancel(ctx), p.ConnID, "sweep:"+taskID, 0); derr != nil {
			h.log.Warn("could not release a stopped sweep", zap.String("conn_id", p.ConnID), zap.Error(derr))
		}
	}
	return h.finish(ctx, t, p.ConnID, err)
}

// sweep runs one connection's sweep. self is its pending-set member, the
// same for every run of one task (so a retry replaces it); inline says
// whether the sweep syncs the pages it finds itself when it takes the
// drain flag (a sweep task) or hands them to a drain task (a sweep batch,
// which must not hold up the other connections of its batch).
func (h *Handlers) sweep(ctx context.Context, log *zap.Logger, conn, self string, inline bool) error {
	// The sweep itself is pending while it runs: otherwise the cursor could
	// move to the target (the newest result, seen first) as soon as the
	// first page of results was stored, before older results were handed out.
	now := h.cfg.Now()
	st, err := h.state.beginSweep(ctx, conn, self, now, h.usersEvery())
	if err != nil {
		return err
	}
	switch {
	case st.usersErr != nil:
		log.Warn("could not claim the user listing", zap.Error(st.usersErr))
	case st.usersDue:
		h.syncUsersClaimed(ctx, log, conn, st.usersPrev, now)
	}
	// Its pending entry is leased for ClaimTTL, renewed while it runs: if
	// its worker dies, the reaper releases the entry and sweeps again
	// (asynq would run this task again only after a minute or two).
	sweepLease := leaseMember(leaseSweep, conn, self)
	defer h.keeper.hold(&lease{conn: conn, member: sweepLease})()
	ended := false
	defer func() {
		if !ended {
			// Failed or stopped: the task is retried (or released) by its
			// caller, not by the reaper.
			if err := h.state.dropLease(context.WithoutCancel(ctx), conn, sweepLease); err != nil {
				log.Warn("could not drop the sweep's lease", zap.Error(err))
			}
		}
	}()
	fresh := func() sweepCheckpoint {
		var ck sweepCheckpoint
		if !st.cursor.IsZero() {
			ck.Floor = st.cursor.Add(-h.cfg.Overlap).UnixMilli()
		}
		return ck
	}
	var ck sweepCheckpoint
	if st.ck == nil || json.Unmarshal(st.ck, &ck) != nil {
		ck = fresh() // no checkpoint, or one we cannot read: start over
	}
	floor := time.UnixMilli(ck.Floor)
	// A connection's first sync (a backfill) yields to incremental syncs.
	queue := QueueSync
	if st.cursor.IsZero() {
		queue = QueueBackfill
	}
	enqueued, requests, restarted := 0, 0, false
	// A search that pages for ever (a cursor repeated, or more requests
	// than the cap) ends the sweep early: what it handed out syncs, its
	// target is not recorded (the cursor cannot pass results it never
	// reached), and the search is recorded as a per-object error.
	var truncated error
	cursors := map[string]bool{}
	var badResults []string // per-object error keys of skipped results
	// owned: this sweep took the drain flag, so the pages it handed out are
	// its to sync (inline, after the search) or to hand to a drain task.
	owned, handedOff := false, false
	// While it owns the flag the sweep renews it (ClaimTTL) until it hands
	// it on; if its worker dies the reaper starts a drain.
	dropFlag := func() {}
	own := func() {
		owned = true
		dropFlag = h.keeper.hold(&lease{conn: conn, key: h.state.drainKey(conn), token: self, member: leaseMember(leaseDrain, conn, self)})
	}
	defer func() {
		dropFlag()
		if owned && !handedOff {
			// The sweep stopped early: its pages must not wait for the
			// flag's lease to run out.
			if err := h.startDrain(context.WithoutCancel(ctx), conn, self, queue, time.Time{}); err != nil {
				log.Warn("could not hand the sweep's pages to a drain task", zap.Error(err))
			}
		}
	}()
	for {
		body := map[string]any{
			"sort":      map[string]string{"timestamp": "last_edited_time", "direction": "descending"},
			"page_size": 100,
		}
		if ck.Next != "" {
			body["start_cursor"] = ck.Next
		}
		raw, err := h.cfg.Notion.Do(ctx, conn, http.MethodPost, "/v1/search", body)
		requests++
		ck.Requests++
		if ck.Next != "" && !restarted && cursorRefused(err) {
			// Everything handed out so far stays pending; starting over
			// hands out at most duplicates, which cost nothing.
			log.Warn("Notion refused the sweep's stored search cursor; searching again from the newest result", zap.Error(err))
			found, target := ck.Found, ck.Target
			ck = fresh()
			ck.Found, ck.Target = found, target
			restarted = true
			clear(cursors) // a new listing
			continue
		}
		if ck.Next != "" && restarted && cursorRefused(err) {
			// Refused again after starting over: ended like a search that
			// pages for ever, so the sweep does not retry it hot.
			truncated = fmt.Errorf("search: %w: %w", ErrCursorExpiring, err)
			break
		}
		if err != nil {
			h.saveSweep(ctx, conn, ck, log)
			return fmt.Errorf("search: %w", err)
		}
		list, err := parseList(raw)
		if err != nil {
			h.saveSweep(ctx, conn, ck, log)
			return fmt.Errorf("search: %w", err)
		}
		done := !list.HasMore
		var tasks []fanout
		for _, r := range list.Results {
			head, err := parseHead(r)
			if err != nil {
				// One bad result must not stop the others (nor hold the
				// cursor): it is skipped and shown as a per-object error.
				if k := h.resultError(ctx, conn, searchObject, r, err, len(badResults), log); k != "" {
					badResults = append(badResults, k)
				}
				continue
			}
			if ck.Floor > 0 && head.LastEditedTime.Before(floor) {
				done = true
				break
			}
			ck.Found++
			ck.Target = max(ck.Target, head.LastEditedTime.UnixMilli())
			f, ok, err := h.plan(ctx, conn, st.gen, head)
			if err != nil {
				h.saveSweep(ctx, conn, ck, log)
				return err
			}
			if ok {
				tasks = append(tasks, f)
			}
		}
		// The target is recorded only when the whole sweep is done: a sweep
		// that stops halfway must not let the cursor pass results it never
		// handed out.
		n, took, err := h.fanOut(ctx, conn, self, tasks, queue)
		enqueued += n
		if took && !owned {
			own()
		}
		if err != nil {
			h.saveSweep(ctx, conn, ck, log)
			return err
		}
		if done {
			break
		}
		next := list.next()
		switch {
		case next == ck.Next || cursors[next]:
			truncated = &CapError{Object: "search", Cap: CapRepeatedCursor, Listing: "the workspace search"}
		case ck.Requests >= h.cfg.MaxObjectRequests:
			truncated = &CapError{Object: "search", Cap: CapRequests, Limit: int64(h.cfg.MaxObjectRequests)}
		}
		if truncated != nil {
			break
		}
		cursors[next] = true
		ck.Next = next
		if requests%h.cfg.CheckpointEvery == 0 {
			h.saveSweep(ctx, conn, ck, log)
		}
	}
	if st.pending > 0 && !owned {
		// Pages left waiting by an earlier run whose drain is gone (it
		// stopped with a paused connection, or was archived) get one now.
		took, err := h.state.ensureDrain(ctx, conn, self, h.state.claimTTL, leaseMember(leaseDrain, conn, self))
		if err != nil {
			return err
		}
		if took {
			own()
		}
	}
	// Record the target and release the sweep's own entry; if nothing else
	// is pending (an unchanged workspace, or all tasks already done) the
	// cursor moves now.
	var target time.Time
	if ck.Target > 0 && truncated == nil {
		target = time.UnixMilli(ck.Target)
	}
	if truncated != nil {
		h.objectError(ctx, conn, searchObject, ErrorTransient, fmt.Errorf("sweep stopped early, cursor not advanced: %w", truncated))
	}
	cursor, err := h.state.endSweep(ctx, conn, self, target, truncated == nil, badResults)
	if err != nil {
		return err
	}
	ended = true // endSweep dropped the sweep's lease
	h.cursorMoved(conn, cursor)
	log.Debug("sweep finished", zap.Int("discovered", ck.Found), zap.Int("enqueued", enqueued), zap.Int("requests", requests))
	if f := h.cfg.Hooks.OnSweep; f != nil {
		f(conn, ck.Found, enqueued)
	}
	if !owned {
		return nil
	}
	if !inline {
		handedOff = true
		return h.startDrain(ctx, conn, self, queue, time.Time{})
	}
	// The sweep syncs the pages it found itself, in the slot it holds: no
	// queue round trip, and the token it used is in this process's cache.
	// A long list goes on in continuations like any drain.
	handedOff = true
	err = h.drain(ctx, log, self, DrainPayload{ConnID: conn, Queue: queue})
	switch {
	case err == nil:
		return nil
	case stopped(err):
		if derr := h.state.dropDrain(context.WithoutCancel(ctx), conn, leaseMember(leaseDrain, conn, self)); derr != nil {
			log.Warn("could not drop the drain flag of a stopped connection", zap.Error(derr))
		}
		return err
	}
	// Rate limited, a token backoff, Redis, shutdown: the sweep is done;
	// its pages go on in a drain task after the wait the error asks for.
	at := time.Now().Add(RetryDelay(0, err, nil))
	if serr := h.startDrain(context.WithoutCancel(ctx), conn, self, queue, at); serr != nil {
		return errors.Join(err, serr)
	}
	log.Debug("sweep handed its pages to a drain task", zap.Time("at", at), zap.Error(err))
	return nil
}

// searchObject is the per-object error key of a connection's search.
const searchObject = "search"

// maxResultErrors bounds the skipped results one listing records as
// per-object errors (the others are logged): a hostile listing must not
// grow the errors hash without bound.
const maxResultErrors = 10

// resultError records a search result or database row that is not a
// Notion object with a Notion id: skipped, shown in the connection's status
// under listing:<hash of the result's id or body> (the id itself may be
// anything). n counts the listing's errors recorded so far. It returns the
// key it recorded, or "" past maxResultErrors. A listing that runs to its
// end drops the keys of earlier runs that it did not record again (see
// endSweep, pruneErrors): the error shows what the last listing saw.
func (h *Handlers) resultError(ctx context.Context, conn, listing string, raw json.RawMessage, err error, n int, log *zap.Logger) string {
	if n >= maxResultErrors {
		log.Warn("result skipped", zap.String("listing", listing), zap.Error(err))
		return ""
	}
	var probe struct {
		ID any `json:"id"`
	}
	keyOf := []byte(raw)
	if json.Unmarshal(raw, &probe) == nil && probe.ID != nil {
		keyOf, _ = json.Marshal(probe.ID)
	}
	sum := sha256.Sum256(keyOf)
	key := listing + ":" + hex.EncodeToString(sum[:6])
	h.objectError(ctx, conn, key, ErrorPermanent, fmt.Errorf("%s result skipped: %w", listing, err))
	return key
}

func (h *Handlers) saveSweep(ctx context.Context, conn string, ck sweepCheckpoint, log *zap.Logger) {
	if err := h.state.saveCheckpoint(context.WithoutCancel(ctx), conn, "sweep", "search", ck); err != nil {
		log.Warn("could not save sweep checkpoint", zap.Error(err))
	}
}

// fanout is one task a sweep or a database task hands out.
type fanout struct {
	member string // pending-set member
	typ    string
	id     string // task id
	load   any
}

// plan decides whether a discovered object needs a task.
func (h *Handlers) plan(ctx context.Context, conn string, gen int64, head objectHead) (fanout, bool, error) {
	switch head.Object {
	case "page":
		stored, err := h.cfg.Sink.Stat(ctx, conn, sink.KindPage, head.ID)
		if err != nil && !errors.Is(err, sink.ErrNotFound) {
			return fanout{}, false, fmt.Errorf("sink: %w", err)
		}
		if err == nil && upToDate(stored.LastEditedTime, stored.SyncedAt, head.LastEditedTime) {
			return fanout{}, false, nil
		}
		now := h.cfg.Now()
		return fanout{
			member: "page:" + head.ID, typ: TypePage,
			id:   fmt.Sprintf("g%d:%s", gen, pageTaskID(conn, head.ID, head.LastEditedTime, now)),
			load: PagePayload{ConnID: conn, PageID: head.ID, LastEdited: head.LastEditedTime, DiscoveredAt: now},
		}, true, nil
	case "database":
		// A database's rows change without its own last_edited_time
		// moving; its task queries rows since the database's own cursor.
		// Its id includes the sweep's clock minute so each sweep that sees
		// the database (inside the overlap) may run it once.
		return fanout{
			member: "db:" + head.ID, typ: TypeDatabase,
			id:   fmt.Sprintf("g%d:%s", gen, databaseTaskID(conn, head.ID, head.LastEditedTime, h.cfg.Now().Truncate(time.Minute).Unix())),
			load: DatabasePayload{ConnID: conn, DatabaseID: head.ID, LastEdited: head.LastEditedTime},
		}, true, nil
	case "data_source":
		// Search under Notion-Version 2025-09-03 lists data sources, not
		// databases. The data source's database is synced: its container
		// (title, the list of its data sources, so that one search misses
		// is still found) and then each of its data sources, each querying
		// only the rows edited since its own cursor. Every data source of
		// one database seen in a sweep maps to the same task.
		dbID := head.Parent.DatabaseID // checked by parseHead
		if dbID == "" {
			// A partial data source (PartialDataSourceObjectResponse: id
			// only) names no database: its own task reads it, and its
			// object names the database.
			return fanout{
				member: "ds:" + head.ID, typ: TypeDataSource,
				id:   fmt.Sprintf("g%d:%s", gen, dataSourceTaskID(conn, head.ID, head.LastEditedTime, h.cfg.Now().Truncate(time.Minute).Unix())),
				load: DataSourcePayload{ConnID: conn, DataSourceID: head.ID, LastEdited: head.LastEditedTime},
			}, true, nil
		}
		return fanout{
			member: "db:" + dbID, typ: TypeDatabase,
			id:   fmt.Sprintf("g%d:%s", gen, databaseTaskID(conn, dbID, time.Time{}, h.cfg.Now().Truncate(time.Minute).Unix())),
			load: DatabasePayload{ConnID: conn, DatabaseID: dbID, LastEdited: head.LastEditedTime},
		}, true, nil
	}
	return fanout{}, false, nil
}

// fanOut marks the objects pending (before any task exists, so a task
// that finishes at once cannot be forgotten), puts the pages on the
// connection's to-do list, takes the connection's drain flag for owner (the
// calling task's name) if no drain exists, and enqueues a task per database. It returns how many objects it
// handed out and whether it took the flag: then the caller must drain the
// list (inline, or with startDrain).
func (h *Handlers) fanOut(ctx context.Context, conn, owner string, tasks []fanout, queue string) (int, bool, error) {
	if len(tasks) == 0 {
		return 0, false, nil
	}
	members := make([]string, 0, len(tasks))
	var pages []todoItem
	for _, f := range tasks {
		members = append(members, f.member)
		if p, ok := f.load.(PagePayload); ok && f.typ == TypePage {
			pages = append(pages, todoItem{ID: p.PageID, LastEdited: msOrZero(p.LastEdited), DiscoveredAt: msOrZero(p.DiscoveredAt)})
		}
	}
	start, err := h.state.enqueueTodo(ctx, conn, owner, members, pages, h.cfg.Now())
	if err != nil {
		return 0, false, err
	}
	n := len(pages)
	for _, f := range tasks {
		if f.typ == TypePage {
			continue
		}
		ok, err := enqueue(ctx, h.cfg.Enqueuer, f.typ, f.load, f.id, queue)
		if err != nil {
			return n, start, err
		}
		if ok {
			n++
		}
	}
	return n, start, nil
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
