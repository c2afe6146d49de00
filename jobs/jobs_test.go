package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/pgtest"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/tokens"
)

var smallSpec = notionfake.SeedSpec{Seed: 1, Pages: 12, NestedPages: 4, BlocksPerPage: 8, BlockDepth: 3,
	Databases: 2, RowsPerDatabase: 6, BlocksPerRow: 2, UnknownBlocks: true}

// countBlocks counts a stored tree's blocks.
func countBlocks(bs []sink.Block) int {
	n := len(bs)
	for _, b := range bs {
		n += countBlocks(b.Children)
	}
	return n
}

// assertComplete checks that the sink holds every page, row and database
// of the seeded workspace, with every block.
func (e *env) assertComplete() {
	e.t.Helper()
	rd := e.sink.(sink.Reader)
	ctx := context.Background()
	ids := append(append([]string{}, e.seed.PageIDs...), e.seed.RowIDs...)
	total := 0
	for _, id := range ids {
		p, st, err := rd.GetPage(ctx, e.conn, id)
		if err != nil {
			e.t.Fatalf("page %s: %v", id, err)
		}
		if st.Deleted() {
			e.t.Fatalf("page %s stored as deleted", id)
		}
		want, err := e.fake.PageBlockCount(e.ws, id)
		if err != nil {
			e.t.Fatal(err)
		}
		if got := countBlocks(p.Blocks); got != want {
			e.t.Fatalf("page %s: %d blocks stored, Notion has %d", id, got, want)
		}
		total += want
	}
	if total != e.seed.BlockCount {
		e.t.Fatalf("%d blocks in all, seeded %d", total, e.seed.BlockCount)
	}
	for _, id := range e.seed.DatabaseIDs {
		if _, _, err := rd.GetDatabase(ctx, e.conn, id); err != nil {
			e.t.Fatalf("database %s: %v", id, err)
		}
	}
}

func TestFullSyncLandsEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: smallSpec})
	e.startWorkers(4)
	e.sweep()
	st := e.waitSynced()
	e.assertComplete()
	if st.PagesSynced != int64(len(e.seed.PageIDs)+len(e.seed.RowIDs)) {
		t.Fatalf("pages synced = %d, want %d (each page once)", st.PagesSynced, len(e.seed.PageIDs)+len(e.seed.RowIDs))
	}
	if e.archived() != 0 {
		t.Fatalf("%d tasks archived", e.archived())
	}
}

// An unchanged workspace re-syncs in one search request.
func TestUnchangedResyncIsCheap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: smallSpec})
	e.clock.Advance(90 * time.Second) // sync after the content's last-edited minute ended
	e.startWorkers(4)
	e.sweep()
	e.waitSynced()
	e.waitIdle() // the cursor can move before the last task has returned
	e.clock.Advance(10 * time.Minute)
	before := e.fake.DataStats()
	if err := e.runTask(jobs.TypeSweep, `{"conn_id":"`+e.conn+`"}`); err != nil {
		t.Fatal(err)
	}
	// The sweep hands databases seen inside the overlap to tasks of their
	// own (their rows change without their last_edited_time moving), which
	// run on the workers: count once they are done, or the count races
	// them. (It did: 1 run in 15 counted one of their GETs.)
	e.waitIdle()
	after := e.fake.DataStats()
	delta := func(k notionfake.EndpointKind) int { return after.Count(k, 0) - before.Count(k, 0) }
	if n := delta(notionfake.EndpointSearch); n != 1 {
		t.Errorf("re-sync of an unchanged workspace made %d searches, want 1", n)
	}
	for _, k := range []notionfake.EndpointKind{notionfake.EndpointGetPage, notionfake.EndpointBlockChildren} {
		if n := delta(k); n != 0 {
			t.Errorf("re-sync of an unchanged workspace made %d %s requests, want 0", n, k)
		}
	}
	// A database task re-checks its database (one GET) and queries rows
	// only since its own cursor: at most one query per database.
	if g, q := delta(notionfake.EndpointGetDatabase), delta(notionfake.EndpointQueryDatabase); g > smallSpec.Databases || q > g {
		t.Errorf("re-sync made %d database GETs and %d queries for %d databases", g, q, smallSpec.Databases)
	}
}

