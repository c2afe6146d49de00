package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/sync/sink"
)

// refusingSink refuses one page until healed.
type refusingSink struct {
	sink.Sink
	page    string
	healed  atomic.Bool
	refused atomic.Int32
}

func (s *refusingSink) PutPage(ctx context.Context, p *sink.Page) (bool, error) {
	if p.ID == s.page && !s.healed.Load() {
		s.refused.Add(1)
		return false, errors.New("disk says no to this page")
	}
	return s.Sink.PutPage(ctx, p)
}

// A page that keeps failing is a per-object error: the connection's other
// pages sync around it, the failure is recorded under the page's id, the
// cursor waits for it, and once the page syncs the error is gone and the
// cursor moves.
func TestFailingPageDoesNotHoldUpOthers(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, cluster bool) {
		t.Parallel()
		spec := notionfake.SeedSpec{Seed: 21, Pages: 20, BlocksPerPage: 3}
		var rs *refusingSink
		e := newEnv(t, envOpts{cluster: cluster, spec: spec, wrapSink: func(s sink.Sink) sink.Sink {
			rs = &refusingSink{Sink: s}
			return rs
		}})
		bad := e.seed.PageIDs[7]
		rs.page = bad
		e.startWorkers(4)
		e.sweep()
		deadline := time.After(30 * time.Second)
		for {
			st, err := e.h.State(context.Background(), e.conn)
			if err != nil {
				t.Fatal(err)
			}
			if st.Pending == 1 && st.Errors[bad] != "" {
				if !strings.Contains(st.Errors[bad], "disk says no") {
					t.Fatalf("error recorded for %s: %q", bad, st.Errors[bad])
				}
				if !st.Cursor.Before(st.Target) && !st.Target.IsZero() {
					t.Fatalf("cursor %v reached the target %v past a page not stored", st.Cursor, st.Target)
				}
				break
			}
			select {
			case <-deadline:
				t.Fatalf("the other pages did not sync around the failing one: %+v", st)
			case <-e.pageSynced:
			case <-time.After(50 * time.Millisecond): // re-read the state
			}
		}
		rd := e.sink.(sink.Reader)
		for _, id := range e.seed.PageIDs {
			_, _, err := rd.GetPage(context.Background(), e.conn, id)
			if id == bad {
				if !errors.Is(err, sink.ErrNotFound) {
					t.Fatalf("the refused page is stored: %v", err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("page %s not stored while another page failed: %v", id, err)
			}
		}
		rs.healed.Store(true)
		st := e.waitSynced() // its backoff (about 2 s) ends, it syncs, the cursor moves
		if len(st.Errors) != 0 {
			t.Fatalf("errors left after the page synced: %v", st.Errors)
		}
		if rs.refused.Load() == 0 {
			t.Fatal("the page was never refused")
		}
		e.assertComplete()
	})
}

// A stored pagination cursor that Notion refuses (400 validation_error)
// makes the walk start over instead of failing the page for ever.
func TestRefusedCursorRestartsTheWalk(t *testing.T) {
	t.Parallel()
	spec := notionfake.SeedSpec{Seed: 5, Pages: 1, BlocksPerPage: 250, BlockDepth: 3}
	e := newEnv(t, envOpts{spec: spec, ratePerMinute: 1, burst: 3, maxWait: -1})
	page := e.seed.PageIDs[0]
	payload := fmt.Sprintf(`{"conn_id":%q,"page_id":%q}`, e.conn, page)
	if _, ok := notionclient.RetryAfter(e.runTask(jobs.TypePage, payload)); !ok {
		t.Fatal("first run was not stopped by the rate limit")
	}
	// Garble the cursor the stop left: the next cursor of the last
	// listing request in the checkpoint (one hash field per request).
	ctx := context.Background()
	key := jobs.TreeKeyForTest(e.conn, page)
	fields, err := e.rdb.HGetAll(ctx, key).Result()
	if err != nil || len(fields) < 2 {
		t.Fatalf("no checkpoint: %v %v", fields, err)
	}
	last := strconv.Itoa(len(fields) - 2) // fields "e", "0".."n"
	var chunk map[string]any
	if err := json.Unmarshal([]byte(fields[last]), &chunk); err != nil {
		t.Fatal(err)
	}
	if chunk["n"] == nil {
		t.Fatal("the checkpoint holds no cursor to garble")
	}
	chunk["n"] = "expired-cursor"
	b, _ := json.Marshal(chunk)
	if err := e.rdb.HSet(ctx, key, last, b).Err(); err != nil {
		t.Fatal(err)
	}
	before := e.fake.DataStats().Count("", 400)
	if err := e.rerun(e.sink, jobs.TypePage, payload); err != nil {
		t.Fatalf("resumed run with a refused cursor: %v", err)
	}
	if got := e.fake.DataStats().Count("", 400) - before; got != 1 {
		t.Fatalf("%d requests refused with 400, want the one with the garbled cursor", got)
	}
	p, _, err := e.sink.(sink.Reader).GetPage(ctx, e.conn, page)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := e.fake.PageBlockCount(e.ws, page); countBlocks(p.Blocks) != want {
		t.Fatalf("%d blocks stored, want %d", countBlocks(p.Blocks), want)
	}
}

