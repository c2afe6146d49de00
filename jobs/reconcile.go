package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/record"
)

// The reconciliation is a full pass over one connection, run on its own
// interval (a day by default) besides the incremental sweeps, because
// search is not a complete index: Notion documents that it "is not
// guaranteed to return everything", a page shared late keeps its old
// last_edited_time (below the cursor), and a page trashed or unshared is
// never named by a sweep. A pass:
//
//  1. retry: hands every object with a permanent per-object error
//     (objerror.go) to the drain again, whatever its version: the sweeps
//     do not retry them (the capped mark), the reconciliation does, once
//     per pass.
//  2. search: lists the whole search (no cursor floor, no sort), 100 per
//     request. Each object goes in the pass's seen set; one the sink lacks,
//     holds older, or holds as a tombstone is handed out (found late).
//  3. walk: from every page the sink holds current, through the child_page
//     and child_database blocks of its stored tree (no Notion request),
//     and through every row of every database (a query without filter):
//     objects search omitted are found there. A child not seen yet costs
//     one GET (it is not in search, so its version is unknown).
//  4. compare: what the sink holds live that the pass did not see is
//     queued for confirmation.
//  5. confirm: one direct GET per queued object. Only Notion's own answer
//     makes a tombstone: archived/in_trash (stored as deleted, reason
//     trashed), 404 (reason unshared), 403 (reason restricted). A live
//     answer hands the object out if the sink is behind. Anything else (a
//     5xx, garbage) leaves the object alone and counts it as unreachable;
//     the next pass asks again.
//
// It is resumable: the phase, the search or query cursor and the counts
// are a checkpoint in Redis, the seen set, the walk queue and the
// confirmation queue are Redis keys, so a killed worker's pass continues
// where it stopped (the pass's lock expires ClaimTTL after its worker's
// last renewal). It is budget-aware: every request goes through the
// connection's rate limiter, the task runs on the backfill queue (weight 1
// against sync's 3), it ends its slice after Config.DrainSlice and queues
// its continuation at the tail of that queue, and a rate limit ends the
// slice with the delay Notion asked for; what it finds goes on the same
// to-do list the drain works through.

// TypeReconcile runs (a slice of) one connection's reconciliation pass.
const TypeReconcile = "sync:reconcile"

// ReconcilePayload is the payload of TypeReconcile.
type ReconcilePayload struct {
	ConnID string `json:"conn_id"`
}

// ReconcileCounts are one pass's counts.
type ReconcileCounts struct {
	// FoundLate counts objects the pass found missing from the sink,
	// older there than in Notion, or stored as a tombstone while Notion
	// shows them: handed to the drain.
	FoundLate int64 `json:"found_late"`
	// ConfirmedGone counts tombstones written after a direct GET confirmed
	// the object trashed, unshared (404) or restricted (403).
	ConfirmedGone int64 `json:"confirmed_gone"`
	// Unreachable counts objects the sink holds that the pass could not
	// see and whose confirming GET failed transiently: left alone.
	Unreachable int64 `json:"unreachable"`
	// Retried counts objects with a permanent per-object error handed out
	// again.
	Retried int64 `json:"retried"`
	// Enumerated counts the objects the pass saw in search and the walk.
	Enumerated int64 `json:"enumerated"`
	// Requests counts the pass's own Notion requests (not the drain's).
	Requests int64 `json:"requests"`
}

// ReconcileStatus is a connection's reconciliation, in its SyncState.
type ReconcileStatus struct {
	// Running is set while a pass is in progress (started, not finished).
	Running bool `json:"running"`
	// LastStarted and LastFinished are when the latest pass started and
	// when the latest finished pass ended.
	LastStarted  time.Time `json:"last_started"`
	LastFinished time.Time `json:"last_finished"`
	// Last holds the counts of the latest finished pass.
	Last ReconcileCounts `json:"last"`
}

// Reconciliation phases, in order.
const (
	reconRetry   = "retry"
	reconSearch  = "search"
	reconWalk    = "walk"
	reconCompare = "compare"
	reconConfirm = "confirm"
	// reconWalkMore walks what the confirmations found live (pages search
	// omitted whose children search may omit too), after them.
	reconWalkMore = "walk-more"
	reconDone     = "done"
)

// reconCheckpoint is a pass in progress.
type reconCheckpoint struct {
	Pass  int64  `json:"pass"` // ms: when the pass started
	Phase string `json:"phase"`
	// Next is the start_cursor of the search (phase search) or of the
	// query of the database at the head of the walk queue (phase walk).
	Next string `json:"next,omitempty"`
	// ListRequests counts the requests of the current listing (the
	// search, or one database's query), for MaxObjectRequests.
	ListRequests int             `json:"list_requests,omitempty"`
	Counts       ReconcileCounts `json:"counts"`
	// Query is the split of the row query at the head of the walk queue
	// once Notion stopped it at its result limit (nil: not split).
	Query *queryCheckpoint `json:"query,omitempty"`
}

