package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/sync/sink/record"
)

// ErrMultipleDataSources is recorded for a database that Notion-Version
// 2022-06-28 cannot query because it has more than one data source. The
// rest of the connection keeps syncing.
var ErrMultipleDataSources = errors.New("database has multiple data sources, which Notion-Version 2022-06-28 cannot query")

func (h *Handlers) handleDatabase(ctx context.Context, t *asynq.Task) error {
	p, err := decode[DatabasePayload](t)
	if err != nil {
		return err
	}
	return h.finish(ctx, t, p.ConnID, h.syncDatabase(ctx, t, p))
}

// queryCheckpoint is a database query in progress.
type queryCheckpoint struct {
	Floor  int64  `json:"floor"` // ms; 0: all rows
	Next   string `json:"next"`
	Target int64  `json:"target"`
	// Requests counts the query's requests across resumes, for the
	// listing's cap (MaxObjectRequests).
	Requests int `json:"requests,omitempty"`
	// Ceiling (ms; 0: none) bounds the query from above once Notion
	// stopped an earlier query at its result limit: the query is split
	// into segments, each listing the rows edited at or before the oldest
	// minute the previous segment reached (see splitQuery).
	Ceiling int64 `json:"ceiling,omitempty"`
	// SegNewest and SegOldest (ms, minute-rounded; 0: no row yet) are the
	// newest and oldest last_edited_time of the current segment's rows.
	SegNewest int64 `json:"seg_newest,omitempty"`
	SegOldest int64 `json:"seg_oldest,omitempty"`
	// Segments counts the segments started after the first.
	Segments int `json:"segments,omitempty"`
}

// ErrQueryResultLimit is matched (errors.Is) by every *QueryLimitError.
var ErrQueryResultLimit = errors.New("database query exceeds Notion's result limit")

// QueryLimitError is recorded for a database whose query cannot be split
// below Notion's result limit: more rows share one minute of
// last_edited_time (Notion's timestamps are rounded to the minute, the
// finest range a filter can name) than one query returns. The rows of
// that minute past the limit, and the older rows, are not synced; the
// database's row cursor does not move.
type QueryLimitError struct {
	// Database names what was queried: "database ID" (Notion-Version
	// 2022-06-28) or "data source ID".
	Database string
	// Minute is the last_edited_time every row of the truncated segment
	// shares.
	Minute time.Time
	// Limit is how many rows the truncated segment returned.
	Limit int
}