// An edit made in the same minute as the previous sync (so its
// last_edited_time does not move) is picked up by the next sweep.
func TestSameMinuteEditIsPickedUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 2, Pages: 3, BlocksPerPage: 3}})
	e.startWorkers(2)
	e.sweep()
	e.waitSynced() // at 12:00:10, content last edited at 12:00
	page := e.seed.PageIDs[0]
	e.clock.Advance(30 * time.Second)
	if err := e.fake.TouchPage(e.ws, page, "edited at 12:00:40"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(5 * time.Minute)
	e.sweep()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, _, err := e.sink.(sink.Reader).GetPage(context.Background(), e.conn, page)
		if err == nil && strings.Contains(string(rawBlocks(p.Blocks)), "edited at 12:00:40") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the same-minute edit never reached the sink")
		}
		select {
		case <-e.advanced:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func rawBlocks(bs []sink.Block) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b.Raw...)
		out = append(out, rawBlocks(b.Children)...)
	}
	return out
}

// A storm of 429s pauses the connection's work and is absorbed: no task is
// lost, nothing is archived, and the sync completes.
func Test429StormIsAbsorbed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: smallSpec, maxWait: 10 * time.Millisecond})
	e.fake.RateLimitDataNext(6, time.Second, notionfake.RateLimitReasonConnection)
	e.startWorkers(4)
	e.sweep()
	e.waitSynced()
	e.assertComplete()
	if e.archived() != 0 {
		t.Fatalf("%d tasks archived", e.archived())
	}
	if n := count429(e.fake.DataStats()); n != 6 {
		t.Fatalf("fake answered %d 429s, want the 6 injected (the shared backoff must stop the rest)", n)
	}
}

// A token revoked mid-sync turns the connection needs_reauth; its queued
// tasks end without any further Notion call.
func TestRevokedMidSyncGoesQuiet(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 3, Pages: 30, BlocksPerPage: 4}})
	e.fake.SetDataLatency(5 * time.Millisecond)
	e.startWorkers(4)
	e.sweep()
	for range 5 {
		<-e.pageSynced
	}
	e.fake.Revoke(e.ws) // mid-sync: the next data call gets 401, the refresh invalid_grant
	deadline := time.Now().Add(30 * time.Second)
	for !e.queuesEmpty() {
		if time.Now().After(deadline) {
			t.Fatal("queues did not drain")
		}
		time.Sleep(20 * time.Millisecond) // polling an external queue, bounded
	}
	conn, err := e.store.Get(context.Background(), e.conn)
	if err != nil {
		t.Fatal(err)
	}
	if conn.Status != tokens.StatusNeedsReauth {
		t.Fatalf("status %s, want needs_reauth", conn.Status)
	}
	before := e.fake.RequestCount(e.ws)
	for range 3 {
		// Not retried: the task completes with its verdict
		// (TestStoppedConnectionTasksCompleteWithVerdict).
		if err := e.runTask(jobs.TypeSweep, `{"conn_id":"`+e.conn+`"}`); err != nil {
			t.Fatalf("sweep err = %v, want none (verdict needs_reauth)", err)
		}
		if err := e.runTask(jobs.TypePage, fmt.Sprintf(`{"conn_id":%q,"page_id":%q}`, e.conn, e.seed.PageIDs[0])); err != nil {
			t.Fatalf("page err = %v, want none (verdict needs_reauth)", err)
		}
	}
	if n := e.fake.RequestCount(e.ws) - before; n != 0 {
		t.Fatalf("%d Notion requests after needs_reauth, want 0", n)
	}
}

