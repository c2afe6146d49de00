package jobs_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/sync/sink"
)

// These tests run the handlers against a hostile Notion (notionfake's
// hostile poison kinds): each hostile object must end as a per-object error
// or note of its connection, bounded in requests, while the connection's
// other objects sync and its cursor moves.

// served returns how many answers the poison of id (any target) gave.
func (e *env) served(id string) int {
	for _, p := range e.fake.PoisonedObjects() {
		if p.ID == id {
			return p.Served
		}
	}
	e.t.Fatalf("%s is not poisoned", id)
	return 0
}

// source returns the first data source of seeded database db.
func (e *env) source(db string) string {
	e.t.Helper()
	ids := e.seed.DataSourceIDs[db]
	if len(ids) == 0 {
		e.t.Fatalf("database %s has no data source", db)
	}
	return ids[0]
}

func (e *env) poison(id string, target notionfake.PoisonTarget, kind notionfake.PoisonKind) {
	e.t.Helper()
	if _, err := e.fake.Poison(e.ws, id, target, kind); err != nil {
		e.t.Fatal(err)
	}
}

// assertStored checks that page id is stored, live, with Notion's block
// count plus extra.
func (e *env) assertStored(id string, extra int) {
	e.t.Helper()
	p, st, err := e.sink.(sink.Reader).GetPage(context.Background(), e.conn, id)
	if err != nil {
		e.t.Fatalf("page %s: %v", id, err)
	}
	want, err := e.fake.PageBlockCount(e.ws, id)
	if err != nil {
		e.t.Fatal(err)
	}
	if got := countBlocks(p.Blocks); st.Deleted() || got != want+extra {
		e.t.Fatalf("page %s: %d blocks stored (deleted %v), want %d", id, got, st.Deleted(), want+extra)
	}
}

func assertError(t *testing.T, st jobs.SyncState, id string, words ...string) {
	t.Helper()
	msg, ok := st.Errors[id]
	if !ok {
		t.Fatalf("no per-object error for %s; errors: %v", id, st.Errors)
	}
	for _, w := range words {
		if !strings.Contains(msg, w) {
			t.Fatalf("error for %s = %q, want it to name %q", id, msg, w)
		}
	}
}

// A block that lists itself or an ancestor among its children is fetched
// once: the repeat is skipped and noted, the page is stored, the cursor
// moves. (Before: the walk queued the cycle for ever, and fan-out grew it.)
func TestBlockCyclesAreSkippedAndNoted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 11, Pages: 6, BlocksPerPage: 10, BlockDepth: 2}})
	self, anc := e.seed.PageIDs[0], e.seed.PageIDs[1]
	e.poison(self, notionfake.PoisonChildren, notionfake.PoisonCycleSelf)
	e.poison(anc, notionfake.PoisonChildren, notionfake.PoisonCycleAncestor)
	// A block with children (content depends on the workspace id): it
	// lists its page among its children.
	var nested, parent, healthy string
	for _, id := range e.seed.PageIDs[2:] {
		if err := e.fake.ViewPage(e.ws, id, func(p *notionfake.Page) {
			for _, b := range p.Blocks {
				if len(b.Children) > 0 && parent == "" && b.Type != "table" {
					nested, parent = id, b.ID
				}
			}
		}); err != nil {
			t.Fatal(err)
		}
		if id != nested {
			healthy = id
		}
	}
	if parent == "" || healthy == "" {
		t.Fatalf("seeded content has no block with children outside the first pages, or no other page")
	}
	e.poison(parent, notionfake.PoisonChildren, notionfake.PoisonCycleAncestor)

	e.startWorkers(2)
	e.sweep()
	st := e.waitSynced()
	e.assertStored(self, 0)
	e.assertStored(anc, 1) // the made-up block that points back is a block of the page
	e.assertStored(nested, 0)
	e.assertStored(healthy, 0)
	for _, id := range []string{self, anc, nested} {
		assertError(t, st, id, "stored with notes", "listed more than once")
	}
	if _, ok := st.Errors[healthy]; ok {
		t.Fatalf("healthy page has an error: %v", st.Errors)
	}
	for _, id := range []string{self, anc, parent} {
		if n := e.served(id); n > 2 {
			t.Errorf("the cycle at %s was listed %d times", id, n)
		}
	}
}