func (e *QueryLimitError) Error() string {
	return fmt.Sprintf("%s: query stopped at Notion's result limit (request_status incomplete, query_result_limit_reached) after %d rows all last edited in the minute %s; a last_edited_time filter cannot split a minute, so that minute's remaining rows and every older row are not synced",
		e.Database, e.Limit, e.Minute.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrQueryResultLimit) true.
func (e *QueryLimitError) Is(target error) bool { return target == ErrQueryResultLimit }

// queryFilter is the query's last_edited_time filter: the incremental
// floor and, once the query is split, the segment's ceiling. Both bounds
// are inclusive: a minute the previous segment reached only in part is
// listed again whole (its rows already handed out are handed out again at
// most, which the page tasks absorb).
func (ck queryCheckpoint) queryFilter() map[string]any {
	var parts []map[string]any
	if ck.Floor > 0 {
		parts = append(parts, map[string]any{"timestamp": "last_edited_time",
			"last_edited_time": map[string]string{"on_or_after": time.UnixMilli(ck.Floor).UTC().Format(time.RFC3339)}})
	}
	if ck.Ceiling > 0 {
		parts = append(parts, map[string]any{"timestamp": "last_edited_time",
			"last_edited_time": map[string]string{"on_or_before": time.UnixMilli(ck.Ceiling).UTC().Format(time.RFC3339)}})
	}
	switch len(parts) {
	case 0:
		return nil
	case 1:
		return parts[0]
	}
	return map[string]any{"and": parts}
}

// seen notes a row of the current segment.
func (ck *queryCheckpoint) seen(edited time.Time) {
	m := edited.Truncate(time.Minute).UnixMilli()
	if ck.SegNewest == 0 || m > ck.SegNewest {
		ck.SegNewest = m
	}
	if ck.SegOldest == 0 || m < ck.SegOldest {
		ck.SegOldest = m
	}
}

// splitQuery starts the next segment of a query whose last page said
// request_status incomplete. Results are sorted newest first, so the rows
// not listed are edited at or before the oldest minute listed. A segment
// whose rows all share one minute cannot be split further (the next
// segment would list the same rows): it answers a *QueryLimitError
// instead of looping.
func (ck *queryCheckpoint) splitQuery(label string, rows int) error {
	if ck.SegOldest == 0 || ck.SegOldest == ck.SegNewest {
		return &QueryLimitError{Database: label, Minute: time.UnixMilli(ck.SegNewest), Limit: rows}
	}
	ck.Ceiling = ck.SegOldest
	ck.SegNewest, ck.SegOldest, ck.Next = 0, 0, ""
	ck.Segments++
	return nil
}

// syncDatabase stores the database object. Under Notion-Version
// 2025-09-03 and later the object is a container listing its data sources
// ("data_sources"): each becomes a data source task (syncDataSource), held
// pending by this task until they are handed out. Under 2022-06-28 the
// database holds its schema and this task hands out a page task for every
// row edited since the database's own cursor (minus the overlap), as
// queryRows does for a data source.
func (h *Handlers) syncDatabase(ctx context.Context, t *asynq.Task, p DatabasePayload) error {
	log := h.taskLogger(ctx, t, p.ConnID).With(zap.String("database_id", p.DatabaseID))
	conn, member := p.ConnID, "db:"+p.DatabaseID
	taskID, _ := asynq.GetTaskID(ctx)
	// The task is leased for ClaimTTL, renewed while it runs: if its worker
	// dies, the reaper runs it again (its pending entry holds the cursor
	// until then). One round trip to record the lease, one to drop it.
	dbLease := leaseMember(leaseDB, conn, taskID, p.DatabaseID)
	if err := h.state.addLease(ctx, conn, dbLease); err != nil {
		return fmt.Errorf("sync state of %s: %w", conn, err)
	}
	defer h.keeper.hold(&lease{conn: conn, member: dbLease})()
	defer func() {
		if err := h.state.dropLease(context.WithoutCancel(ctx), conn, dbLease); err != nil {
			log.Warn("could not drop the database task's lease", zap.Error(err))
		}
	}()
	syncedAt := h.cfg.Now()
	raw, err := h.cfg.Notion.Do(ctx, conn, http.MethodGet, "/v1/databases/"+url.PathEscape(p.DatabaseID), nil)
	if notionclient.IsNotFound(err) {
		if err := h.cfg.Sink.MarkUnshared(ctx, conn, p.DatabaseID, syncedAt); err != nil {
			return fmt.Errorf("sink: %w", err)
		}
		log.Info("database not shared with the integration any more; recorded as unshared")
		return h.markDone(ctx, conn, member, 0)
	}
	if permanentAnswer(err, false) {
		// 403, 400: the same answer at every retry. The database is done
		// with its error and the connection's cursor moves on; a sweep
		// that sees it again (inside the overlap, or after an edit) tries
		// again.
		h.objectError(ctx, conn, p.DatabaseID, ErrorPermanent, &PermanentError{Object: "database " + p.DatabaseID, Err: err})
		return h.markDone(ctx, conn, member, 0)
	}
	if err != nil {
		return fmt.Errorf("database %s: %w", p.DatabaseID, err)
	}
	db, err := record.DatabaseFromObject(conn, raw, syncedAt)
	if err != nil {
		return fmt.Errorf("database %s: %w", p.DatabaseID, err)
	}
	sources, container, err := dataSourcesOf(raw)
	if err != nil {
		return fmt.Errorf("database %s: %w", p.DatabaseID, err)
	}
	if _, err := h.cfg.Sink.PutDatabase(ctx, db); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	if db.Archived {
		return h.markDone(ctx, conn, member, 0)
	}
	gen, err := h.state.gen(ctx, conn)
	if err != nil {
		return err
	}
	if container {
		return h.fanOutDataSources(ctx, conn, taskID, gen, p, sources, member)
	}
	return h.queryRows(ctx, log, conn, gen, taskID, rowSource{
		kind: "db", id: p.DatabaseID, label: "database " + p.DatabaseID, member: member,
		path: "/v1/databases/" + url.PathEscape(p.DatabaseID) + "/query",
	})
}

// dataSourcesOf reads the data_sources member of a database object:
// container is false when the object has none (Notion-Version 2022-06-28,
// where the database holds its schema and is queried itself).
func dataSourcesOf(raw json.RawMessage) (sources []string, container bool, err error) {
	var o struct {
		DataSources *[]struct {
			ID string `json:"id"`
		} `json:"data_sources"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, false, fmt.Errorf("%w: database object: %w", ErrMalformed, err)
	}
	if o.DataSources == nil {
		return nil, false, nil
	}
	for _, ds := range *o.DataSources {
		if err := validNotionID(ds.ID); err != nil {
			return nil, true, fmt.Errorf("data source of the database: %w", err)
		}
		sources = append(sources, ds.ID)
	}
	return sources, true, nil
}

// fanOutDataSources hands out a data source task per data source of the
// database (pending before they exist, so the connection's cursor cannot
// pass their rows), then releases the database's own entry.
func (h *Handlers) fanOutDataSources(ctx context.Context, conn, taskID string, gen int64, p DatabasePayload, sources []string, member string) error {
	if len(sources) == 0 {
		return h.markDone(ctx, conn, member, 0)
	}
	tasks := make([]fanout, 0, len(sources))
	for _, id := range sources {
		tasks = append(tasks, fanout{
			member: "ds:" + id, typ: TypeDataSource,
			// Named after this database task, not after the minute: two
			// database tasks of one database in the same minute (the
			// sweep's and a page walk's child_database) each mark the
			// data source pending, and an id shared with a data source
			// task already completed would be refused as a duplicate,
			// leaving the data source pending for ever and the
			// connection's cursor frozen.
			id: fmt.Sprintf("%s:ds:%s", taskID, id),
			load: DataSourcePayload{ConnID: conn, DataSourceID: id, DatabaseID: p.DatabaseID,
				LastEdited: p.LastEdited, SoleSource: len(sources) == 1},
		})
	}
	// A database none of whose rows were ever read (no cursor of its own
	// from 2022-06-28, none for its first data source) is a backfill.
	queue := QueueBackfill
	for _, id := range []string{p.DatabaseID, sources[0]} {
		cur, err := h.state.dbCursor(ctx, conn, id)
		if err != nil {
			return err
		}
		if !cur.IsZero() {
			queue = QueueSync
		}
	}
	if _, _, err := h.fanOut(ctx, conn, "db:"+taskID, tasks, queue); err != nil {
		return fmt.Errorf("database %s: %w", p.DatabaseID, err)
	}
	return h.markDone(ctx, conn, member, 0)
}

func (h *Handlers) handleDataSource(ctx context.Context, t *asynq.Task) error {
	p, err := decode[DataSourcePayload](t)
	if err != nil {
		return err
	}
	return h.finish(ctx, t, p.ConnID, h.syncDataSource(ctx, t, p))
}

// syncDataSource stores a data source's schema (GET /v1/data_sources/{id})
// and hands out a page task for every row edited since the data source's
// own cursor minus the overlap (POST /v1/data_sources/{id}/query). A data
// source never read before, the sole one of its database, starts from the
// database's cursor, kept by a sync with Notion-Version 2022-06-28: the
// rows read then are not listed again.
func (h *Handlers) syncDataSource(ctx context.Context, t *asynq.Task, p DataSourcePayload) error {
	log := h.taskLogger(ctx, t, p.ConnID).With(zap.String("data_source_id", p.DataSourceID))
	conn, member := p.ConnID, "ds:"+p.DataSourceID
	taskID, _ := asynq.GetTaskID(ctx)
	dsLease := leaseMember(leaseDS, conn, taskID, p.DataSourceID, p.DatabaseID)
	if err := h.state.addLease(ctx, conn, dsLease); err != nil {
		return fmt.Errorf("sync state of %s: %w", conn, err)
	}
	defer h.keeper.hold(&lease{conn: conn, member: dsLease})()
	defer func() {
		if err := h.state.dropLease(context.WithoutCancel(ctx), conn, dsLease); err != nil {
			log.Warn("could not drop the data source task's lease", zap.Error(err))
		}
	}()
	syncedAt := h.cfg.Now()
	raw, err := h.cfg.Notion.Do(ctx, conn, http.MethodGet, "/v1/data_sources/"+url.PathEscape(p.DataSourceID), nil)
	if notionclient.IsNotFound(err) {
		if err := h.cfg.Sink.MarkUnshared(ctx, conn, p.DataSourceID, syncedAt); err != nil {
			return fmt.Errorf("sink: %w", err)
		}
		log.Info("data source not shared with the integration any more; recorded as unshared")
		return h.markDone(ctx, conn, member, 0)
	}
	if permanentAnswer(err, false) {
		h.objectError(ctx, conn, p.DataSourceID, ErrorPermanent, &PermanentError{Object: "data source " + p.DataSourceID, Err: err})
		return h.markDone(ctx, conn, member, 0)
	}
	if err != nil {
		return fmt.Errorf("data source %s: %w", p.DataSourceID, err)
	}
	ds, err := record.DataSourceFromObject(conn, raw, syncedAt)
	if err != nil {
		return fmt.Errorf("data source %s: %w", p.DataSourceID, err)
	}
	if ds.DatabaseID == "" {
		// A webhook names the data source alone; its object names the
		// database.
		ds.DatabaseID = p.DatabaseID
	}
	ds.SoleSource = p.SoleSource
	if _, err := h.cfg.Sink.PutDataSource(ctx, ds); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	if ds.Archived {
		return h.markDone(ctx, conn, member, 0)
	}
	gen, err := h.state.gen(ctx, conn)
	if err != nil {
		return err
	}
	src := rowSource{
		kind: "ds", id: p.DataSourceID, label: "data source " + p.DataSourceID, member: member,
		path: "/v1/data_sources/" + url.PathEscape(p.DataSourceID) + "/query",
	}
	if p.SoleSource {
		src.legacyCursor = ds.DatabaseID
	}
	return h.queryRows(ctx, log, conn, gen, taskID, src)
}

// rowSource is what queryRows lists: a data source, or a database read
// with Notion-Version 2022-06-28.
type rowSource struct {
	kind   string // checkpoint kind: "ds" or "db"
	id     string // its id; also the key of its row cursor
	label  string // "data source ID", "database ID": for errors
	member string // its pending-set member
	path   string // the query endpoint
	// legacyCursor, when set, is the database whose row cursor a data
	// source never read before starts from.
	legacyCursor string
}

// queryRows hands out a page task for every row of src edited since its
// own cursor (minus the overlap). A query Notion stops at its result limit
// is split by last_edited_time (queryCheckpoint.splitQuery) until every
// row is read; the cursor moves only after the last segment.
func (h *Handlers) queryRows(ctx context.Context, log *zap.Logger, conn string, gen int64, taskID string, src rowSource) error {
	member := src.member
	restarted := false
	var ck queryCheckpoint
	ok, err := h.state.loadCheckpoint(ctx, conn, src.kind, src.id, &ck)
	if err != nil {
		return err
	}
	if !ok {
		cur, err := h.state.dbCursor(ctx, conn, src.id)
		if err != nil {
			return err
		}
		if cur.IsZero() && src.legacyCursor != "" {
			if cur, err = h.state.dbCursor(ctx, conn, src.legacyCursor); err != nil {
				return err
			}
		}
		if !cur.IsZero() {
			ck.Floor = cur.Add(-h.cfg.Overlap).UnixMilli()
		}
	}
	cursors := map[string]bool{}
	// segRows counts the rows of the current segment this run listed (for
	// the error of a segment that cannot be split; a resumed run counts
	// from its resume).
	segRows := 0
	var badRows []string // per-object error keys of skipped rows
	rowsKey := src.label + " row"
	for n := 1; ; n++ {
		body := map[string]any{
			"page_size": 100,
			"sorts":     []map[string]string{{"timestamp": "last_edited_time", "direction": "descending"}},
		}
		if f := ck.queryFilter(); f != nil {
			body["filter"] = f
		}
		if ck.Next != "" {
			body["start_cursor"] = ck.Next
		}
		raw, err := h.cfg.Notion.Do(ctx, conn, http.MethodPost, src.path, body)
		ck.Requests++
		if ck.Next != "" && !restarted && cursorRefused(err) {
			// Rows handed out so far stay pending; querying again from the
			// newest row hands out at most duplicates.
			log.Warn("Notion refused the stored query cursor; querying again from the newest row", zap.Error(err))
			ck.Next, restarted = "", true
			ck.SegNewest, ck.SegOldest, segRows = 0, 0, 0
			clear(cursors) // a new listing
			continue
		}
		if ck.Next != "" && restarted && cursorRefused(err) {
			// Refused again after starting over: the task fails and asynq
			// retries it with backoff (a cursor refused by chance loses
			// nothing); this run does not loop.
			err = fmt.Errorf("%s query: %w: %w", src.label, ErrCursorExpiring, err)
			h.objectError(ctx, conn, src.id, ErrorTransient, err)
			return err
		}
		if src.kind == "db" && multipleDataSources(err) {
			h.objectError(ctx, conn, src.id, ErrorPermanent, fmt.Errorf("%s: %w (%v)", src.label, ErrMultipleDataSources, err))
			_ = h.state.dropCheckpoint(ctx, conn, src.kind, src.id)
			return h.markDone(ctx, conn, member, 0)
		}
		if permanentAnswer(err, ck.Next != "") {
			// The rows handed out so far sync; the database's own cursor
			// stays, so its rows are queried again the next time a sweep
			// sees the database.
			h.objectError(ctx, conn, src.id, ErrorPermanent, &PermanentError{Object: src.label + " query", Err: err})
			_ = h.state.dropCheckpoint(ctx, conn, src.kind, src.id)
			return h.markDone(ctx, conn, member, 0)
		}
		var list listResponse
		if err == nil {
			list, err = parseList(raw)
		}
		var tasks []fanout
		if err == nil {
			for _, r := range list.Results {
				head, herr := parseHead(r)
				if herr != nil {
					// Skipped and shown; the other rows go on.
					if k := h.resultError(ctx, conn, rowsKey, r, herr, len(badRows), log); k != "" {
						badRows = append(badRows, k)
					}
					continue
				}
				ck.Target = max(ck.Target, head.LastEditedTime.UnixMilli())
				ck.seen(head.LastEditedTime)
				segRows++
				f, ok, perr := h.plan(ctx, conn, gen, head)
				if perr != nil {
					err = perr
					break
				}
				if ok {
					tasks = append(tasks, f)
				}
			}
		}
		if err == nil {
			// The database's own pending entry is still held, so the
			// connection's cursor cannot pass these rows before they land.
			queue := QueueSync
			if ck.Floor == 0 {
				queue = QueueBackfill
			}
			var took bool
			if _, took, err = h.fanOut(ctx, conn, "db:"+taskID, tasks, queue); err == nil && took {
				err = h.startDrain(ctx, conn, "db:"+taskID, queue, time.Time{})
			}
		}
		if err != nil {
			if serr := h.state.saveCheckpoint(context.WithoutCancel(ctx), conn, src.kind, src.id, ck); serr != nil {
				log.Warn("could not save checkpoint", zap.Error(serr))
			}
			return fmt.Errorf("%s query: %w", src.label, err)
		}
		if !list.HasMore && list.incomplete() {
			// Notion stopped the query at its result limit. The rows
			// handed out so far sync; the row cursor (ck.Target) moves
			// only when the last segment is read, so no unread row is
			// passed.
			serr := ck.splitQuery(src.label, segRows)
			if serr == nil && ck.Requests >= h.cfg.MaxObjectRequests {
				serr = fmt.Errorf("query stopped early, rows after it not synced: %w",
					&CapError{Object: src.label, Cap: CapRequests, Limit: int64(h.cfg.MaxObjectRequests)})
			}
			if serr != nil {
				h.objectError(ctx, conn, src.id, ErrorPermanent, serr)
				_ = h.state.dropCheckpoint(ctx, conn, src.kind, src.id)
				return h.markDone(ctx, conn, member, 0)
			}
			log.Info("query stopped at Notion's result limit; querying the older rows",
				zap.Int("segment", ck.Segments+1), zap.Time("edited_on_or_before", time.UnixMilli(ck.Ceiling).UTC()))
			segRows = 0
			clear(cursors) // a new listing
			if err := h.state.saveCheckpoint(context.WithoutCancel(ctx), conn, src.kind, src.id, ck); err != nil {
				log.Warn("could not save checkpoint", zap.Error(err))
			}
			continue
		}
		if !list.HasMore {
			break
		}
		next := list.next()
		var capErr *CapError
		switch {
		case next == ck.Next || cursors[next]:
			capErr = &CapError{Object: src.label, Cap: CapRepeatedCursor, Listing: "its query"}
		case ck.Requests >= h.cfg.MaxObjectRequests:
			capErr = &CapError{Object: src.label, Cap: CapRequests, Limit: int64(h.cfg.MaxObjectRequests)}
		}
		if capErr != nil {
			// The rows handed out sync; the database's own cursor stays,
			// so the rows it never reached are queried again the next time
			// a sweep sees the database.
			h.objectError(ctx, conn, src.id, ErrorPermanent, fmt.Errorf("query stopped early, rows after it not synced: %w", capErr))
			_ = h.state.dropCheckpoint(ctx, conn, src.kind, src.id)
			return h.markDone(ctx, conn, member, 0)
		}
		cursors[next] = true
		ck.Next = next
		if n%h.cfg.CheckpointEvery == 0 {
			if err := h.state.saveCheckpoint(context.WithoutCancel(ctx), conn, src.kind, src.id, ck); err != nil {
				log.Warn("could not save checkpoint", zap.Error(err))
			}
		}
	}
	if ck.Target > 0 {
		if err := h.state.setDBCursor(ctx, conn, src.id, time.UnixMilli(ck.Target)); err != nil {
			return err
		}
	}
	if err := h.state.dropCheckpoint(ctx, conn, src.kind, src.id); err != nil {
		return err
	}
	// The query ran to its end: the database's error and the errors of
	// rows this query did not see again are dropped.
	if err := h.state.pruneErrors(ctx, conn, src.id, rowsKey+":", badRows); err != nil {
		return err
	}
	return h.markDone(ctx, conn, member, 0)
}

// multipleDataSources recognises Notion's answer for a database that the
// 2022-06-28 API cannot query.
func multipleDataSources(err error) bool {
	var ae *notionclient.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		return false
	}
	m := strings.ToLower(ae.Message)
	return strings.Contains(m, "multiple data sources") || strings.Contains(m, "data source")
}