// A paused connection's tasks make no Notion call at all.
func TestPausedConnectionTasksDoNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 4, Pages: 2}})
	if err := e.store.Pause(context.Background(), e.conn); err != nil {
		t.Fatal(err)
	}
	if err := e.runTask(jobs.TypePage, fmt.Sprintf(`{"conn_id":%q,"page_id":%q}`, e.conn, e.seed.PageIDs[0])); err != nil {
		t.Fatalf("err = %v, want none (verdict paused)", err)
	}
	if n := e.fake.RequestCount(e.ws); n != 0 {
		t.Fatalf("%d requests for a paused connection", n)
	}
}

// A page task interrupted mid-walk (rate budget exhausted) resumes from its
// checkpoint: the retry fetches only what is left.
func TestPageWalkResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	spec := notionfake.SeedSpec{Seed: 5, Pages: 1, BlocksPerPage: 250, BlockDepth: 3}
	e := newEnv(t, envOpts{spec: spec, ratePerMinute: 1, burst: 6, maxWait: -1})
	page := e.seed.PageIDs[0]
	payload := fmt.Sprintf(`{"conn_id":%q,"page_id":%q}`, e.conn, page)
	err := e.runTask(jobs.TypePage, payload)
	if d, ok := notionclient.RetryAfter(err); !ok || d <= 0 {
		t.Fatalf("first run: err = %v, want a rate-limit stop", err)
	}
	first := e.fake.RequestCount(e.ws)
	if first != 6 {
		t.Fatalf("first run made %d requests, want the burst of 6", first)
	}
	// The budget comes back (a client with its own limiter keys).
	if err := e.rerun(e.sink, jobs.TypePage, payload); err != nil {
		t.Fatal(err)
	}
	total := e.fake.RequestCount(e.ws)
	// A from-scratch walk (into an empty sink, no checkpoint) costs `full`
	// requests; the resumed one full-5: the five block lists already
	// fetched are not fetched again, only the page object is.
	fresh, err := sink.Open(context.Background(), "file://"+t.TempDir(), sink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := e.rerun(fresh, jobs.TypePage, payload); err != nil {
		t.Fatal(err)
	}
	full := e.fake.RequestCount(e.ws) - total
	if total-first != full-5 {
		t.Fatalf("resumed run made %d requests; a full walk is %d: want %d", total-first, full, full-5)
	}
	p, _, err := e.sink.(sink.Reader).GetPage(context.Background(), e.conn, page)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := e.fake.PageBlockCount(e.ws, page); countBlocks(p.Blocks) != want {
		t.Fatalf("%d blocks stored, want %d", countBlocks(p.Blocks), want)
	}
}

// Configured for Notion-Version 2022-06-28, a database that version cannot
// query is reported per database; the rest of the connection syncs.
func TestMultiSourceDatabaseIsReportedNotFatal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 6, Pages: 3, BlocksPerPage: 2}, notionVersion: "2022-06-28"})
	bad, err := e.fake.AddMultiSourceDatabase(e.ws, notionfake.WorkspaceParent(), "Projects (2 sources)")
	if err != nil {
		t.Fatal(err)
	}
	e.startWorkers(2)
	e.sweep()
	st := e.waitSynced()
	e.assertComplete()
	if msg := st.Errors[bad]; !strings.Contains(msg, "multiple data sources") {
		t.Fatalf("errors = %v, want one for %s", st.Errors, bad)
	}
}