// With a drain slice shorter than one page, every page is its own slice:
// the connection's drain hands its slot on after each page and its
// continuations finish the job.
func TestDrainTakesTurns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: smallSpec, drainSlice: time.Nanosecond})
	e.startWorkers(2)
	e.sweep()
	e.waitSynced()
	e.assertComplete()
	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	processed := 0
	for _, q := range []string{jobs.QueueSync, jobs.QueueBackfill} {
		if info, err := insp.GetQueueInfo(q); err == nil {
			processed += info.Processed
		}
	}
	if pages := len(e.seed.PageIDs) + len(e.seed.RowIDs); processed < pages {
		t.Fatalf("%d tasks processed for %d pages: the drain did not take turns", processed, pages)
	}
}

// Stop makes a running drain hand its connection on at once: the pages in
// flight stop and give back their claims, and the drain returns with its
// continuation queued.
func TestStopHandsDrainOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 22, Pages: 30, BlocksPerPage: 2}})
	// A sweep by a worker that is already stopping: it hands its pages to
	// a drain task instead of syncing them itself.
	stopping, err := jobs.New(jobs.Config{Tokens: e.src, Notion: e.notion, Sink: e.sink, Redis: e.rdb, Enqueuer: e.client, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	stopping.Stop()
	mux := asynq.NewServeMux()
	stopping.Register(mux)
	if err := mux.ProcessTask(context.Background(), asynq.NewTask(jobs.TypeSweep, []byte(`{"conn_id":"`+e.conn+`"}`))); err != nil {
		t.Fatal(err)
	}
	if st, err := e.h.State(context.Background(), e.conn); err != nil || st.Pending != 30 {
		t.Fatalf("after the stopping worker's sweep: pending %d (%v), want 30", st.Pending, err)
	}
	e.fake.SetDataLatency(200 * time.Millisecond) // pages are in flight when Stop comes
	done := make(chan error, 1)
	go func() { done <- e.runTask(jobs.TypeDrain, `{"conn_id":"`+e.conn+`","queue":"backfill"}`) }()
	for e.fake.RequestCount(e.ws) < 9 { // the drain is walking, a page or two stored
		select {
		case err := <-done:
			t.Fatalf("drain ended before Stop: %v", err)
		case <-time.After(5 * time.Millisecond): // polling the fake's counter
		}
	}
	e.h.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stopped drain: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("drain did not stop")
	}
	st, err := e.h.State(context.Background(), e.conn)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending == 0 || st.Pending >= 30 {
		t.Fatalf("pending = %d: want the drain stopped partway", st.Pending)
	}
	pending, err := asynq.NewInspectorFromRedisClient(e.rdb).ListPendingTasks(jobs.QueueBackfill)
	if err != nil {
		t.Fatal(err)
	}
	drains := 0
	for _, ti := range pending {
		if ti.Type == jobs.TypeDrain {
			drains++
		}
	}
	// The stopping sweep's hand-off (run here by hand, so still queued) and
	// the continuation.
	if drains != 2 {
		t.Fatalf("%d drain tasks queued, want 2", drains)
	}
	// The pages that were in flight gave their claims back: the
	// continuation can sync them at once.
	if claims, err := e.keysMatching(context.Background(), jobs.ConnPrefixForTest(e.conn)+"busy:"+e.conn+":*"); err != nil || len(claims) != 0 {
		t.Fatalf("claims left behind by the stopped drain: %v (%v)", claims, err)
	}
}

