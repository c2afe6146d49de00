package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/sync/sink"
)

// Issue 11 item 5: a database query that Notion stops at its result limit
// (request_status incomplete) is split by last_edited_time until every row
// is read. Search omits every page, so the rows are found only through the
// database's query. (Before: the query took the first ResultLimitSize rows
// and moved the row cursor past the rest.)

// resultLimitEnv is a connection whose search finds the databases only and
// whose queries stop at limit rows.
func resultLimitEnv(t *testing.T, spec notionfake.SeedSpec, limit int) *env {
	t.Helper()
	e := newEnv(t, envOpts{spec: spec})
	if err := e.fake.SetImperfections(notionfake.Imperfections{ResultLimit: true, ResultLimitSize: limit, SearchOmitShare: 1}); err != nil {
		t.Fatal(err)
	}
	return e
}

// edited returns the last_edited_time of page id.
func (e *env) edited(id string) time.Time {
	e.t.Helper()
	var at time.Time
	if err := e.fake.ViewPage(e.ws, id, func(p *notionfake.Page) { at = p.LastEditedTime }); err != nil {
		e.t.Fatal(err)
	}
	return at
}

func TestQueryOverResultLimitSyncsEveryRow(t *testing.T) {
	t.Parallel()
	const limit = 7
	e := resultLimitEnv(t, notionfake.SeedSpec{Seed: 41, Databases: 1, RowsPerDatabase: 20, BlocksPerRow: 1, History: 30 * 24 * time.Hour}, limit)
	db := e.seed.DatabaseIDs[0]
	rows := e.seed.RowsByDatabase[db]
	perMinute := map[time.Time]int{}
	var newest time.Time
	for _, id := range rows {
		at := e.edited(id)
		perMinute[at.Truncate(time.Minute)]++
		if at.After(newest) {
			newest = at
		}
	}
	if len(rows) != 20 || len(perMinute) < 3 {
		t.Fatalf("seed: %d rows in %d minutes; the test needs 20 rows spread over minutes", len(rows), len(perMinute))
	}
	for m, n := range perMinute {
		if n > limit {
			t.Fatalf("seed: %d rows in the minute %v, more than the limit %d", n, m, limit)
		}
	}
	e.startWorkers(2)
	e.sweep()
	st := e.waitSynced()
	e.waitIdle()
	if len(st.Errors) != 0 {
		t.Fatalf("errors: %v", st.Errors)
	}
	for _, id := range rows {
		e.assertStored(id, 0)
	}
	cur, err := jobs.DBCursorForTest(context.Background(), e.rdb, e.conn, db)
	if err != nil {
		t.Fatal(err)
	}
	if !cur.Equal(newest) {
		t.Fatalf("row cursor %v, want the newest row's %v", cur, newest)
	}
	// The split costs one query per segment, not a query per row: 20 rows
	// at 7 per segment (a partly read minute is listed again) is at most
	// a handful of segments of one page each.
	if n := e.fake.DataStats().Requests[notionfake.EndpointQueryDatabase][200]; n < 3 || n > 8 {
		t.Errorf("%d database queries, want 3..8", n)
	}
}

// More rows in one minute than the limit: a last_edited_time filter cannot
// split the minute, so the database ends with a permanent per-object error
// naming the limit, in a bounded number of requests, and its row cursor
// does not move past the rows never read.
func TestQueryLimitWithinOneMinuteIsAnObjectError(t *testing.T) {
	t.Parallel()
	e := resultLimitEnv(t, notionfake.SeedSpec{Seed: 42, Databases: 1, RowsPerDatabase: 20, BlocksPerRow: 1}, 7)
	db := e.seed.DatabaseIDs[0]
	first := e.clock.Now()
	e.startWorkers(2)
	e.sweep()
	st := e.waitSynced()
	e.waitIdle()
	assertError(t, st, db, "result limit", "query_result_limit_reached", "7 rows")
	assertKind(t, st, db, jobs.ErrorPermanent, first.Truncate(time.Millisecond))
	cur, err := jobs.DBCursorForTest(context.Background(), e.rdb, e.conn, db)
	if err != nil {
		t.Fatal(err)
	}
	if !cur.IsZero() {
		t.Fatalf("row cursor moved to %v with 13 rows unread", cur)
	}
	if n := e.fake.DataStats().Requests[notionfake.EndpointQueryDatabase][200]; n > 4 {
		t.Errorf("%d database queries; the split must stop, not loop", n)
	}
	stored := 0
	for _, id := range e.seed.RowsByDatabase[db] {
		if _, _, err := e.sink.(sink.Reader).GetPage(context.Background(), e.conn, id); err == nil {
			stored++
		} else if !errors.Is(err, sink.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if stored != 7 {
		t.Errorf("%d rows stored, want the 7 the query returned", stored)
	}
}
