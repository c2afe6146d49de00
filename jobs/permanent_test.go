package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/jobs"
)

// These tests cover per-object errors by kind: a permanent Notion answer
// for one object (403, 404 on its children, 400) is recorded and lets the
// connection's cursor move, and the object is not asked again until it is
// edited; a transient one (5xx, malformed) holds the cursor and backs off.

// sweepAndSettle runs a sweep at the fake clock's current time and waits
// until it ran and everything it handed out is done.
func (e *env) sweepAndSettle() jobs.SyncState {
	e.t.Helper()
	at := e.clock.Now()
	e.sweep()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := e.h.State(context.Background(), e.conn)
		if err != nil {
			e.t.Fatal(err)
		}
		if !st.LastSweep.Before(at.Truncate(time.Millisecond)) && st.Pending == 0 && e.queuesEmpty() {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("sweep at %v did not settle: %+v", at, st)
		}
		select {
		case <-e.advanced:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func assertKind(t *testing.T, st jobs.SyncState, id string, kind jobs.ErrorKind, since time.Time) {
	t.Helper()
	d, ok := st.ErrorDetails[id]
	if !ok {
		t.Fatalf("no error details for %s: %+v", id, st.ErrorDetails)
	}
	if d.Kind != kind || !d.Since.Equal(since) {
		t.Fatalf("error of %s: kind %q since %v, want %q since %v", id, d.Kind, d.Since, kind, since)
	}
}

// A page whose page GET or children listing answers a permanent error does
// not hold the connection's cursor: the other pages sync, the cursor
// reaches its target, the error is shown as permanent, and later sweeps
// that see the same version send it no request at all. After an edit (and
// the object readable again) it syncs and its error clears.
func TestPermanentErrorsLetTheCursorMove(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 31, Pages: 8, BlocksPerPage: 3}})
	e.syncTimeout = 20 * time.Second
	type poisoned struct {
		id     string
		target notionfake.PoisonTarget
		kind   notionfake.PoisonKind
		words  []string
	}
	bad := []poisoned{
		{e.seed.PageIDs[0], notionfake.PoisonChildren, notionfake.PoisonRestricted, []string{"403", "restricted_resource"}},
		{e.seed.PageIDs[1], notionfake.PoisonChildren, notionfake.PoisonNotFound, []string{"404", "object_not_found"}},
		{e.seed.PageIDs[2], notionfake.PoisonChildren, notionfake.PoisonValidation, []string{"400", "validation_error"}},
		{e.seed.PageIDs[3], notionfake.PoisonPageGet, notionfake.PoisonRestricted, []string{"403", "restricted_resource"}},
		{e.seed.PageIDs[4], notionfake.PoisonPageGet, notionfake.PoisonValidation, []string{"400", "validation_error"}},
	}
	for _, b := range bad {
		e.poison(b.id, b.target, b.kind)
	}
	first := e.clock.Now()
	e.startWorkers(2)
	e.sweep()
	st := e.waitSynced() // before: the poisoned pages stayed pending for ever
	for _, b := range bad {
		assertError(t, st, b.id, b.words...)
		assertKind(t, st, b.id, jobs.ErrorPermanent, first.Truncate(time.Millisecond))
	}
	for _, id := range e.seed.PageIDs[5:] {
		e.assertStored(id, 0)
		if _, ok := st.Errors[id]; ok {
			t.Fatalf("healthy page %s has an error: %v", id, st.Errors)
		}
	}
	served := map[string]int{}
	for _, b := range bad {
		served[b.id] = e.served(b.id)
		if served[b.id] != 1 {
			t.Errorf("%s (%s %s) answered %d requests, want 1", b.id, b.target, b.kind, served[b.id])
		}
	}

	// Sweeps a minute apart that see the same versions again (inside the
	// overlap): no request for the failed pages, the errors and their
	// since stay. (Before: the drain retried them every minute.)
	// The first of them also fetches the healthy pages once more (they
	// were stored inside the minute of their last_edited_time, which
	// proves nothing: upToDate); the requests of the three after it are
	// counted.
	var before int
	for i := range 4 {
		if i == 1 {
			before = e.fake.DataStats().Workspaces[e.ws]
		}
		e.clock.Advance(time.Minute)
		st = e.sweepAndSettle()
		if st.Cursor.Before(st.Target) {
			t.Fatalf("cursor %v held below target %v", st.Cursor, st.Target)
		}
	}
	// Each quiet sweep costs its one search request: the stored pages are
	// up to date, the failed ones are skipped by their mark.
	if n := e.fake.DataStats().Workspaces[e.ws] - before; n != 3 {
		t.Errorf("3 sweeps over the same versions sent %d Notion requests, want 3 (one search each)", n)
	}
	for _, b := range bad {
		if n := e.served(b.id); n != served[b.id] {
			t.Errorf("%s was asked again for the same version: %d requests, was %d", b.id, n, served[b.id])
		}
		assertKind(t, st, b.id, jobs.ErrorPermanent, first.Truncate(time.Millisecond))
	}

	// An edit with the poison lifted: the page syncs, its error clears;
	// the others keep theirs.
	fixed := bad[0]
	e.fake.Unpoison(e.ws, fixed.id, fixed.target)
	if err := e.fake.TouchPage(e.ws, fixed.id, "shared again"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	st = e.sweepAndSettle()
	e.assertStored(fixed.id, 0)
	if msg, ok := st.Errors[fixed.id]; ok {
		t.Fatalf("error of the fixed page stays: %s", msg)
	}
	if _, ok := st.ErrorDetails[fixed.id]; ok {
		t.Fatalf("error details of the fixed page stay: %+v", st.ErrorDetails)
	}
	for _, b := range bad[1:] {
		assertError(t, st, b.id, b.words...)
	}
}