// Listings that never end stop at a repeated cursor or a cap, as a
// per-object error naming it; the page releases the connection's cursor
// and its version is not walked again until it is edited.
func TestEndlessListingsStopAtCaps(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 12, Pages: 5, BlocksPerPage: 3},
		maxObjectRequests: 30, maxObjectBytes: 8 << 20})
	same, fresh, huge := e.seed.PageIDs[0], e.seed.PageIDs[1], e.seed.PageIDs[2]
	e.poison(same, notionfake.PoisonChildren, notionfake.PoisonEndlessSame)
	e.poison(fresh, notionfake.PoisonChildren, notionfake.PoisonEndlessNew)
	e.poison(huge, notionfake.PoisonChildren, notionfake.PoisonHuge)

	e.startWorkers(2)
	e.sweep()
	st := e.waitSynced() // the capped pages do not hold the cursor
	assertError(t, st, same, "repeated a pagination cursor")
	assertError(t, st, fresh, "MaxObjectRequests=30", "NOTIONSYNC_MAX_OBJECT_REQUESTS")
	assertError(t, st, huge, "MaxObjectBytes=8388608")
	if n := e.served(same); n != 2 {
		t.Errorf("endless_same listed %d times, want 2 (the second repeats the cursor)", n)
	}
	if n := e.served(fresh); n != 30 {
		t.Errorf("endless_new listed %d times, want the cap of 30", n)
	}
	if n := e.served(huge); n > 3 {
		t.Errorf("huge listed %d times, want at most 3 (4 MB each, 8 MiB cap)", n)
	}
	for _, id := range e.seed.PageIDs[3:] {
		e.assertStored(id, 0)
	}

	// The same version again (a webhook, a sweep inside the overlap): the
	// page object is read, the walk is not repeated, the error stays.
	payload := fmt.Sprintf(`{"conn_id":%q,"page_id":%q}`, e.conn, fresh)
	if err := e.runTask(jobs.TypePage, payload); err != nil {
		t.Fatal(err)
	}
	if n := e.served(fresh); n != 30 {
		t.Errorf("the capped version was walked again: %d listings", n)
	}
	st, _ = e.h.State(context.Background(), e.conn)
	assertError(t, st, fresh, "MaxObjectRequests")

	// An edit makes a new version: it is walked again.
	e.clock.Advance(2 * time.Minute)
	if err := e.fake.TouchPage(e.ws, fresh, "edited"); err != nil {
		t.Fatal(err)
	}
	if err := e.runTask(jobs.TypePage, payload); err != nil {
		t.Fatal(err)
	}
	if n := e.served(fresh); n != 60 {
		t.Errorf("after an edit: %d listings, want 60 (walked again up to the cap)", n)
	}
}

// A search result or database row whose id is not a Notion id (or not a
// string) is skipped as a per-object error; the other objects sync and the
// cursor moves. (Before: the sweep failed on it, for ever.)
func TestBadIDsAreObjectErrorsNotStalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 13, Pages: 3, BlocksPerPage: 2, Databases: 1, RowsPerDatabase: 3, BlocksPerRow: 1}})
	if _, err := e.fake.PoisonSearchResults(e.ws, notionfake.PoisonBadID); err != nil {
		t.Fatal(err)
	}
	e.poison(e.seed.DatabaseIDs[0], notionfake.PoisonQuery, notionfake.PoisonBadID)
	e.startWorkers(2)
	e.sweep()
	st := e.waitSynced()
	e.assertComplete()
	var search, rows, notID int
	for k, msg := range st.Errors {
		switch {
		case strings.HasPrefix(k, "search:"):
			search++
		case strings.HasPrefix(k, "data source "+e.source(e.seed.DatabaseIDs[0])+" row:"):
			rows++
		default:
			t.Errorf("unexpected error %s: %s", k, msg)
		}
		if strings.Contains(msg, "is not a Notion id") {
			notID++
		}
		if strings.Contains(k, "/") {
			t.Errorf("error key %q holds the hostile id", k)
		}
	}
	if search != 2 || rows != 2 || notID != 2 {
		t.Fatalf("errors: %d for search results, %d for rows, %d naming a bad id; want 2, 2, 2: %v", search, rows, notID, st.Errors)
	}
}