// Issue 11 item 1: with Notion-Version 2025-09-03 (the default) a
// database is a container of data sources. A database with two data
// sources syncs completely: the container (its data source list kept),
// each data source's schema, every row of each with its data source, a row
// cursor per data source. (Before: a per-object error, and the second
// source's rows were never read.)
func TestMultiSourceDatabaseSyncsCompletely(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"file", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			o := envOpts{spec: notionfake.SeedSpec{Seed: 6, Pages: 3, BlocksPerPage: 2, Databases: 2, RowsPerDatabase: 4,
				BlocksPerRow: 1, MultiSourceDatabases: 1}}
			if backend == "postgres" {
				o.sinkURL = pgtest.StartTB(t, pgtest.Options{}).NewDatabase(t)
			}
			e := newEnv(t, o)
			e.startWorkers(2)
			e.sweep()
			st := e.waitSynced()
			e.waitIdle()
			e.assertComplete()
			if len(st.Errors) != 0 {
				t.Fatalf("errors: %v", st.Errors)
			}
			ctx := context.Background()
			rd := e.sink.(sink.Reader)
			multi := e.seed.DatabaseIDs[0]
			if n := len(e.seed.DataSourceIDs[multi]); n != 2 {
				t.Fatalf("seed: %d data sources in the first database, want 2", n)
			}
			db, _, err := rd.GetDatabase(ctx, e.conn, multi)
			if err != nil {
				t.Fatal(err)
			}
			var container struct {
				DataSources []struct{ ID string } `json:"data_sources"`
			}
			if err := json.Unmarshal(db.Object, &container); err != nil || len(container.DataSources) != 2 {
				t.Fatalf("stored database keeps %d data sources (%v), want 2", len(container.DataSources), err)
			}
			sources := 0
			for _, dbID := range e.seed.DatabaseIDs {
				for _, dsID := range e.seed.DataSourceIDs[dbID] {
					sources++
					ds, dst, err := rd.GetDataSource(ctx, e.conn, dsID)
					if err != nil {
						t.Fatalf("data source %s: %v", dsID, err)
					}
					var schema struct {
						Properties map[string]json.RawMessage `json:"properties"`
					}
					if ds.DatabaseID != dbID || dst.Deleted() || json.Unmarshal(ds.Object, &schema) != nil || len(schema.Properties) == 0 {
						t.Fatalf("data source %s: database %s, state %+v, %d properties", dsID, ds.DatabaseID, dst, len(schema.Properties))
					}
					rows := e.seed.RowsByDataSource[dsID]
					if len(rows) != 4 {
						t.Fatalf("seed: data source %s has %d rows", dsID, len(rows))
					}
					var newest time.Time
					for _, id := range rows {
						p, _, err := rd.GetPage(ctx, e.conn, id)
						if err != nil {
							t.Fatal(err)
						}
						if p.DataSourceID != dsID || p.DatabaseID != dbID {
							t.Fatalf("row %s: data source %q database %q, want %q %q", id, p.DataSourceID, p.DatabaseID, dsID, dbID)
						}
						newest = later(newest, e.edited(id))
					}
					cur, err := jobs.DBCursorForTest(ctx, e.rdb, e.conn, dsID)
					if err != nil || !cur.Equal(newest) {
						t.Fatalf("row cursor of data source %s: %v (%v), want %v", dsID, cur, err, newest)
					}
				}
			}
			if sources != 3 {
				t.Fatalf("%d data sources checked, want 3", sources)
			}
			stats := e.fake.DataStats()
			t.Logf("requests: search %d, database GET %d, data source GET %d, data source query %d, page GET %d, block children %d",
				stats.Count(notionfake.EndpointSearch, 0), stats.Count(notionfake.EndpointGetDatabase, 0),
				stats.Count(notionfake.EndpointGetDataSource, 0), stats.Count(notionfake.EndpointQueryDataSource, 0),
				stats.Count(notionfake.EndpointGetPage, 0), stats.Count(notionfake.EndpointBlockChildren, 0))
			if n := stats.Count(notionfake.EndpointQueryDatabase, 0); n != 0 {
				t.Errorf("%d requests to the 2022-06-28 database query", n)
			}
			if n := stats.Count(notionfake.EndpointQueryDataSource, 200); n < 3 {
				t.Errorf("%d data source queries, want one per data source at least", n)
			}
		})
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// A data_source.* webhook event syncs the one data source it names: its
// schema and the rows edited since its cursor, without a search.
func TestSyncEntityTargetsOneDataSource(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 14, Pages: 2, BlocksPerPage: 1, Databases: 1, RowsPerDatabase: 3,
		BlocksPerRow: 1, MultiSourceDatabases: 1}})
	e.startWorkers(2)
	e.sweep()
	e.waitSynced()
	e.waitIdle()
	second := e.seed.DataSourceIDs[e.seed.DatabaseIDs[0]][1]
	e.clock.Advance(2 * time.Minute)
	row, err := e.fake.AddRowToDataSource(e.ws, second, "Added by hand")
	if err != nil {
		t.Fatal(err)
	}
	before := e.fake.DataStats()
	if err := jobs.NewClient(e.client).SyncEntity(context.Background(), e.conn, "data_source", second); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for {
		p, _, err := e.sink.(sink.Reader).GetPage(context.Background(), e.conn, row)
		if err == nil {
			if p.DataSourceID != second {
				t.Fatalf("row stored with data source %q, want %q", p.DataSourceID, second)
			}
			break
		}
		select {
		case <-e.pageSynced:
		case <-deadline:
			t.Fatal("the new row was not synced")
		}
	}
	after := e.fake.DataStats()
	if n := after.Count(notionfake.EndpointSearch, 200) - before.Count(notionfake.EndpointSearch, 200); n != 0 {
		t.Fatalf("%d searches: a webhook event must not cost a sweep", n)
	}
	if n := after.Count(notionfake.EndpointGetDataSource, 200) - before.Count(notionfake.EndpointGetDataSource, 200); n != 1 {
		t.Fatalf("%d data source fetches, want 1", n)
	}
}

