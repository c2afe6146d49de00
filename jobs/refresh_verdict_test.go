package jobs_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/tokens"
)

// A refresh task that finds its connection needs_reauth, disconnected or
// gone completes (it was archived, which asynqmon counts as an error) with
// a result that names the verdict, and makes no token call: terminal means
// quiet.
func TestTerminalRefreshCompletesWithVerdict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 5, Pages: 1}})
	ctx := context.Background()
	if err := e.store.MarkNeedsReauth(ctx, e.conn, "revoked in a test"); err != nil {
		t.Fatal(err)
	}
	gone, _ := e.addConnection("ws-verdict-gone", notionfake.SeedSpec{Seed: 6, Pages: 1})
	if err := e.store.Disconnect(ctx, gone); err != nil {
		t.Fatal(err)
	}
	tokenCalls := e.fake.Stats().TokenRequests
	e.startWorkers(2)
	c := jobs.NewClient(e.client)
	for _, id := range []string{e.conn, gone, "conn-nobody"} {
		if err := c.RefreshNow(ctx, id, 0); err != nil { // version 0: whatever the operator saw, the verdict stands
			t.Fatal(err)
		}
	}

	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	var done []*asynq.TaskInfo
	deadline := time.Now().Add(30 * time.Second)
	for len(done) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 refresh tasks completed; archived %d", len(done), e.archived())
		}
		time.Sleep(20 * time.Millisecond) // polling an external queue, bounded
		var err error
		done, err = insp.ListCompletedTasks(jobs.QueueTokens)
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := e.archived(); n != 0 {
		t.Errorf("%d tasks archived, want 0", n)
	}
	got := map[string]jobs.RefreshVerdict{}
	for _, ti := range done {
		var v jobs.RefreshVerdict
		if err := json.Unmarshal(ti.Result, &v); err != nil {
			t.Fatalf("task %s result %q: %v", ti.ID, ti.Result, err)
		}
		got[v.ConnID] = v
	}
	want := map[string]jobs.RefreshVerdict{
		e.conn:        {ConnID: e.conn, Verdict: "needs_reauth", Reason: tokens.ReasonOperator, Detail: "revoked in a test"},
		gone:          {ConnID: gone, Verdict: "disconnected"},
		"conn-nobody": {ConnID: "conn-nobody", Verdict: "not_found"},
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("result of %s = %+v, want %+v", id, got[id], w)
		}
	}
	if n := e.fake.Stats().TokenRequests - tokenCalls; n != 0 {
		t.Errorf("%d token requests for terminal connections, want 0", n)
	}
}
