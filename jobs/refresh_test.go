package jobs_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/notionsync/notionsync/jobs"
)

// An operator's refresh (POST .../refresh without wait, notionsyncctl refresh
// ID) must rotate a token that is not due, while a proactive refresh of the
// same token does nothing; a redelivered task must not rotate again.
func TestOperatorRefreshRefreshesATokenNotDue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: smallSpec})
	ctx := context.Background()
	version := func() int64 {
		c, err := e.store.Get(ctx, e.conn)
		if err != nil {
			t.Fatal(err)
		}
		return c.Version
	}
	v0, rot0 := version(), e.fake.RefreshGrantsFor(e.ws)

	// The proactive refresh of a fresh token is a no-op (the contrast).
	proactive, _ := json.Marshal(jobs.RefreshPayload{ConnID: e.conn, Version: v0})
	if err := e.runTask(jobs.TypeRefresh, string(proactive)); err != nil {
		t.Fatal(err)
	}
	if v, rot := version(), e.fake.RefreshGrantsFor(e.ws); v != v0 || rot != rot0 {
		t.Fatalf("a proactive refresh of a token not due moved it: version %d -> %d, rotations %d -> %d", v0, v, rot0, rot)
	}

	if err := jobs.NewClient(e.client).RefreshNow(ctx, e.conn, v0); err != nil {
		t.Fatal(err)
	}
	tasks, err := asynq.NewInspectorFromRedisClient(e.rdb).ListPendingTasks(jobs.QueueTokens)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].Type != jobs.TypeRefresh {
		t.Fatalf("want one pending %s task, got %+v", jobs.TypeRefresh, tasks)
	}
	if err := e.runTask(tasks[0].Type, string(tasks[0].Payload)); err != nil {
		t.Fatal(err)
	}
	if v, rot := version(), e.fake.RefreshGrantsFor(e.ws); v != v0+1 || rot != rot0+1 {
		t.Fatalf("operator refresh: version %d -> %d (want +1), rotations %d -> %d (want +1)", v0, v, rot0, rot)
	}

	// The same task again (a worker died after the refresh, before the ack):
	// the version moved past the one asked for, so nothing is called.
	if err := e.runTask(tasks[0].Type, string(tasks[0].Payload)); err != nil {
		t.Fatal(err)
	}
	if v, rot := version(), e.fake.RefreshGrantsFor(e.ws); v != v0+1 || rot != rot0+1 {
		t.Fatalf("redelivered operator refresh rotated again: version %d, rotations %d (want %d, %d)", v, rot, v0+1, rot0+1)
	}
}