// A listing whose fields have the wrong JSON types is a malformed answer:
// a per-object error of its page, retried with backoff; the other pages
// sync.
func TestWrongJSONTypesArePerObjectErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 14, Pages: 3, BlocksPerPage: 2}})
	bad := e.seed.PageIDs[0]
	e.poison(bad, notionfake.PoisonChildren, notionfake.PoisonWrongTypes)
	e.startWorkers(2)
	e.sweep()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := e.h.State(context.Background(), e.conn)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st.Errors[bad]; ok && st.PagesSynced >= 2 {
			assertError(t, st, bad, "malformed")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no per-object error for the page with wrong types: %+v", st)
		}
		select {
		case <-e.pageSynced:
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, id := range e.seed.PageIDs[1:] {
		e.assertStored(id, 0)
	}
}

// A tree deeper than MaxBlockDepth is stored down to the limit, with a
// note that says so. (Before: a warn log only.)
func TestDepthLimitIsNoted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 15, Pages: 1, BlocksPerPage: 100, BlockDepth: 4, ChildrenPerBlock: 3}, maxBlockDepth: 2})
	// The content depends on the workspace id, which depends on the order
	// parallel tests start in: 100 top-level blocks make a third level all
	// but certain, and the check below says so if it is ever missing.
	deepest := 0
	var depth func(bs []*notionfake.Block, d int)
	depth = func(bs []*notionfake.Block, d int) {
		for _, b := range bs {
			deepest = max(deepest, d)
			depth(b.Children, d+1)
		}
	}
	if err := e.fake.ViewPage(e.ws, e.seed.PageIDs[0], func(p *notionfake.Page) { depth(p.Blocks, 1) }); err != nil || deepest <= 2 {
		t.Fatalf("seeded page nests %d levels (%v); the test needs more than 2", deepest, err)
	}
	e.startWorkers(1)
	e.sweep()
	st := e.waitSynced()
	assertError(t, st, e.seed.PageIDs[0], "depth limit 2", "NOTIONSYNC_MAX_BLOCK_DEPTH")
}

// The block walk's checkpoint grows by appending one hash field per
// listing request: a resumed walk adds fields, it does not rewrite the
// ones stored. (Before: one JSON string of the whole tree, rewritten.)
func TestTreeCheckpointIsAppendOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 16, Pages: 1, BlocksPerPage: 2},
		ratePerMinute: 1, burst: 7, maxWait: -1})
	page := e.seed.PageIDs[0]
	e.poison(page, notionfake.PoisonChildren, notionfake.PoisonEndlessNew)
	payload := fmt.Sprintf(`{"conn_id":%q,"page_id":%q}`, e.conn, page)
	if _, ok := notionclient.RetryAfter(e.runTask(jobs.TypePage, payload)); !ok {
		t.Fatal("first run was not stopped by the rate limit")
	}
	ctx := context.Background()
	key := jobs.TreeKeyForTest(e.conn, page)
	first, err := e.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1+6 { // the version, and a field per listing (the page GET is the 7th request)
		t.Fatalf("checkpoint fields after 6 listings: %d", len(first))
	}
	// Another stop later: the stored fields are kept as they were.
	if _, ok := notionclient.RetryAfter(e.rerunWithBurst(jobs.TypePage, payload, 5)); !ok {
		t.Fatal("second run was not stopped by the rate limit")
	}
	second, err := e.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(second) != 1+6+4 {
		t.Fatalf("checkpoint fields after 10 listings: %d", len(second))
	}
	for k, v := range first {
		if second[k] != v {
			t.Fatalf("field %s rewritten", k)
		}
	}
	for k, v := range second {
		if len(v) > 64<<10 {
			t.Fatalf("field %s holds %d bytes: more than one listing", k, len(v))
		}
	}
}