// inFlight counts the requests in flight through it and keeps the most.
type inFlight struct {
	base     http.RoundTripper
	now, max atomic.Int32
}

func (f *inFlight) RoundTrip(r *http.Request) (*http.Response, error) {
	n := f.now.Add(1)
	defer f.now.Add(-1)
	for m := f.max.Load(); n > m && !f.max.CompareAndSwap(m, n); m = f.max.Load() {
	}
	return f.base.RoundTrip(r)
}

// A connection's drain keeps up to PagesInFlight pages in flight (so a
// slow Notion does not leave the connection's budget idle), never more.
func TestDrainKeepsPagesInFlight(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			tr := &inFlight{base: http.DefaultTransport.(*http.Transport).Clone()}
			e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 23, Pages: 24, BlocksPerPage: 2},
				pagesInFlight: n, transport: tr})
			e.fake.SetDataLatency(15 * time.Millisecond)
			e.startWorkers(4)
			e.sweep()
			e.waitSynced()
			e.assertComplete()
			got := int(tr.max.Load())
			if got > n || n > 1 && got < 2 {
				t.Fatalf("at most %d Notion requests in flight, want %d", got, n)
			}
		})
	}
}

// A sweep that takes the connection's drain flag syncs the pages it found
// itself, in its own slot: no drain task goes through the queue.
func TestSweepSyncsItsPagesInline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 24, Pages: 10, BlocksPerPage: 2}})
	if err := e.runTask(jobs.TypeSweep, `{"conn_id":"`+e.conn+`"}`); err != nil {
		t.Fatal(err)
	}
	st, err := e.h.State(context.Background(), e.conn)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 0 || st.Cursor.IsZero() || st.PagesSynced != 10 {
		t.Fatalf("after one sweep task: %+v, want all 10 pages synced and the cursor moved", st)
	}
	e.assertComplete()
	if !e.queuesEmpty() {
		t.Fatal("the sweep queued tasks; want its pages synced inline")
	}
	if n, err := e.rdb.Exists(context.Background(), jobs.DrainKey("", e.conn)).Result(); err != nil || n != 0 {
		t.Fatalf("drain flag left behind (%d, %v)", n, err)
	}
}

// A search or database query whose next cursor Notion refuses starts over
// from the newest result inside the same task: nothing handed out before
// is lost, nothing after is skipped, and the task does not fail over it.
func TestRefusedListingCursorsRestart(t *testing.T) {
	t.Parallel()
	// 150 pages: the search takes two requests; 120 rows: so does the query.
	spec := notionfake.SeedSpec{Seed: 25, Pages: 150, BlocksPerPage: 1, Databases: 1, RowsPerDatabase: 120, BlocksPerRow: 1}
	e := newEnv(t, envOpts{spec: spec})
	e.fake.InvalidCursorNext(1) // the sweep's second search request
	e.startWorkers(4)
	e.sweep()
	e.waitSynced()
	e.assertComplete()
	if n, got := e.fake.PendingInvalidCursors(), e.fake.DataStats().Count("", 400); n != 0 || got != 1 {
		t.Fatalf("%d refusals pending, %d requests refused: want the sweep's cursor refused once", n, got)
	}
	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	for _, q := range []string{jobs.QueueSync, jobs.QueueBackfill} {
		if info, err := insp.GetQueueInfo(q); err == nil && info.FailedTotal != 0 {
			t.Fatalf("queue %s: %d tasks failed", q, info.FailedTotal)
		}
	}
	// The data source again: its query still covers all 120 rows (they
	// are inside the overlap), so its second request carries a cursor.
	e.fake.InvalidCursorNext(1)
	ds := e.source(e.seed.DatabaseIDs[0])
	if err := e.runTask(jobs.TypeDataSource, fmt.Sprintf(`{"conn_id":%q,"data_source_id":%q}`, e.conn, ds)); err != nil {
		t.Fatalf("data source task with a refused query cursor: %v", err)
	}
	if n, got := e.fake.PendingInvalidCursors(), e.fake.DataStats().Count("", 400); n != 0 || got != 2 {
		t.Fatalf("%d refusals pending, %d requests refused: want the query's cursor refused too", n, got)
	}
}