// Archived pages are stored as deleted, unshared ones as unshared.
func TestArchivedAndUnsharedPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 7, Pages: 3, BlocksPerPage: 2}})
	e.startWorkers(2)
	e.sweep()
	e.waitSynced()
	archived, unshared := e.seed.PageIDs[1], e.seed.PageIDs[2]
	e.clock.Advance(2 * time.Minute)
	if err := e.fake.ArchivePage(e.ws, archived); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.UnsharePage(e.ws, unshared); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{archived, unshared} {
		if err := e.runTask(jobs.TypePage, fmt.Sprintf(`{"conn_id":%q,"page_id":%q}`, e.conn, id)); err != nil {
			t.Fatal(err)
		}
	}
	rd := e.sink.(sink.Reader)
	if _, st, err := rd.GetPage(context.Background(), e.conn, archived); err != nil || !st.Deleted() {
		t.Fatalf("archived page: %+v %v", st, err)
	}
	if _, st, err := rd.GetPage(context.Background(), e.conn, unshared); err != nil || !st.Unshared() {
		t.Fatalf("unshared page: %+v %v", st, err)
	}
}

// A malformed task payload is rejected without retries.
func TestMalformedPayload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 8, Pages: 1}})
	if err := e.runTask(jobs.TypePage, `{"conn_id":`); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("err = %v", err)
	}
}

func count429(st notionfake.DataStats) int {
	n := 0
	for _, byStatus := range st.Requests {
		n += byStatus[429]
	}
	return n
}

// A connection with a big backlog and an exhausted rate budget does not
// starve another connection: its pages are one drain, which holds at most
// one worker slot and gives it up when the wait for budget is long, so the
// small connection syncs while the big one is still throttled.
func TestBackloggedConnectionDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	// 60 requests/min with a burst of 4: the big workspace needs minutes.
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 9, Pages: 40, BlocksPerPage: 2},
		ratePerMinute: 60, burst: 4, maxWait: 20 * time.Millisecond})
	e.clock.Advance(2 * time.Minute)
	small, _ := e.addConnection("ws-small", notionfake.SeedSpec{Seed: 10, Pages: 1, BlocksPerPage: 1})
	e.startWorkers(2) // fewer slots than the big backlog has tasks
	e.sweep()         // the big one first: its tasks fill the queue
	deadline := time.Now().Add(30 * time.Second)
	for e.fake.RequestCount(e.ws) < 4 { // its burst is spent
		if time.Now().After(deadline) {
			t.Fatal("the big connection made no requests")
		}
		time.Sleep(10 * time.Millisecond) // polling the fake's counter, bounded
	}
	e.sweepFor(small)
	e.syncTimeout = 30 * time.Second
	e.waitSyncedFor(small)
	big, err := e.h.State(context.Background(), e.conn)
	if err != nil {
		t.Fatal(err)
	}
	if big.Pending == 0 {
		t.Fatal("the big connection finished first: the test did not exercise starvation")
	}
}