// reconTTL bounds how long a pass's keys outlive their last write: a pass
// abandoned (its connection removed) does not stay in Redis for ever.
const reconTTL = 7 * 24 * time.Hour

func (s *state) reconKey(conn string) string       { return s.cp(conn) + "recon:" + conn }
func (s *state) reconSeenKey(conn string) string   { return s.reconKey(conn) + ":seen" }
func (s *state) reconWalkKey(conn string) string   { return s.reconKey(conn) + ":walk" }
func (s *state) reconCheckKey(conn string) string  { return s.reconKey(conn) + ":check" }
func (s *state) reconLockKey(conn string) string   { return s.reconKey(conn) + ":lock" }
func (s *state) reconStatusKey(conn string) string { return s.key(conn) + ":recon" }

// EnqueueReconcile enqueues a reconciliation pass of connID for the period
// starting at slot (the scheduler's schedule.ReconcileSlot), on the backfill queue,
// de-duplicated per (connection, slot). A pass still in progress when the
// next one is due continues (its checkpoint) instead of starting over.
func (c *Client) EnqueueReconcile(ctx context.Context, connID string, slot time.Time) error {
	_, err := enqueue(ctx, c.enq, TypeReconcile, ReconcilePayload{ConnID: connID},
		fmt.Sprintf("reconcile:%s:%d", connID, slot.UnixMilli()), QueueBackfill, asynq.Retention(retention))
	return err
}

// ReconcileNow enqueues a reconciliation pass of connID now (the control
// plane's POST /api/v1/connections/{id}/reconcile). A pass in progress
// continues from its checkpoint: the new task joins it rather than
// starting another.
func (c *Client) ReconcileNow(ctx context.Context, connID string) error {
	return c.EnqueueReconcile(ctx, connID, time.Now())
}

func (h *Handlers) handleReconcile(ctx context.Context, t *asynq.Task) error {
	p, err := decode[ReconcilePayload](t)
	if err != nil {
		return err
	}
	return h.finish(ctx, t, p.ConnID, h.reconcile(ctx, h.taskLogger(ctx, t, p.ConnID), p.ConnID))
}

// errReconcileBusy: another task runs the connection's pass.
var errReconcileBusy = errors.New("another reconciliation task runs this connection's pass")

// reconcile runs one slice of conn's pass.
func (h *Handlers) reconcile(ctx context.Context, log *zap.Logger, conn string) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	lock := &claim{key: h.state.reconLockKey(conn), token: hex.EncodeToString(b[:])}
	ok, err := h.state.rdb.SetNX(ctx, lock.key, lock.token, h.cfg.ClaimTTL).Result()
	if err != nil {
		return fmt.Errorf("sync state of %s: %w", conn, err)
	}
	if !ok {
		log.Debug("reconciliation slice ends", zap.Error(errReconcileBusy))
		return nil
	}
	dropLease := h.keeper.hold(&lease{conn: conn, key: lock.key, token: lock.token})
	unlock := func() {
		dropLease()
		h.state.release(ctx, lock)
	}
	r := &reconRun{h: h, log: log, conn: conn, start: time.Now()}
	if err := r.load(ctx); err != nil {
		unlock()
		return err
	}
	more, err := r.run(ctx)
	if serr := r.save(context.WithoutCancel(ctx)); serr != nil {
		err = errors.Join(err, serr)
	}
	// The lock goes before the continuation exists: a continuation that
	// found it still held would take itself for a duplicate and end.
	unlock()
	if more && err == nil {
		_, err = enqueue(ctx, h.cfg.Enqueuer, TypeReconcile, ReconcilePayload{ConnID: conn},
			fmt.Sprintf("reconcile:%s:%d:%s", conn, r.ck.Pass, randomHex()), QueueBackfill, asynq.Retention(0))
	}
	return err
}

// reconRun is one slice of a pass.
type reconRun struct {
	h     *Handlers
	log   *zap.Logger
	conn  string
	start time.Time
	ck    reconCheckpoint
	done  bool // the pass finished: nothing to save
	// owner names this slice on the drain flag when it hands pages out.
	owner string
}

func (r *reconRun) load(ctx context.Context) error {
	s := r.h.state
	found, err := s.loadJSON(ctx, s.reconKey(r.conn), &r.ck)
	if err != nil {
		return err
	}
	if found && r.ck.Phase != "" {
		r.log.Debug("reconciliation resumes", zap.String("phase", r.ck.Phase), zap.Time("pass", time.UnixMilli(r.ck.Pass)))
	} else {
		now := r.h.cfg.Now()
		r.ck = reconCheckpoint{Pass: now.UnixMilli(), Phase: reconRetry}
		pipe := s.rdb.TxPipeline()
		pipe.Del(ctx, s.reconSeenKey(r.conn), s.reconWalkKey(r.conn), s.reconCheckKey(r.conn))
		pipe.HSet(ctx, s.reconStatusKey(r.conn), "running", 1, "last_started", now.UnixMilli())
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("sync state of %s: %w", r.conn, err)
		}
		if f := r.h.cfg.Hooks.OnReconcileStarted; f != nil {
			f(r.conn)
		}
	}
	r.owner = fmt.Sprintf("recon:%d:%s", r.ck.Pass, randomHex())
	return nil
}

func randomHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (r *reconRun) save(ctx context.Context) error {
	if r.done {
		return nil
	}
	s := r.h.state
	b, _ := json.Marshal(r.ck)
	pipe := s.rdb.Pipeline()
	pipe.Set(ctx, s.reconKey(r.conn), b, reconTTL)
	for _, k := range []string{s.reconSeenKey(r.conn), s.reconWalkKey(r.conn), s.reconCheckKey(r.conn)} {
		pipe.Expire(ctx, k, reconTTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("sync state of %s: %w", r.conn, err)
	}
	return nil
}

// run works through the phases until the pass ends or the slice is used
// up; more reports the latter: the caller queues the continuation at the
// tail of the backfill queue, so incremental work (the sync queue) and
// other connections' work go first.
func (r *reconRun) run(ctx context.Context) (more bool, err error) {
	for steps := 0; ; steps++ {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		// Each slice makes progress (at least one step), then yields.
		if steps > 0 && (r.h.isStopping() || time.Since(r.start) >= r.h.cfg.DrainSlice) {
			return true, nil
		}
		var err error
		switch r.ck.Phase {
		case reconRetry:
			err = r.retryPermanent(ctx)
		case reconSearch:
			err = r.searchStep(ctx)
		case reconWalk, reconWalkMore:
			err = r.walkStep(ctx)
		case reconCompare:
			err = r.compare(ctx)
		case reconConfirm:
			err = r.confirmStep(ctx)
		default:
			return false, r.finish(ctx)
		}
		if err != nil {
			return false, err
		}
	}
}

func (r *reconRun) finish(ctx context.Context) error {
	s, c := r.h.state, r.ck.Counts
	now := r.h.cfg.Now()
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, s.reconStatusKey(r.conn), "running", 0, "last_finished", now.UnixMilli(),
		"found_late", c.FoundLate, "confirmed_gone", c.ConfirmedGone, "unreachable", c.Unreachable,
		"retried", c.Retried, "enumerated", c.Enumerated, "requests", c.Requests)
	pipe.Del(ctx, s.reconKey(r.conn), s.reconSeenKey(r.conn), s.reconWalkKey(r.conn), s.reconCheckKey(r.conn))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("sync state of %s: %w", r.conn, err)
	}
	r.done = true
	r.log.Info("reconciliation pass finished", zap.Int64("found_late", c.FoundLate), zap.Int64("confirmed_gone", c.ConfirmedGone),
		zap.Int64("unreachable", c.Unreachable), zap.Int64("retried", c.Retried), zap.Int64("enumerated", c.Enumerated),
		zap.Int64("requests", c.Requests), zap.Duration("took", now.Sub(time.UnixMilli(r.ck.Pass))))
	// The pass confirmed deletions: the files only they referenced may
	// now be orphans. Before the hook, so that whoever waits for the pass
	// (a test, a metric) sees its collection done too.
	r.h.collectFiles(ctx, r.log, r.conn)
	if f := r.h.cfg.Hooks.OnReconcile; f != nil {
		f(r.conn, c)
	}
	return nil
}

// do sends one of the pass's own Notion requests.
func (r *reconRun) do(ctx context.Context, method, path string, body any) (json.RawMessage, error) {
	r.ck.Counts.Requests++
	return r.h.cfg.Notion.Do(ctx, r.conn, method, path, body)
}

