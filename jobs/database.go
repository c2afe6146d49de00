package jobs

import (
	"context"
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
}

// syncDatabase stores the database's schema and hands out a page task for
// every row edited since the database's own cursor (minus the overlap).
func (h *Handlers) syncDatabase(ctx context.Context, t *asynq.Task, p DatabasePayload) error {
	log := h.taskLogger(ctx, t, p.ConnID).With(zap.String("database_id", p.DatabaseID))
	conn, member := p.ConnID, "db:"+p.DatabaseID
	taskID, _ := asynq.GetTaskID(ctx)
	// The task is leased for ClaimTTL, renewed while it runs: if its worker
	// dies, the reaper runs it again (its pending entry holds the cursor
	// until then). One round trip to record the lease, one to drop it.
	dbLease := leaseMember(leaseDB, conn, taskID, p.DatabaseID)
	if err := h.state.addLease(ctx, dbLease); err != nil {
		return fmt.Errorf("sync state of %s: %w", conn, err)
	}
	defer h.keeper.hold(&lease{member: dbLease})()
	defer func() {
		if err := h.state.dropLease(context.WithoutCancel(ctx), dbLease); err != nil {
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
	restarted := false
	var ck queryCheckpoint
	ok, err := h.state.loadCheckpoint(ctx, conn, "db", p.DatabaseID, &ck)
	if err != nil {
		return err
	}
	if !ok {
		cur, err := h.state.dbCursor(ctx, conn, p.DatabaseID)
		if err != nil {
			return err
		}
		if !cur.IsZero() {
			ck.Floor = cur.Add(-h.cfg.Overlap).UnixMilli()
		}
	}
	cursors := map[string]bool{}
	var badRows []string // per-object error keys of skipped rows
	rowsKey := "database " + p.DatabaseID + " row"
	for n := 1; ; n++ {
		body := map[string]any{
			"page_size": 100,
			"sorts":     []map[string]string{{"timestamp": "last_edited_time", "direction": "descending"}},
		}
		if ck.Floor > 0 {
			body["filter"] = map[string]any{"timestamp": "last_edited_time",
				"last_edited_time": map[string]string{"on_or_after": time.UnixMilli(ck.Floor).UTC().Format(time.RFC3339)}}
		}
		if ck.Next != "" {
			body["start_cursor"] = ck.Next
		}
		raw, err := h.cfg.Notion.Do(ctx, conn, http.MethodPost, "/v1/databases/"+url.PathEscape(p.DatabaseID)+"/query", body)
		ck.Requests++
		if ck.Next != "" && !restarted && cursorRefused(err) {
			// Rows handed out so far stay pending; querying again from the
			// newest row hands out at most duplicates.
			log.Warn("Notion refused the stored query cursor; querying again from the newest row", zap.Error(err))
			ck.Next, restarted = "", true
			clear(cursors) // a new listing
			continue
		}
		if multipleDataSources(err) {
			h.objectError(ctx, conn, p.DatabaseID, ErrorPermanent, fmt.Errorf("database %s: %w (%v)", p.DatabaseID, ErrMultipleDataSources, err))
			_ = h.state.dropCheckpoint(ctx, conn, "db", p.DatabaseID)
			return h.markDone(ctx, conn, member, 0)
		}
		if permanentAnswer(err, ck.Next != "") {
			// The rows handed out so far sync; the database's own cursor
			// stays, so its rows are queried again the next time a sweep
			// sees the database.
			h.objectError(ctx, conn, p.DatabaseID, ErrorPermanent, &PermanentError{Object: "database " + p.DatabaseID + " query", Err: err})
			_ = h.state.dropCheckpoint(ctx, conn, "db", p.DatabaseID)
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
			if serr := h.state.saveCheckpoint(context.WithoutCancel(ctx), conn, "db", p.DatabaseID, ck); serr != nil {
				log.Warn("could not save checkpoint", zap.Error(serr))
			}
			return fmt.Errorf("database %s query: %w", p.DatabaseID, err)
		}
		if !list.HasMore {
			break
		}
		next := list.next()
		var capErr *CapError
		switch {
		case next == ck.Next || cursors[next]:
			capErr = &CapError{Object: "database " + p.DatabaseID, Cap: CapRepeatedCursor, Listing: "its query"}
		case ck.Requests >= h.cfg.MaxObjectRequests:
			capErr = &CapError{Object: "database " + p.DatabaseID, Cap: CapRequests, Limit: int64(h.cfg.MaxObjectRequests)}
		}
		if capErr != nil {
			// The rows handed out sync; the database's own cursor stays,
			// so the rows it never reached are queried again the next time
			// a sweep sees the database.
			h.objectError(ctx, conn, p.DatabaseID, ErrorPermanent, fmt.Errorf("query stopped early, rows after it not synced: %w", capErr))
			_ = h.state.dropCheckpoint(ctx, conn, "db", p.DatabaseID)
			return h.markDone(ctx, conn, member, 0)
		}
		cursors[next] = true
		ck.Next = next
		if n%h.cfg.CheckpointEvery == 0 {
			if err := h.state.saveCheckpoint(context.WithoutCancel(ctx), conn, "db", p.DatabaseID, ck); err != nil {
				log.Warn("could not save checkpoint", zap.Error(err))
			}
		}
	}
	if ck.Target > 0 {
		if err := h.state.setDBCursor(ctx, conn, p.DatabaseID, time.UnixMilli(ck.Target)); err != nil {
			return err
		}
	}
	if err := h.state.dropCheckpoint(ctx, conn, "db", p.DatabaseID); err != nil {
		return err
	}
	// The query ran to its end: the database's error and the errors of
	// rows this query did not see again are dropped.
	if err := h.state.pruneErrors(ctx, conn, p.DatabaseID, rowsKey+":", badRows); err != nil {
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