func TestFullSyncIntoPostgres(t *testing.T) {
	t.Parallel()
	pg := pgtest.StartTB(t, pgtest.Options{})
	e := newEnv(t, envOpts{spec: smallSpec, sinkURL: pg.NewDatabase(t)})
	e.startWorkers(4)
	e.sweep()
	e.waitSynced()
	e.assertComplete()
}

// A sweep stopped halfway (the connection was paused between two pages of
// search results) neither moves the cursor past results it never handed out
// nor leaves the cursor stuck: after resuming, the next sweep completes it.
func TestSweepStoppedHalfwayNeitherSkipsNorSticks(t *testing.T) {
	t.Parallel()
	// No user listing: the first request must be the search.
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 11, Pages: 250, History: time.Hour}, usersInterval: -1})
	e.clock.Advance(2 * time.Minute)
	e.fake.SetDataLatency(150 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- e.runTask(jobs.TypeSweep, `{"conn_id":"`+e.conn+`"}`) }()
	deadline := time.Now().Add(20 * time.Second)
	for e.fake.RequestCount(e.ws) < 1 { // the first search page is on its way
		if time.Now().After(deadline) {
			t.Fatal("no search request")
		}
		time.Sleep(5 * time.Millisecond) // polling the fake's counter, bounded
	}
	if err := e.store.Pause(context.Background(), e.conn); err != nil {
		t.Fatal(err)
	}
	// Stopped by the pause, the sweep completes with its verdict (no
	// error); that it stopped halfway shows in what is pending below.
	if err := <-done; err != nil {
		t.Fatalf("sweep err = %v, want none (verdict paused)", err)
	}
	st, err := e.h.State(context.Background(), e.conn)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Cursor.IsZero() || !st.Target.IsZero() {
		t.Fatalf("a half sweep moved the cursor or its target: %+v", st)
	}
	// The pages handed out before the stop are pending; the sweep itself is not.
	if st.Pending != 100 {
		t.Fatalf("pending = %d, want the 100 pages of the first result page", st.Pending)
	}
	e.fake.SetDataLatency(0)
	if err := e.store.Resume(context.Background(), e.conn); err != nil {
		t.Fatal(err)
	}
	e.startWorkers(4)
	e.sweep()
	e.waitSynced()
	e.assertComplete()
}

// A Notion webhook event syncs the one page it names, at once.
func TestSyncEntityTargetsOnePage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 12, Pages: 5, BlocksPerPage: 2}})
	e.startWorkers(2)
	page := e.seed.PageIDs[3]
	if err := jobs.NewClient(e.client).SyncEntity(context.Background(), e.conn, "page", page); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.pageSynced:
	case <-time.After(30 * time.Second):
		t.Fatal("the page was not synced")
	}
	if _, _, err := e.sink.(sink.Reader).GetPage(context.Background(), e.conn, page); err != nil {
		t.Fatal(err)
	}
	st := e.fake.DataStats()
	if n := st.Count(notionfake.EndpointSearch, 200); n != 0 {
		t.Fatalf("%d searches: a webhook event must not cost a sweep", n)
	}
	if n := st.Count(notionfake.EndpointGetPage, 200); n != 1 {
		t.Fatalf("%d page fetches, want 1", n)
	}
}

// Invariant 11: task payloads (and task results and errors) carry ids,
// never tokens.
func TestTaskPayloadsCarryNoTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: smallSpec})
	pair, _ := e.fake.CurrentPair(e.ws)
	e.startWorkers(4)
	e.sweep()
	e.waitSynced()
	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	seen := 0
	for _, q := range []string{jobs.QueueSync, jobs.QueueBackfill, jobs.QueueTokens} {
		tasks, err := insp.ListCompletedTasks(q, asynq.PageSize(1000))
		if err != nil {
			continue // queue never used
		}
		for _, ti := range tasks {
			seen++
			blob := string(ti.Payload) + string(ti.Result) + ti.LastErr
			if strings.Contains(blob, pair.AccessToken) || strings.Contains(blob, pair.RefreshToken) {
				t.Fatalf("task %s carries a token", ti.ID)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no completed task inspected")
	}
	// Nor does anything else in Redis (pages wait for their drain in a
	// hash, drains are not retained): the token record is sealed, so no key
	// holds a token in the clear.
	ctx := context.Background()
	keys, err := e.keysMatching(ctx, "*")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		v, err := e.rdb.Dump(ctx, k).Result()
		if errors.Is(err, redis.Nil) {
			continue // gone meanwhile (a released claim)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(v, pair.AccessToken) || strings.Contains(v, pair.RefreshToken) {
			t.Fatalf("Redis key %s holds a token in the clear", k)
		}
	}
	if len(keys) < 5 {
		t.Fatalf("only %d Redis keys inspected", len(keys))
	}
}

