package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
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
func resultLimitEnv(t *testing.T, spec notionfake.SeedSpec, limit int, tr http.RoundTripper) *env {
	t.Helper()
	e := newEnv(t, envOpts{spec: spec, transport: tr})
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
	e := resultLimitEnv(t, notionfake.SeedSpec{Seed: 41, Databases: 1, RowsPerDatabase: 20, BlocksPerRow: 1, History: 30 * 24 * time.Hour}, limit, nil)
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
	cur, err := jobs.DBCursorForTest(context.Background(), e.rdb, e.conn, e.source(db))
	if err != nil {
		t.Fatal(err)
	}
	if !cur.Equal(newest) {
		t.Fatalf("row cursor %v, want the newest row's %v", cur, newest)
	}
	// The split costs one query per segment, not a query per row: 20 rows
	// at 7 per segment (a partly read minute is listed again) is at most
	// a handful of segments of one page each.
	n := e.fake.DataStats().Requests[notionfake.EndpointQueryDataSource][200]
	t.Logf("%d rows in %d minutes, limit %d: %d data source queries", len(rows), len(perMinute), limit, n)
	if n < 3 || n > 8 {
		t.Errorf("%d data source queries, want 3..8", n)
	}
}

// More rows in one minute than the limit: a last_edited_time filter cannot
// split the minute, so the data source ends with a permanent per-object
// error naming the limit, in a bounded number of requests, and its row
// cursor does not move past the rows never read.
func TestQueryLimitWithinOneMinuteIsAnObjectError(t *testing.T) {
	t.Parallel()
	e := resultLimitEnv(t, notionfake.SeedSpec{Seed: 42, Databases: 1, RowsPerDatabase: 20, BlocksPerRow: 1}, 7, nil)
	db := e.seed.DatabaseIDs[0]
	first := e.clock.Now()
	e.startWorkers(2)
	e.sweep()
	st := e.waitSynced()
	e.waitIdle()
	ds := e.source(db)
	assertError(t, st, ds, "result limit", "query_result_limit_reached", "7 rows", "data source "+ds)
	assertKind(t, st, ds, jobs.ErrorPermanent, first.Truncate(time.Millisecond))
	cur, err := jobs.DBCursorForTest(context.Background(), e.rdb, e.conn, ds)
	if err != nil {
		t.Fatal(err)
	}
	if !cur.IsZero() {
		t.Fatalf("row cursor moved to %v with 13 rows unread", cur)
	}
	if n := e.fake.DataStats().Requests[notionfake.EndpointQueryDataSource][200]; n > 4 {
		t.Errorf("%d data source queries; the split must stop, not loop", n)
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

// splitQueries records the body of every database query and, once armed,
// cancels the task's context at the first query of a later segment (one
// with an on_or_before bound), as a worker that stops mid-split would.
type splitQueries struct {
	base http.RoundTripper

	mu     sync.Mutex
	bodies []string
	cancel context.CancelFunc // set: cancel at the next segment query
}

func (s *splitQueries) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && r.Body != nil && strings.HasSuffix(r.URL.Path, "/query") {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		cancel := s.cancel
		if cancel != nil && strings.Contains(string(b), "on_or_before") {
			s.cancel = nil
		} else {
			cancel = nil
		}
		s.mu.Unlock()
		if cancel != nil {
			cancel()
			return nil, context.Canceled
		}
	}
	return s.base.RoundTrip(r)
}

func (s *splitQueries) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bodies
	s.bodies = nil
	return b
}

// A data source task stopped between segments resumes from its checkpoint
// in the segment it reached (not from the newest row), and the row cursor
// does not move until the last segment is read.
func TestQuerySplitResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	tr := &splitQueries{base: http.DefaultTransport.(*http.Transport).Clone()}
	e := resultLimitEnv(t, notionfake.SeedSpec{Seed: 41, Databases: 1, RowsPerDatabase: 20, BlocksPerRow: 1, History: 30 * 24 * time.Hour}, 7, tr)
	db := e.seed.DatabaseIDs[0]
	ds := e.source(db)
	e.startWorkers(2)
	payload := fmt.Sprintf(`{"conn_id":%q,"data_source_id":%q}`, e.conn, ds)
	mux := asynq.NewServeMux()
	e.h.Register(mux)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr.mu.Lock()
	tr.cancel = cancel
	tr.mu.Unlock()
	if err := mux.ProcessTask(ctx, asynq.NewTask(jobs.TypeDataSource, []byte(payload))); err == nil {
		t.Fatal("the stopped task reported success")
	}
	first := tr.take()
	if len(first) != 2 || strings.Contains(first[0], "on_or_before") {
		t.Fatalf("stopped run's queries: %q, want the first segment's then the second's", first)
	}
	if cur, err := jobs.DBCursorForTest(context.Background(), e.rdb, e.conn, ds); err != nil || !cur.IsZero() {
		t.Fatalf("row cursor %v (%v) moved before the split query was read", cur, err)
	}

	if err := mux.ProcessTask(context.Background(), asynq.NewTask(jobs.TypeDataSource, []byte(payload))); err != nil {
		t.Fatal(err)
	}
	second := tr.take()
	if len(second) == 0 || second[0] != first[1] {
		t.Fatalf("resumed run's first query %q, want the stopped segment's %q", second, first[1])
	}
	e.waitIdle()
	var newest time.Time
	for _, id := range e.seed.RowsByDatabase[db] {
		e.assertStored(id, 0)
		if at := e.edited(id); at.After(newest) {
			newest = at
		}
	}
	if cur, err := jobs.DBCursorForTest(context.Background(), e.rdb, e.conn, ds); err != nil || !cur.Equal(newest) {
		t.Fatalf("row cursor %v (%v), want %v", cur, err, newest)
	}
}