// A transient error (a 500 on the page's children) still holds the
// connection's cursor and is retried with backoff, shown as transient
// since its first failure; once Notion answers, the page syncs, the error
// clears and the cursor moves.
func TestTransientErrorHoldsTheCursorAndBacksOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 32, Pages: 4, BlocksPerPage: 2}})
	bad := e.seed.PageIDs[0]
	e.poison(bad, notionfake.PoisonChildren, notionfake.PoisonServerError)
	first := e.clock.Now()
	e.startWorkers(2)
	e.sweep()
	deadline := time.Now().Add(30 * time.Second)
	var n0 int
	for {
		st, err := e.h.State(context.Background(), e.conn)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st.Errors[bad]; ok && st.PagesSynced >= 3 {
			assertError(t, st, bad, "500")
			assertKind(t, st, bad, jobs.ErrorTransient, first.Truncate(time.Millisecond))
			if st.Pending == 0 || !st.Cursor.Before(st.Target) {
				t.Fatalf("a transient error let the cursor move: %+v", st)
			}
			n0 = e.served(bad)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no transient error recorded: %+v", st)
		}
		select {
		case <-e.pageSynced:
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Retried with backoff (about 2 s after the first failure).
	for e.served(bad) == n0 {
		if time.Now().After(deadline) {
			t.Fatal("the page with a transient error was not retried")
		}
		time.Sleep(50 * time.Millisecond) // polling the fake's counter; the retry is on a real-time backoff
	}
	st, err := e.h.State(context.Background(), e.conn)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending == 0 {
		t.Fatalf("the retried page is not pending: %+v", st)
	}
	assertKind(t, st, bad, jobs.ErrorTransient, first.Truncate(time.Millisecond)) // since stays at the first failure
	e.fake.Unpoison(e.ws, bad, notionfake.PoisonChildren)
	st = e.waitSynced()
	if len(st.Errors) != 0 || len(st.ErrorDetails) != 0 {
		t.Fatalf("errors left after the page synced: %v %v", st.Errors, st.ErrorDetails)
	}
	e.assertStored(bad, 0)
}

// A database whose GET or query answers a permanent error is recorded as a
// permanent error of the database and lets the cursor move. (Before: its
// task was retried by asynq and its pending entry held the cursor.)
func TestPermanentDatabaseErrorLetsTheCursorMove(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 33, Pages: 2, BlocksPerPage: 1, Databases: 3, RowsPerDatabase: 2, BlocksPerRow: 1}})
	e.syncTimeout = 20 * time.Second
	db := e.seed.DatabaseIDs[0]
	e.poison(db, notionfake.PoisonQuery, notionfake.PoisonRestricted)
	dbGet := e.seed.DatabaseIDs[2]
	e.poison(dbGet, notionfake.PoisonDatabaseGet, notionfake.PoisonValidation)
	first := e.clock.Now()
	e.startWorkers(2)
	e.sweep()
	st := e.waitSynced()
	// The query is the data source's (Notion-Version 2025-09-03).
	assertError(t, st, e.source(db), "403", "restricted_resource")
	assertKind(t, st, e.source(db), jobs.ErrorPermanent, first.Truncate(time.Millisecond))
	assertError(t, st, dbGet, "400", "validation_error")
	assertKind(t, st, dbGet, jobs.ErrorPermanent, first.Truncate(time.Millisecond))
	for _, id := range e.seed.RowsByDatabase[e.seed.DatabaseIDs[1]] {
		e.assertStored(id, 0)
	}
	// Once for the sweep's database task, once at most for the task its
	// child_database block hands out; no retry. (Before: asynq retried
	// the task with backoff, holding the cursor.)
	for _, id := range []string{db, dbGet} {
		if n := e.served(id); n > 2 {
			t.Errorf("the poison of %s answered %d times, want at most 2", id, n)
		}
	}
}

// An error recorded again with the same kind keeps its since and takes the
// new message; another kind starts a new since. A plain message written
// before kinds existed reads as a message without details.
func TestErrorSinceKeptPerKind(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr(), DB: int(nextDB.Add(1))})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	rec := func(kind jobs.ErrorKind, msg string, at time.Time) jobs.SyncState {
		t.Helper()
		if err := jobs.RecordErrorForTest(ctx, rdb, "c", "p", kind, msg, at); err != nil {
			t.Fatal(err)
		}
		st, err := jobs.NewStateReader(rdb, "").State(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	rec(jobs.ErrorTransient, "500 once", t0)
	st := rec(jobs.ErrorTransient, "500 again", t0.Add(time.Minute))
	if st.Errors["p"] != "500 again" {
		t.Fatalf("message %q", st.Errors["p"])
	}
	assertKind(t, st, "p", jobs.ErrorTransient, t0)
	st = rec(jobs.ErrorPermanent, "403", t0.Add(2*time.Minute))
	assertKind(t, st, "p", jobs.ErrorPermanent, t0.Add(2*time.Minute))
	if err := rdb.HSet(ctx, jobs.SyncKey("", "c")+":errors", "old", "plain message").Err(); err != nil {
		t.Fatal(err)
	}
	st = rec(jobs.ErrorPermanent, "403 still", t0.Add(3*time.Minute))
	if _, ok := st.ErrorDetails["old"]; ok || st.Errors["old"] != "plain message" {
		t.Fatalf("legacy value: %q %+v", st.Errors["old"], st.ErrorDetails)
	}
	assertKind(t, st, "p", jobs.ErrorPermanent, t0.Add(2*time.Minute))
}