// serveWith runs an asynq server over handlers h until the returned stop
// is called (or the test ends).
func (e *env) serveWith(h *jobs.Handlers) (stop func()) {
	e.t.Helper()
	srv := asynq.NewServerFromRedisClient(e.rdb, h.ServerConfig(asynq.Config{
		Concurrency: 2, TaskCheckInterval: 5 * time.Millisecond, DelayedTaskCheckInterval: 50 * time.Millisecond,
		Logger: jobs.AsynqLogger{L: zap.NewNop()}, LogLevel: asynq.FatalLevel,
	}))
	mux := asynq.NewServeMux()
	h.Register(mux)
	if err := srv.Start(mux); err != nil {
		e.t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(srv.Shutdown) }
	e.t.Cleanup(stop)
	return stop
}

// handlersFor returns handlers like the env's over a client stack that
// speaks Notion-Version version ("": the default).
func (e *env) handlersFor(version string, tr http.RoundTripper) *jobs.Handlers {
	e.t.Helper()
	nc, err := notionclient.New(e.rdb, e.src, notionclient.Config{BaseURL: e.hs, RatePerMinute: 1_000_000, Burst: 100_000, Transport: tr,
		NotionVersion: version, KeyPrefix: fmt.Sprintf("v%s%d:", version, time.Now().UnixNano()),
		RetryBaseDelay: time.Millisecond, RetryMaxDelay: 10 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.CloseIdleConnections)
	h, err := jobs.New(jobs.Config{Tokens: e.src, Notion: nc, Sink: e.sink, Redis: e.rdb, Enqueuer: e.client, Now: e.clock.Now,
		CheckpointEvery: 2, Logger: zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel)),
		Hooks: jobs.Hooks{OnCursorAdvanced: func(conn string, _ time.Time) {
			select {
			case e.advanced <- conn:
			default:
			}
		}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// Upgrading from Notion-Version 2022-06-28 to 2025-09-03 on the same sync
// state and PostgreSQL sink: the sole data source of each database starts
// from the database's row cursor (no row is fetched again), and the rows
// stored under 2022-06-28 get their data source.
func TestUpgradeFrom20220628KeepsRowsAndCursors(t *testing.T) {
	t.Parallel()
	pg := pgtest.StartTB(t, pgtest.Options{})
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 9, Pages: 2, BlocksPerPage: 1, Databases: 2, RowsPerDatabase: 5, BlocksPerRow: 1},
		sinkURL: pg.NewDatabase(t)})
	stop := e.serveWith(e.handlersFor("2022-06-28", nil))
	e.sweep()
	e.waitSynced()
	e.waitIdle()
	stop()
	ctx := context.Background()
	rd := e.sink.(sink.Reader)
	for _, id := range e.seed.RowIDs {
		if p, _, err := rd.GetPage(ctx, e.conn, id); err != nil || p.DataSourceID != "" {
			t.Fatalf("row %s under 2022-06-28: %v, data source %q", id, err, p.DataSourceID)
		}
	}
	before := e.fake.DataStats()

	queries := &splitQueries{base: http.DefaultTransport.(*http.Transport).Clone()}
	e.serveWith(e.handlersFor("", queries))
	for _, db := range e.seed.DatabaseIDs {
		if err := jobs.NewClient(e.client).SyncEntity(ctx, e.conn, "database", db); err != nil {
			t.Fatal(err)
		}
	}
	for _, db := range e.seed.DatabaseIDs {
		ds := e.source(db)
		deadline := time.After(30 * time.Second)
		for {
			cur, err := jobs.DBCursorForTest(ctx, e.rdb, e.conn, ds)
			if err != nil {
				t.Fatal(err)
			}
			if !cur.IsZero() {
				break
			}
			select {
			case <-e.advanced:
			case <-time.After(50 * time.Millisecond):
			case <-deadline:
				t.Fatalf("data source %s never queried", ds)
			}
		}
	}
	e.waitIdle()
	// Each data source's first query is incremental: it starts from the
	// database's cursor, not from the oldest row.
	bodies := queries.take()
	if len(bodies) != len(e.seed.DatabaseIDs) {
		t.Fatalf("%d queries after the upgrade, want one per data source: %q", len(bodies), bodies)
	}
	for _, b := range bodies {
		if !strings.Contains(b, "on_or_after") {
			t.Errorf("query after the upgrade reads every row: %s", b)
		}
	}
	after := e.fake.DataStats()
	if n := after.Count(notionfake.EndpointGetPage, 0) - before.Count(notionfake.EndpointGetPage, 0); n != 0 {
		t.Errorf("%d rows fetched again after the upgrade, want 0", n)
	}
	if n := after.Count(notionfake.EndpointGetDataSource, 200) - before.Count(notionfake.EndpointGetDataSource, 200); n != len(e.seed.DatabaseIDs) {
		t.Errorf("%d data source fetches, want %d", n, len(e.seed.DatabaseIDs))
	}
	for _, db := range e.seed.DatabaseIDs {
		ds := e.source(db)
		if _, _, err := rd.GetDataSource(ctx, e.conn, ds); err != nil {
			t.Fatalf("data source %s: %v", ds, err)
		}
		for _, id := range e.seed.RowsByDatabase[db] {
			p, st, err := rd.GetPage(ctx, e.conn, id)
			if err != nil || p.DataSourceID != ds || st.Deleted() {
				t.Fatalf("row %s after the upgrade: %v, data source %q (want %q), state %+v", id, err, p.DataSourceID, ds, st)
			}
		}
	}
}