// handOut puts objects on the connection's to-do list (pages) or in
// database tasks, and starts a drain on the backfill queue if none runs.
func (r *reconRun) handOut(ctx context.Context, tasks []fanout) error {
	if len(tasks) == 0 {
		return nil
	}
	_, took, err := r.h.fanOut(ctx, r.conn, r.owner, tasks, QueueBackfill)
	if took {
		if serr := r.h.startDrain(context.WithoutCancel(ctx), r.conn, r.owner, QueueBackfill, time.Time{}); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	return err
}

// pageTask is the fanout that syncs page id; edited is its version when
// known (zero: the task fetches it and decides).
func (r *reconRun) pageTask(id string, edited time.Time) fanout {
	now := r.h.cfg.Now()
	return fanout{member: "page:" + id, typ: TypePage,
		load: PagePayload{ConnID: r.conn, PageID: id, LastEdited: edited, DiscoveredAt: now}}
}

// databaseTask is the fanout that syncs database id (schema, and rows
// since its row cursor; the pass's walk queries every row itself).
func (r *reconRun) databaseTask(id string, edited time.Time) fanout {
	return fanout{member: "db:" + id, typ: TypeDatabase,
		id:   fmt.Sprintf("recon:%s:%s:%d", r.conn, id, r.h.cfg.Now().UnixMilli()),
		load: DatabasePayload{ConnID: r.conn, DatabaseID: id, LastEdited: edited}}
}

// dataSourceTask is the fanout that syncs data source id (schema, and rows
// since its row cursor; the pass's walk queries every row itself).
func (r *reconRun) dataSourceTask(id, database string, edited time.Time) fanout {
	return fanout{member: "ds:" + id, typ: TypeDataSource,
		id:   fmt.Sprintf("recon:%s:ds:%s:%d", r.conn, id, r.h.cfg.Now().UnixMilli()),
		load: DataSourcePayload{ConnID: r.conn, DataSourceID: id, DatabaseID: database, LastEdited: edited}}
}

// behind reports whether the sink lacks the object of kind at version
// edited: not stored, stored older, or stored as a tombstone (an object
// shared again keeps its old last_edited_time).
func (r *reconRun) behind(ctx context.Context, kind sink.Kind, id string, edited time.Time) (bool, error) {
	st, err := r.h.cfg.Sink.Stat(ctx, r.conn, kind, id)
	if errors.Is(err, sink.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("sink: %w", err)
	}
	if st.Deleted() || !st.HasContent() {
		return true, nil
	}
	if kind == sink.KindDatabase || kind == sink.KindDataSource {
		return st.LastEditedTime.Before(edited), nil
	}
	return !upToDate(st.LastEditedTime, st.SyncedAt, edited), nil
}

// retryPermanent hands every object with a permanent per-object error to
// the drain again (pages: their capped mark dropped, so the version that
// failed is asked again), once per pass. Error keys that are not Notion
// ids (skipped listing results, the search) are left alone.
func (r *reconRun) retryPermanent(ctx context.Context) error {
	s := r.h.state
	errs, err := s.rdb.HGetAll(ctx, s.errorsKey(r.conn)).Result()
	if err != nil {
		return fmt.Errorf("sync state of %s: %w", r.conn, err)
	}
	var tasks []fanout
	for key, v := range errs {
		_, d, ok := decodeError(v)
		if !ok || d.Kind != ErrorPermanent {
			continue
		}
		id, err := record.NormalizeID(key)
		if err != nil || id != key {
			continue
		}
		if _, err := r.h.cfg.Sink.Stat(ctx, r.conn, sink.KindDatabase, id); err == nil {
			tasks = append(tasks, r.databaseTask(id, time.Time{}))
			continue
		} else if !errors.Is(err, sink.ErrNotFound) {
			return fmt.Errorf("sink: %w", err)
		}
		if _, err := r.h.cfg.Sink.Stat(ctx, r.conn, sink.KindDataSource, id); err == nil {
			tasks = append(tasks, r.dataSourceTask(id, "", time.Time{}))
			continue
		} else if !errors.Is(err, sink.ErrNotFound) {
			return fmt.Errorf("sink: %w", err)
		}
		if err := s.rdb.Del(ctx, s.cappedKey(r.conn, id)).Err(); err != nil {
			return fmt.Errorf("sync state of %s: %w", r.conn, err)
		}
		tasks = append(tasks, r.pageTask(id, time.Time{}))
	}
	if err := r.handOut(ctx, tasks); err != nil {
		return err
	}
	r.ck.Counts.Retried += int64(len(tasks))
	r.ck.Phase = reconSearch
	return nil
}

// searchStep sends one search request of the pass's full listing.
func (r *reconRun) searchStep(ctx context.Context) error {
	body := map[string]any{"page_size": 100}
	if r.ck.Next != "" {
		body["start_cursor"] = r.ck.Next
	}
	raw, err := r.do(ctx, http.MethodPost, "/v1/search", body)
	r.ck.ListRequests++
	if r.ck.Next != "" && cursorRefused(err) {
		// An expired cursor: the listing starts over (the seen set keeps
		// what it found).
		r.log.Warn("Notion refused the reconciliation's search cursor; searching again from the start", zap.Error(err))
		r.ck.Next = ""
		return nil
	}
	if err != nil {
		return fmt.Errorf("reconciliation search: %w", err)
	}
	list, err := parseList(raw)
	if err != nil {
		return fmt.Errorf("reconciliation search: %w", err)
	}
	if err := r.enumerate(ctx, list.Results, nil); err != nil {
		return err
	}
	next := list.next()
	if next == "" || next == r.ck.Next || r.ck.ListRequests >= r.h.cfg.MaxObjectRequests {
		if next != "" {
			r.log.Warn("reconciliation search stopped early; the walk and the confirming GETs cover the rest", zap.Int("requests", r.ck.ListRequests))
		}
		r.ck.Phase, r.ck.Next, r.ck.ListRequests = reconWalk, "", 0
		return nil
	}
	r.ck.Next = next
	return nil
}

// enumerate records listed objects as seen, hands out those the sink is
// behind on and queues the walk of the others (pages with a current
// stored tree; every database, for its rows). Objects seen before are
// skipped. heads, when given, are the parsed results (else parsed here).
func (r *reconRun) enumerate(ctx context.Context, results []json.RawMessage, heads []objectHead) error {
	for _, raw := range results {
		head, err := parseHead(raw)
		if err != nil {
			continue // the sweep records bad results; the pass skips them
		}
		heads = append(heads, head)
	}
	if len(heads) == 0 {
		return nil
	}
	s := r.h.state
	ids := make([]string, len(heads))
	for i, hd := range heads {
		ids[i] = hd.ID
	}
	seen, err := s.rdb.SMIsMember(ctx, s.reconSeenKey(r.conn), toAny(ids)...).Result()
	if err != nil {
		return fmt.Errorf("sync state of %s: %w", r.conn, err)
	}
	var tasks []fanout
	var walk, newIDs, databases []string
	for i, hd := range heads {
		if seen[i] || hd.deleted() {
			continue
		}
		switch hd.Object {
		case "page":
			late, err := r.behind(ctx, sink.KindPage, hd.ID, hd.LastEditedTime)
			if err != nil {
				return err
			}
			if late {
				tasks = append(tasks, r.pageTask(hd.ID, hd.LastEditedTime))
			} else {
				walk = append(walk, "page:"+hd.ID)
			}
		case "database":
			late, err := r.behind(ctx, sink.KindDatabase, hd.ID, hd.LastEditedTime)
			if err != nil {
				return err
			}
			if late {
				tasks = append(tasks, r.databaseTask(hd.ID, hd.LastEditedTime))
			}
			walk = append(walk, "db:"+hd.ID)
		case "data_source":
			// Search under Notion-Version 2025-09-03 lists data sources.
			// Its rows are walked; its database is looked up (below), so
			// the database's other data sources, which search may omit,
			// are found through its list of data sources.
			late, err := r.behind(ctx, sink.KindDataSource, hd.ID, hd.LastEditedTime)
			if err != nil {
				return err
			}
			if late {
				tasks = append(tasks, r.dataSourceTask(hd.ID, hd.Parent.DatabaseID, hd.LastEditedTime))
			}
			walk = append(walk, "ds:"+hd.ID)
			if hd.Parent.DatabaseID != "" {
				databases = append(databases, normalizedOr(hd.Parent.DatabaseID))
			}
		default:
			continue
		}
		newIDs = append(newIDs, hd.ID)
	}
	if err := r.handOut(ctx, tasks); err != nil {
		return err
	}
	r.ck.Counts.FoundLate += int64(len(tasks))
	r.ck.Counts.Enumerated += int64(len(newIDs))
	pipe := s.rdb.Pipeline()
	if len(newIDs) > 0 {
		pipe.SAdd(ctx, s.reconSeenKey(r.conn), toAny(newIDs)...)
	}
	if len(walk) > 0 {
		pipe.RPush(ctx, s.reconWalkKey(r.conn), toAny(walk)...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("sync state of %s: %w", r.conn, err)
	}
	// After the data sources are marked seen: the database's lookup asks
	// only for those of its data sources that search omitted.
	for _, db := range databases {
		if err := r.lookUp(ctx, objectHead{Object: "database", ID: db}); err != nil {
			return err
		}
	}
	return nil
}

// walkStep expands the head of the walk queue: a page through its stored
// tree's child pages and child databases, a database through one page of
// its rows.
func (r *reconRun) walkStep(ctx context.Context) error {
	s := r.h.state
	item, err := s.rdb.LIndex(ctx, s.reconWalkKey(r.conn), 0).Result()
	if errors.Is(err, redis.Nil) {
		r.ck.Next, r.ck.ListRequests, r.ck.Query = "", 0, nil
		if r.ck.Phase == reconWalkMore {
			r.ck.Phase = reconDone
		} else {
			r.ck.Phase = reconCompare
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync state of %s: %w", r.conn, err)
	}
	kind, id, _ := strings.Cut(item, ":")
	more := false
	switch kind {
	case "page":
		err = r.walkPage(ctx, id)
	case "db":
		more, err = r.walkRows(ctx, "database", id, "/v1/databases/"+url.PathEscape(id)+"/query")
	case "ds":
		more, err = r.walkRows(ctx, "data source", id, "/v1/data_sources/"+url.PathEscape(id)+"/query")
	}
	if err != nil {
		return err
	}
	if more {
		return nil
	}
	r.ck.Next, r.ck.ListRequests, r.ck.Query = "", 0, nil
	return s.rdb.LPop(ctx, s.reconWalkKey(r.conn)).Err()
}

// walkPage looks for child pages and child databases in the page's stored
// tree (current: enumerate queued only pages the sink is not behind on).
// Children not seen yet are asked for directly.
func (r *reconRun) walkPage(ctx context.Context, id string) error {
	rd, ok := r.h.cfg.Sink.(sink.Reader)
	if !ok {
		return nil // a sink that cannot read back: the walk relies on search
	}
	p, _, err := rd.GetPage(ctx, r.conn, id)
	if errors.Is(err, sink.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	var children []objectHead
	var visit func([]sink.Block)
	visit = func(bs []sink.Block) {
		for _, b := range bs {
			switch b.Type {
			case "child_page":
				children = append(children, objectHead{Object: "page", ID: b.ID})
			case "child_database":
				children = append(children, objectHead{Object: "database", ID: b.ID})
			}
			visit(b.Children)
		}
	}
	visit(p.Blocks)
	for _, c := range children {
		if err := r.lookUp(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// lookUp asks Notion for an object the walk found and search did not, once
// per pass.
func (r *reconRun) lookUp(ctx context.Context, c objectHead) error {
	s := r.h.state
	seen, err := s.rdb.SIsMember(ctx, s.reconSeenKey(r.conn), c.ID).Result()
	if err != nil || seen {
		return err
	}
	kind := sink.KindPage
	switch c.Object {
	case "database":
		kind = sink.KindDatabase
	case "data_source":
		kind = sink.KindDataSource
	}
	if err := r.confirm(ctx, kind, c.ID); err != nil {
		return err
	}
	return s.rdb.SAdd(ctx, s.reconSeenKey(r.conn), c.ID).Err()
}

// walkRows lists one page of the rows of a data source (path
// /v1/data_sources/{id}/query) or of a database read with Notion-Version
// 2022-06-28 (/v1/databases/{id}/query), without filter: every row; more
// reports whether rows remain. A database that is a container of data
// sources (2025-09-03: its stored object lists them) is not queried: its
// data sources are looked up instead, each walked in turn.
//
// A listing Notion stops at its result limit (request_status incomplete)
// is split by last_edited_time as the sync's queries are
// (queryCheckpoint.splitQuery): without it the rows past the limit would
// count as not seen and each would cost a confirming GET. A segment that
// cannot be split (more rows than the limit in one minute) ends the
// listing; its remaining rows are confirmed one GET each, which never
// turns a live row into a tombstone.
func (r *reconRun) walkRows(ctx context.Context, what, id, path string) (more bool, err error) {
	if r.ck.Query == nil {
		if what == "database" {
			container, err := r.walkContainer(ctx, id)
			if err != nil || container {
				return false, err
			}
		}
		r.ck.Query = &queryCheckpoint{}
	}
	// Newest first, as the sync's queries: a listing stopped at the result
	// limit then splits at the oldest minute it reached.
	body := map[string]any{"page_size": 100,
		"sorts": []map[string]string{{"timestamp": "last_edited_time", "direction": "descending"}}}
	if f := r.ck.Query.queryFilter(); f != nil {
		body["filter"] = f
	}
	if r.ck.Next != "" {
		body["start_cursor"] = r.ck.Next
	}
	raw, err := r.do(ctx, http.MethodPost, path, body)
	r.ck.ListRequests++
	if r.ck.Next != "" && cursorRefused(err) {
		r.ck.Next = ""
		return true, nil
	}
	if permanentAnswer(err, false) {
		// A database this API version cannot query (several data
		// sources), or an object that is gone: its own task records
		// that, and the confirming GETs settle its rows; the pass goes on.
		r.log.Info("reconciliation cannot list the rows of a "+what, zap.String("object_id", id), zap.Error(err))
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reconciliation query of %s %s: %w", what, id, err)
	}
	list, err := parseList(raw)
	if err != nil {
		return false, fmt.Errorf("reconciliation query of %s %s: %w", what, id, err)
	}
	for _, raw := range list.Results {
		if hd, err := parseHead(raw); err == nil {
			r.ck.Query.seen(hd.LastEditedTime)
		}
	}
	if err := r.enumerate(ctx, list.Results, nil); err != nil {
		return false, err
	}
	if r.ck.ListRequests >= r.h.cfg.MaxObjectRequests {
		r.log.Warn("reconciliation stopped listing rows early; the confirming GETs cover the rest",
			zap.String("object_id", id), zap.Int("requests", r.ck.ListRequests))
		return false, nil
	}
	if !list.HasMore && list.incomplete() {
		return r.splitRows(what, id, list)
	}
	next := list.next()
	if next == "" || next == r.ck.Next {
		return false, nil
	}
	r.ck.Next = next
	return true, nil
}

// splitRows starts the next segment of a row listing Notion stopped at its
// result limit.
func (r *reconRun) splitRows(what, id string, list listResponse) (more bool, err error) {
	if err := r.ck.Query.splitQuery(what+" "+id, len(list.Results)); err != nil {
		r.log.Warn("reconciliation cannot split a row listing further; the confirming GETs cover the rest", zap.Error(err))
		return false, nil
	}
	r.log.Info("reconciliation's row listing stopped at Notion's result limit; listing the older rows",
		zap.String("object_id", id), zap.Int("segment", r.ck.Query.Segments+1))
	r.ck.Next = ""
	return true, nil
}

// walkContainer looks up the data sources of a database whose stored
// object is a container (Notion-Version 2025-09-03 and later); container
// is false for a database stored with 2022-06-28, or not stored.
func (r *reconRun) walkContainer(ctx context.Context, id string) (container bool, err error) {
	rd, ok := r.h.cfg.Sink.(sink.Reader)
	if !ok {
		return false, nil
	}
	d, _, err := rd.GetDatabase(ctx, r.conn, id)
	if errors.Is(err, sink.ErrNotFound) || err == nil && d.Object == nil {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sink: %w", err)
	}
	sources, container, err := dataSourcesOf(d.Object)
	if err != nil || !container {
		return false, nil
	}
	for _, ds := range sources {
		if err := r.lookUp(ctx, objectHead{Object: "data_source", ID: ds}); err != nil {
			return true, err
		}
	}
	return true, nil
}

// compare queues for confirmation every live object the sink holds that
// the pass did not see.
func (r *reconRun) compare(ctx context.Context) error {
	s := r.h.state
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		ids := make([]any, len(batch))
		for i, b := range batch {
			_, ids[i], _ = strings.Cut(b, ":")
		}
		seen, err := s.rdb.SMIsMember(ctx, s.reconSeenKey(r.conn), ids...).Result()
		if err != nil {
			return fmt.Errorf("sync state of %s: %w", r.conn, err)
		}
		var unseen []any
		for i, b := range batch {
			if !seen[i] {
				unseen = append(unseen, b)
			}
		}
		batch = batch[:0]
		if len(unseen) == 0 {
			return nil
		}
		return s.rdb.RPush(ctx, s.reconCheckKey(r.conn), unseen...).Err()
	}
	// A retry after a failure here starts the queue again.
	if err := s.rdb.Del(ctx, s.reconCheckKey(r.conn)).Err(); err != nil {
		return fmt.Errorf("sync state of %s: %w", r.conn, err)
	}
	for _, kind := range []sink.Kind{sink.KindPage, sink.KindDatabase, sink.KindDataSource} {
		err := r.h.cfg.Sink.List(ctx, r.conn, kind, func(id string, st sink.State) error {
			if st.Deleted() || !st.HasContent() {
				return nil
			}
			batch = append(batch, string(kind)+":"+id)
			if len(batch) >= 500 {
				return flush()
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("sink: %w", err)
		}
		if err := flush(); err != nil {
			return err
		}
	}
	r.ck.Phase = reconConfirm
	return nil
}

// confirmStep confirms the head of the confirmation queue.
func (r *reconRun) confirmStep(ctx context.Context) error {
	s := r.h.state
	item, err := s.rdb.LIndex(ctx, s.reconCheckKey(r.conn), 0).Result()
	if errors.Is(err, redis.Nil) {
		r.ck.Phase = reconWalkMore
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync state of %s: %w", r.conn, err)
	}
	kind, id, _ := strings.Cut(item, ":")
	if err := r.confirm(ctx, sink.Kind(kind), id); err != nil {
		return err
	}
	pipe := s.rdb.TxPipeline()
	pipe.SAdd(ctx, s.reconSeenKey(r.conn), id)
	pipe.LPop(ctx, s.reconCheckKey(r.conn))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("sync state of %s: %w", r.conn, err)
	}
	return nil
}

// confirm asks Notion for one object directly and acts on the answer: a
// live object the sink is behind on is handed out (found late); trashed,
// 404 and 403 become tombstones (confirmed gone); a transient failure
// leaves the sink alone (unreachable). Errors that concern the whole
// connection (rate limit, token, stop) are returned: the object stays at
// the head of its queue.
func (r *reconRun) confirm(ctx context.Context, kind sink.Kind, id string) error {
	path := "/v1/pages/" + url.PathEscape(id)
	switch kind {
	case sink.KindDatabase:
		path = "/v1/databases/" + url.PathEscape(id)
	case sink.KindDataSource:
		path = "/v1/data_sources/" + url.PathEscape(id)
	}
	at := r.h.cfg.Now()
	raw, err := r.do(ctx, http.MethodGet, path, nil)
	var reason sink.Reason
	switch {
	case err == nil:
	case connectionWide(ctx, err):
		return err
	case notionclient.IsNotFound(err):
		reason = sink.ReasonUnshared
	case permanentAnswer(err, false) && hasStatusCode(err, http.StatusForbidden):
		reason = sink.ReasonRestricted
	default:
		// A 5xx, garbage, a 400: not proof of anything.
		r.ck.Counts.Unreachable++
		r.log.Warn("reconciliation could not confirm an object; left as it is", zap.String("kind", string(kind)), zap.String("object_id", id), zap.Error(err))
		return nil
	}
	if reason != "" {
		return r.tombstone(ctx, kind, id, reason, at, nil)
	}
	head, err := parseHead(raw)
	if err != nil || head.ID != id && normalizedOr(head.ID) != id {
		r.ck.Counts.Unreachable++
		r.log.Warn("reconciliation got a malformed object; left as it is", zap.String("object_id", id), zap.Error(err))
		return nil
	}
	if head.deleted() {
		return r.tombstone(ctx, kind, id, sink.ReasonTrashed, at, raw)
	}
	late, err := r.behind(ctx, kind, id, head.LastEditedTime)
	if err != nil {
		return err
	}
	var t fanout
	switch kind {
	case sink.KindDatabase:
		sources, container, _ := dataSourcesOf(raw)
		if container {
			// A container (2025-09-03): its data sources are looked up,
			// each then walked for its rows.
			for _, ds := range sources {
				if err := r.lookUp(ctx, objectHead{Object: "data_source", ID: ds}); err != nil {
					return err
				}
			}
		} else if err := r.h.state.rdb.RPush(ctx, r.h.state.reconWalkKey(r.conn), "db:"+id).Err(); err != nil {
			// Its rows are walked too.
			return fmt.Errorf("sync state of %s: %w", r.conn, err)
		}
		t = r.databaseTask(id, head.LastEditedTime)
	case sink.KindDataSource:
		// Its rows are walked too.
		if err := r.h.state.rdb.RPush(ctx, r.h.state.reconWalkKey(r.conn), "ds:"+id).Err(); err != nil {
			return fmt.Errorf("sync state of %s: %w", r.conn, err)
		}
		t = r.dataSourceTask(id, head.Parent.DatabaseID, head.LastEditedTime)
	default:
		if !late {
			// Its stored tree is current: its children are walked.
			if err := r.h.state.rdb.RPush(ctx, r.h.state.reconWalkKey(r.conn), "page:"+id).Err(); err != nil {
				return fmt.Errorf("sync state of %s: %w", r.conn, err)
			}
		}
		t = r.pageTask(id, head.LastEditedTime)
	}
	r.ck.Counts.Enumerated++
	if !late {
		return nil
	}
	r.ck.Counts.FoundLate++
	return r.handOut(ctx, []fanout{t})
}

func normalizedOr(id string) string {
	if n, err := record.NormalizeID(id); err == nil {
		return n
	}
	return id
}

func hasStatusCode(err error, status int) bool {
	var ae *notionclient.APIError
	return errors.As(err, &ae) && ae.Status == status
}

// tombstone records what a direct GET confirmed: a trashed object (raw, its
// answer) is stored as Notion returned it, archived; a 404 or 403 marks
// the stored copy deleted with its reason.
func (r *reconRun) tombstone(ctx context.Context, kind sink.Kind, id string, reason sink.Reason, at time.Time, raw json.RawMessage) error {
	st, err := r.h.cfg.Sink.Stat(ctx, r.conn, kind, id)
	if errors.Is(err, sink.ErrNotFound) {
		return nil // never stored: nothing to mark
	}
	if err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	if st.Deleted() {
		return nil
	}
	switch {
	case raw != nil && kind == sink.KindPage:
		p, perr := record.PageFromObject(r.conn, raw, nil, at)
		if perr != nil {
			r.ck.Counts.Unreachable++
			return nil
		}
		_, err = r.h.cfg.Sink.PutPage(ctx, p)
	case raw != nil && kind == sink.KindDataSource:
		d, derr := record.DataSourceFromObject(r.conn, raw, at)
		if derr != nil {
			r.ck.Counts.Unreachable++
			return nil
		}
		_, err = r.h.cfg.Sink.PutDataSource(ctx, d)
	case raw != nil:
		d, derr := record.DatabaseFromObject(r.conn, raw, at)
		if derr != nil {
			r.ck.Counts.Unreachable++
			return nil
		}
		_, err = r.h.cfg.Sink.PutDatabase(ctx, d)
	default:
		err = r.h.cfg.Sink.Tombstone(ctx, r.conn, kind, id, reason, at)
	}
	if err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	r.ck.Counts.ConfirmedGone++
	r.log.Info("object confirmed gone; stored as a tombstone", zap.String("kind", string(kind)), zap.String("object_id", id), zap.String("reason", string(reason)))
	return nil
}

// loadJSON reads a JSON string key into v; found is false when the key is
// missing or unreadable (a pass then starts over).
func (s *state) loadJSON(ctx context.Context, key string, v any) (bool, error) {
	b, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sync state: %w", err)
	}
	return json.Unmarshal(b, v) == nil, nil
}

// reconcileStatus parses the status hash (nil: no pass ever started).
func reconcileStatus(m map[string]string) *ReconcileStatus {
	if len(m) == 0 {
		return nil
	}
	n := func(k string) int64 { v, _ := strconv.ParseInt(m[k], 10, 64); return v }
	return &ReconcileStatus{
		Running:      m["running"] == "1",
		LastStarted:  msTime(m["last_started"]),
		LastFinished: msTime(m["last_finished"]),
		Last: ReconcileCounts{FoundLate: n("found_late"), ConfirmedGone: n("confirmed_gone"), Unreachable: n("unreachable"),
			Retried: n("retried"), Enumerated: n("enumerated"), Requests: n("requests")},
	}
}