// A batch of sweeps (one task for a scheduler tick's sweeps) syncs every
// active connection in it; a sweep of the batch that fails is retried as a
// sweep task of its own; a paused connection's sweep stops without a call.
func TestSweepBatch(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, cluster bool) {
		t.Parallel()
		spec := notionfake.SeedSpec{Seed: 26, Pages: 5, BlocksPerPage: 1}
		// No user listings: the injected fault must hit a search.
		e := newEnv(t, envOpts{cluster: cluster, spec: spec, usersInterval: -1})
		other, _ := e.addConnection("ws-batch-2", notionfake.SeedSpec{Seed: 27, Pages: 4, BlocksPerPage: 1})
		paused, _ := e.addConnection("ws-batch-3", notionfake.SeedSpec{Seed: 28, Pages: 3, BlocksPerPage: 1})
		ctx := context.Background()
		if err := e.store.Pause(ctx, paused); err != nil {
			t.Fatal(err)
		}
		e.fake.MalformedNext(1) // the first data request: one of the two searches
		e.startWorkers(4)
		slot := e.clock.Now()
		if err := jobs.NewClient(e.client).EnqueueSweeps(ctx, []string{e.conn, other, paused}, []time.Time{slot, slot, slot}); err != nil {
			t.Fatal(err)
		}
		e.waitSyncedFor(e.conn)
		e.waitSyncedFor(other)
		e.assertComplete()
		st, err := e.h.State(ctx, paused)
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending != 0 || !st.Cursor.IsZero() || e.fake.RequestCount("ws-batch-3") != 0 {
			t.Fatalf("paused connection: %+v, %d requests", st, e.fake.RequestCount("ws-batch-3"))
		}
		// The last task may still be finishing after the cursor moved.
		for deadline := time.Now().Add(10 * time.Second); !e.queuesEmpty(); {
			if time.Now().After(deadline) {
				t.Fatal("tasks still queued or running")
			}
			time.Sleep(20 * time.Millisecond) // polling the queues, bounded
		}
		insp := asynq.NewInspectorFromRedisClient(e.rdb)
		done, err := insp.ListCompletedTasks(jobs.QueueSync)
		if err != nil {
			t.Fatal(err)
		}
		batches, retried := 0, 0
		for _, ti := range done {
			switch {
			case ti.Type == jobs.TypeSweeps:
				batches++
			case ti.Type == jobs.TypeSweep && strings.HasSuffix(ti.ID, ":retry"):
				retried++
			}
		}
		if batches != 1 || retried != 1 {
			t.Fatalf("%d batches and %d sweeps retried on their own completed, want 1 and 1", batches, retried)
		}
	})
}

// The drain flag names its owner. A sweep run again after its worker died
// (asynq recovers the task under the same id) finds its own name on the
// flag it took and drains the list; a flag another drain holds is left to
// that drain.
func TestDrainFlagIsOwnedByItsTask(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		holder string
		drains bool
	}{
		{holder: "sweep:", drains: true}, // this sweep, in an earlier life (runTask has no task id)
		{holder: "drain:someone-else", drains: false},
	} {
		t.Run(tc.holder, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 29, Pages: 6, BlocksPerPage: 1}})
			if err := e.rdb.Set(ctx, jobs.DrainKey("", e.conn), tc.holder, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			if err := e.runTask(jobs.TypeSweep, `{"conn_id":"`+e.conn+`"}`); err != nil {
				t.Fatal(err)
			}
			st, err := e.h.State(ctx, e.conn)
			if err != nil {
				t.Fatal(err)
			}
			if synced := st.Pending == 0 && st.PagesSynced == 6; synced != tc.drains {
				t.Fatalf("flag held by %q: pending %d, synced %d; want drained = %v", tc.holder, st.Pending, st.PagesSynced, tc.drains)
			}
			if !tc.drains && !e.queuesEmpty() {
				t.Fatal("a second drain was queued while another holds the flag")
			}
		})
	}
}