// A search result that is a data source syncs its database (container,
// then every data source); a partial one (id only, as the SDK's
// PartialDataSourceObjectResponse allows) syncs the data source itself; a
// data source whose database id is not a Notion id is malformed.
func TestSearchResultDataSourcePlans(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 2, Pages: 1}})
	ctx := context.Background()
	const ds, db = "da7a5000-0000-4000-8000-000000000001", "0d0d0d0d-0000-4000-8000-000000000002"
	typ, load, err := jobs.PlanForTest(ctx, e.h, e.conn, json.RawMessage(`{"object":"data_source","id":"`+ds+`",
		"last_edited_time":"2026-11-22T12:00:00.000Z","parent":{"type":"database_id","database_id":"`+db+`"}}`))
	if p, ok := load.(jobs.DatabasePayload); err != nil || typ != jobs.TypeDatabase || !ok || p.DatabaseID != db {
		t.Errorf("full data source: %s %+v %v, want its database's task", typ, load, err)
	}
	typ, load, err = jobs.PlanForTest(ctx, e.h, e.conn, json.RawMessage(`{"object":"data_source","id":"`+ds+`"}`))
	if p, ok := load.(jobs.DataSourcePayload); err != nil || typ != jobs.TypeDataSource || !ok || p.DataSourceID != ds {
		t.Errorf("partial data source: %s %+v %v, want its own task", typ, load, err)
	}
	if _, _, err := jobs.PlanForTest(ctx, e.h, e.conn, json.RawMessage(`{"object":"data_source","id":"`+ds+`",
		"parent":{"type":"database_id","database_id":"../x"}}`)); !errors.Is(err, jobs.ErrMalformed) {
		t.Errorf("data source with a bad database id: %v, want ErrMalformed", err)
	}
}