// rerunWithBurst runs one task with handlers over the env's sink and a
// client stack whose fresh rate limiter allows burst requests and then
// stops the task (no waiting), sharing the sync state.
func (e *env) rerunWithBurst(typ, payload string, burst int) error {
	e.t.Helper()
	nc, err := notionclient.New(e.rdb, e.src, notionclient.Config{BaseURL: e.hs, RatePerMinute: 1, Burst: burst, MaxWait: -1,
		KeyPrefix: fmt.Sprintf("burst%d:", time.Now().UnixNano())})
	if err != nil {
		e.t.Fatal(err)
	}
	defer nc.CloseIdleConnections()
	h, err := jobs.New(jobs.Config{Tokens: e.src, Notion: nc, Sink: e.sink, Redis: e.rdb, Enqueuer: e.client, Now: e.clock.Now, CheckpointEvery: 2})
	if err != nil {
		e.t.Fatal(err)
	}
	mux := asynq.NewServeMux()
	h.Register(mux)
	return mux.ProcessTask(context.Background(), asynq.NewTask(typ, []byte(payload)))
}

// Errors of skipped results show what the last complete listing saw: once
// the search stops returning the bad results, the next sweep drops them.
func TestBadResultErrorsClearWhenGone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 17, Pages: 2, BlocksPerPage: 1}})
	if _, err := e.fake.PoisonSearchResults(e.ws, notionfake.PoisonBadID); err != nil {
		t.Fatal(err)
	}
	e.startWorkers(1)
	e.sweep()
	if st := e.waitSynced(); len(st.Errors) != 2 {
		t.Fatalf("errors %v, want the two bad results", st.Errors)
	}
	e.fake.ClearPoison()
	e.clock.Advance(time.Minute)
	e.sweep()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := e.h.State(context.Background(), e.conn)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Errors) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("errors left after a clean sweep: %v", st.Errors)
		}
		time.Sleep(20 * time.Millisecond) // polling the state; nothing signals a sweep's end
	}
}

// Stop ends a page task's walk between requests, with its progress saved,
// however long the listing would go on. (Before: only drains stopped; a
// page task walked on into the shutdown timeout.)
func TestStopEndsAnEndlessWalk(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 18, Pages: 1, BlocksPerPage: 1}, maxObjectBlocks: 1 << 30, maxObjectRequests: 1 << 30, maxObjectBytes: 1 << 40})
	page := e.seed.PageIDs[0]
	e.poison(page, notionfake.PoisonChildren, notionfake.PoisonEndlessNew)
	e.fake.SetDataLatency(5 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- e.runTask(jobs.TypePage, fmt.Sprintf(`{"conn_id":%q,"page_id":%q}`, e.conn, page)) }()
	deadline := time.Now().Add(20 * time.Second)
	for e.served(page) < 5 {
		if time.Now().After(deadline) {
			t.Fatal("the walk did not start")
		}
		time.Sleep(5 * time.Millisecond) // polling the fake's counter
	}
	e.h.Stop()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "stopping") || jobs.IsFailure(err) {
			t.Fatalf("task ended with %v, want the worker's stop (not counted as a failure)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the walk went on after Stop")
	}
	n, err := e.rdb.HLen(context.Background(), jobs.TreeKeyForTest(e.conn, page)).Result()
	if err != nil || n < 5 {
		t.Fatalf("checkpoint holds %d fields (%v), want the listings done so far", n, err)
	}
}
