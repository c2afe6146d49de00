package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/tokens"
)

// Sweep, page, database and drain tasks of a paused or needs_reauth
// connection complete (they were archived, which asynqmon counts as
// errors) with a result that names the verdict, make no Notion or token
// call, and keep the bookkeeping: the stopped drain's flag is dropped, its
// pages stay pending for the sweep after the connection resumes.
func TestStoppedConnectionTasksCompleteWithVerdict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 31, Pages: 2, Databases: 1, RowsPerDatabase: 2}})
	ctx := context.Background()
	paused := e.conn
	if err := e.store.Pause(ctx, paused); err != nil {
		t.Fatal(err)
	}
	reauth, reauthSeed := e.addConnection("ws-verdict-reauth", notionfake.SeedSpec{Seed: 32, Pages: 2, Databases: 1, RowsPerDatabase: 2})
	if err := e.store.MarkNeedsReauth(ctx, reauth, "revoked in a test"); err != nil {
		t.Fatal(err)
	}
	seeds := map[string]notionfake.SeedResult{paused: e.seed, reauth: reauthSeed}
	want := map[string]jobs.Verdict{
		paused: {ConnID: paused, Verdict: "paused"},
		reauth: {ConnID: reauth, Verdict: "needs_reauth", Reason: tokens.ReasonOperator, Detail: "revoked in a test"},
	}
	before := map[string]int{paused: e.fake.RequestCount(e.ws), reauth: e.fake.RequestCount("ws-verdict-reauth")}
	tokenCalls := e.fake.Stats().TokenRequests

	enq := func(typ, id string, payload any) {
		t.Helper()
		b, err := json.Marshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.Enqueue(asynq.NewTask(typ, b), asynq.TaskID(id), asynq.Queue(jobs.QueueSync), asynq.Retention(time.Hour), asynq.MaxRetry(20)); err != nil {
			t.Fatal(err)
		}
	}
	drains := map[string]string{}
	for conn, seed := range seeds {
		drains[conn] = "drain:" + conn + ":test"
		if err := jobs.QueueTodoForTest(ctx, e.rdb, conn, drains[conn], seed.PageIDs, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		enq(jobs.TypeSweep, "sweep:"+conn, jobs.SweepPayload{ConnID: conn})
		enq(jobs.TypePage, "page:"+conn, jobs.PagePayload{ConnID: conn, PageID: seed.PageIDs[0]})
		enq(jobs.TypeDatabase, "db:"+conn, jobs.DatabasePayload{ConnID: conn, DatabaseID: seed.DatabaseIDs[0]})
		enq(jobs.TypeDrain, drains[conn], jobs.DrainPayload{ConnID: conn})
	}
	const tasks = 8
	e.startWorkers(4)

	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	var done []*asynq.TaskInfo
	deadline := time.Now().Add(30 * time.Second)
	for len(done) < tasks {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d tasks completed; archived %d", len(done), tasks, e.archived())
		}
		time.Sleep(20 * time.Millisecond) // polling an external queue, bounded
		var err error
		done, err = insp.ListCompletedTasks(jobs.QueueSync)
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := e.archived(); n != 0 {
		t.Errorf("%d tasks archived, want 0", n)
	}
	seen := map[string]bool{}
	for _, ti := range done {
		var v jobs.Verdict
		if err := json.Unmarshal(ti.Result, &v); err != nil {
			t.Fatalf("task %s (%s) result %q: %v", ti.ID, ti.Type, ti.Result, err)
		}
		if w := want[v.ConnID]; v != w {
			t.Errorf("task %s (%s) result = %+v, want %+v", ti.ID, ti.Type, v, w)
		}
		seen[fmt.Sprintf("%s %s", v.ConnID, ti.Type)] = true
	}
	if len(seen) != tasks {
		t.Errorf("verdicts of %d kinds of task, want %d: %v", len(seen), tasks, seen)
	}
	for conn, ws := range map[string]string{paused: e.ws, reauth: "ws-verdict-reauth"} {
		if n := e.fake.RequestCount(ws) - before[conn]; n != 0 {
			t.Errorf("%s: %d Notion requests, want 0", conn, n)
		}
		// The stopped drain dropped its flag; its pages stay pending for
		// the first sweep after the connection is usable again.
		if n, err := e.rdb.Exists(ctx, jobs.DrainKey("", conn)).Result(); err != nil || n != 0 {
			t.Errorf("%s: drain flag still set (%d, %v)", conn, n, err)
		}
		st, err := e.h.State(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending != int64(len(seeds[conn].PageIDs)) {
			t.Errorf("%s: pending = %d, want its %d pages", conn, st.Pending, len(seeds[conn].PageIDs))
		}
	}
	if n := e.fake.Stats().TokenRequests - tokenCalls; n != 0 {
		t.Errorf("%d token requests for stopped connections, want 0", n)
	}
	// Resumed, the connection's next sweep drains what the stopped drain
	// left pending and completes the sync.
	if err := e.store.Resume(ctx, paused); err != nil {
		t.Fatal(err)
	}
	e.sweepFor(paused)
	if st := e.waitSyncedFor(paused); st.Pending != 0 {
		t.Errorf("after resume: pending %d", st.Pending)
	}
	if n := e.archived(); n != 0 {
		t.Errorf("%d tasks archived after resume, want 0", n)
	}
}
