package pgsink_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/notionsync/notionsync/internal/pgtest"
	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/pgsink"
	"github.com/notionsync/notionsync/sync/sink/record"
	"github.com/notionsync/notionsync/sync/sink/sinktest"
)

var srv *pgtest.Server

func TestMain(m *testing.M) {
	code := pgtest.RunMain(m, pgtest.Options{}, func(s *pgtest.Server) { srv = s })
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func open(t testing.TB, dsn string, opts pgsink.Options) *pgsink.Sink {
	t.Helper()
	s, err := pgsink.Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() }) // runs before the database is dropped
	return s
}

func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func TestConformance(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, func(t *testing.T) sinktest.Store { return open(t, srv.NewDatabase(t), pgsink.Options{}) })
}

func TestFileGC(t *testing.T) {
	sinktest.RunFileGC(t, func(t *testing.T, now func() time.Time) sinktest.FileStore {
		return open(t, srv.NewDatabase(t), pgsink.Options{BlobURL: "file://" + t.TempDir(), Now: now})
	})
}

func TestImplementsSink(t *testing.T) {
	var _ sink.Sink = (*pgsink.Sink)(nil)
	var _ sink.Reader = (*pgsink.Sink)(nil)
}

func TestConcurrentMigrations(t *testing.T) {
	t.Parallel()
	dsn := srv.NewDatabase(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	sinks := make(chan *pgsink.Sink, n)
	for range n {
		wg.Go(func() {
			<-start
			s, err := pgsink.Open(context.Background(), dsn, pgsink.Options{MaxConns: 1})
			if err != nil {
				errs <- err
				return
			}
			sinks <- s
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	close(sinks)
	for s := range sinks {
		_ = s.Close()
	}
	for err := range errs {
		t.Errorf("concurrent Open: %v", err)
	}
	c := connect(t, dsn)
	var count, distinct int
	if err := c.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&count, &distinct); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("migration files: %v %v", files, err)
	}
	if count != len(files) || distinct != len(files) {
		t.Errorf("schema_migrations: %d rows, %d versions; want each of the %d migrations once", count, distinct, len(files))
	}
	// Opening again applies nothing and works.
	s := open(t, dsn, pgsink.Options{})
	if _, err := s.PutPage(context.Background(), sinktest.NewPage(sinktest.PageID(1), "x", sinktest.Base, sinktest.Base)); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM schema_migrations").Scan(&count); err != nil || count != len(files) {
		t.Errorf("after reopen: %d rows, %v", count, err)
	}
}

// migrations is how many files migrations/ holds.
var migrations = func() int {
	f, _ := filepath.Glob(filepath.Join("migrations", "*.sql"))
	return len(f)
}()

// TestMigrationDataSources opens a sink on a database made by the schema of
// migration 1 alone (before data sources), holding a database row: the
// migration keeps the row whole, and storing the database's sole data
// source gives the row its data source without changing its version.
func TestMigrationDataSources(t *testing.T) {
	t.Parallel()
	dsn := srv.NewDatabase(t)
	ctx := context.Background()
	c := connect(t, dsn)
	init, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	// What pgsink of the previous release left behind.
	if _, err := c.Exec(ctx, string(init)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()); INSERT INTO schema_migrations VALUES (1, 'init', now())`); err != nil {
		t.Fatal(err)
	}
	row := sinktest.NewPage(sinktest.PageID(1), "legacy row", sinktest.Base, sinktest.Base)
	other := sinktest.NewPage(sinktest.PageID(2), "other database's row", sinktest.Base, sinktest.Base)
	otherDB := "0d0d0d0d-0000-4000-8000-000000000009"
	for _, p := range []*sink.Page{row, other} {
		db := p.DatabaseID
		if p == other {
			db = otherDB
		}
		if _, err := c.Exec(ctx, `INSERT INTO pages (connection_id, page_id, parent_type, parent_id, database_id, title,
			last_edited_time, properties, object, blocks, synced_at, version_edited_at, version_observed_at)
			VALUES ($1, $2, 'database_id', $3, $7, $4, $5, $6::jsonb -> 'properties', $6, '[]', $5, $5, $5)`,
			sinktest.Conn, p.ID, db, p.Title, sinktest.Base, string(p.Object), db); err != nil {
			t.Fatal(err)
		}
	}

	s := open(t, dsn, pgsink.Options{})
	var applied int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&applied); err != nil || applied != migrations {
		t.Fatalf("schema_migrations after Open: %d, %v", applied, err)
	}
	got, st, err := s.GetPage(ctx, sinktest.Conn, row.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "legacy row" || got.DataSourceID != "" || !sinktest.JSONEqual(t, got.Object, row.Object) || !st.LastEditedTime.Equal(sinktest.Base) {
		t.Fatalf("migrated row %+v state %+v", got, st)
	}

	// The database's sole data source is stored: its earlier rows get it.
	dsID := "da7a5000-0000-4000-8000-00000000000a"
	ds := sinktest.NewDataSource(dsID, row.DatabaseID, "Tasks", sinktest.Base, sinktest.Base.Add(time.Minute))
	ds.SoleSource = true
	if w, err := s.PutDataSource(ctx, ds); err != nil || !w {
		t.Fatalf("PutDataSource: %v %v", w, err)
	}
	got, st2, err := s.GetPage(ctx, sinktest.Conn, row.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.DataSourceID != dsID || st2.Version != st.Version {
		t.Errorf("row after its data source: data source %q (want %q), version %v (want %v)", got.DataSourceID, dsID, st2.Version, st.Version)
	}
	if got, _, _ := s.GetPage(ctx, sinktest.Conn, other.ID); got.DataSourceID != "" {
		t.Errorf("another database's row got data source %q", got.DataSourceID)
	}
	// Without SoleSource nothing is assigned: a row stored without a data
	// source could belong to any of several.
	legacy3 := sinktest.NewPage(sinktest.PageID(3), "r3", sinktest.Base, sinktest.Base)
	legacy3.DatabaseID, legacy3.ParentID = otherDB, otherDB
	if _, err := s.PutPage(ctx, legacy3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutDataSource(ctx, sinktest.NewDataSource("da7a5000-0000-4000-8000-00000000000b", otherDB, "A", sinktest.Base, sinktest.Base)); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.GetPage(ctx, sinktest.Conn, legacy3.ID); got.DataSourceID != "" {
		t.Errorf("row of a database with several data sources got %q", got.DataSourceID)
	}
	var schemaType string
	if err := c.QueryRow(ctx, `SELECT schema->'Estimate'->>'type' FROM data_sources WHERE data_source_id = $1`, dsID).Scan(&schemaType); err != nil || schemaType != "number" {
		t.Errorf("data source schema column: %q %v", schemaType, err)
	}
}

func TestSchemaOption(t *testing.T) {
	t.Parallel()
	dsn := srv.NewDatabase(t)
	a := open(t, dsn, pgsink.Options{Schema: "tenant a"})
	b := open(t, dsn, pgsink.Options{Schema: "tenant_b"})
	ctx := context.Background()
	if _, err := a.PutPage(ctx, sinktest.NewPage(sinktest.PageID(1), "in a", sinktest.Base, sinktest.Base)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, sinktest.Conn, sink.KindPage, sinktest.PageID(1)); err == nil {
		t.Error("schemas are not isolated")
	}
	var n int
	if err := connect(t, dsn).QueryRow(ctx, `SELECT count(*) FROM "tenant a".pages`).Scan(&n); err != nil || n != 1 {
		t.Errorf("rows in schema \"tenant a\": %d, %v", n, err)
	}
}

// TestStoredColumns checks what lands in the columns users query: the
// properties and schema columns, the tombstone, and NUL replacement.
func TestStoredColumns(t *testing.T) {
	t.Parallel()
	dsn := srv.NewDatabase(t)
	s := open(t, dsn, pgsink.Options{})
	ctx := context.Background()
	p := sinktest.NewPage(sinktest.PageID(1), "a\x00b", sinktest.Base, sinktest.Base)
	if _, err := s.PutPage(ctx, p); err != nil {
		t.Fatal(err)
	}
	d := sinktest.NewDatabase("a1b2c3d4-0000-4000-8000-000000000002", "Tasks", sinktest.Base, sinktest.Base)
	if _, err := s.PutDatabase(ctx, d); err != nil {
		t.Fatal(err)
	}
	c := connect(t, dsn)
	var title, plain, estimate, dbID, nested string
	err := c.QueryRow(ctx, `SELECT title, properties->'Name'->'title'->0->>'plain_text', properties->'Estimate'->>'number',
		database_id::text, blocks->1->'children'->0->'paragraph'->'rich_text'->0->>'plain_text'
		FROM pages WHERE page_id = $1`, p.ID).Scan(&title, &plain, &estimate, &dbID, &nested)
	if err != nil {
		t.Fatal(err)
	}
	if title != "a\uFFFDb" || plain != "a\uFFFDb" || estimate != "13.5" || dbID != p.DatabaseID || nested != "nested" {
		t.Errorf("got title %q plain %q estimate %q database %q nested %q", title, plain, estimate, dbID, nested)
	}
	var schemaType string
	if err := c.QueryRow(ctx, `SELECT schema->'Estimate'->>'type' FROM databases`).Scan(&schemaType); err != nil || schemaType != "number" {
		t.Errorf("database schema column: %q %v", schemaType, err)
	}
	if err := s.DeletePage(ctx, sinktest.Conn, p.ID, sinktest.Base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var rows int
	var deleted *time.Time
	if err := c.QueryRow(ctx, `SELECT count(*), max(deleted_at) FROM pages`).Scan(&rows, &deleted); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || deleted == nil {
		t.Errorf("tombstone: %d rows, deleted_at %v", rows, deleted)
	}
}

// TestConcurrentSinks runs writers through several sinks (separate pools,
// as separate processes would) on one page: the newest version wins.
func TestConcurrentSinks(t *testing.T) {
	t.Parallel()
	dsn := srv.NewDatabase(t)
	ctx := context.Background()
	sinks := []*pgsink.Sink{open(t, dsn, pgsink.Options{}), open(t, dsn, pgsink.Options{}), open(t, dsn, pgsink.Options{})}
	id := sinktest.PageID(1)
	var newest sink.Version
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	start := make(chan struct{})
	n := 0
	for i := range 10 {
		for j := range 3 {
			edited := sinktest.Base.Add(time.Duration((i*7)%10) * time.Minute)
			synced := edited.Add(time.Duration(j) * time.Second)
			if v := (sink.Version{EditedAt: edited, ObservedAt: synced}); v.Compare(newest) > 0 {
				newest = v
			}
			s := sinks[n%len(sinks)]
			n++
			wg.Go(func() {
				<-start
				_, err := s.PutPage(ctx, sinktest.NewPage(id, synced.Format(time.RFC3339), edited, synced))
				errs <- err
			})
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	p, st, err := sinks[0].GetPage(ctx, sinktest.Conn, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != newest || p.Title != newest.ObservedAt.Format(time.RFC3339) {
		t.Errorf("final version %v title %q, want %v", st.Version, p.Title, newest)
	}
}

// waitFor polls cond (a database or sink observation) until it holds,
// failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPoolBoundAndCloseWaits holds a row lock so that two writes hold both
// pooled connections: a third call cannot get a connection, the pool never
// opens more than MaxConns (which overrides pool_max_conns in the DSN), and
// Close waits for the two writes, which then succeed.
func TestPoolBoundAndCloseWaits(t *testing.T) {
	t.Parallel()
	dsn := srv.NewDatabase(t)
	ctx := context.Background()
	s := open(t, dsn+"&pool_max_conns=1", pgsink.Options{MaxConns: 2})
	id := sinktest.PageID(1)
	if _, err := s.PutPage(ctx, sinktest.NewPage(id, "v0", sinktest.Base, sinktest.Base)); err != nil {
		t.Fatal(err)
	}

	locker := connect(t, dsn)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT 1 FROM pages WHERE page_id = $1 FOR UPDATE", id); err != nil {
		t.Fatal(err)
	}
	// A separate connection: inside locker's transaction, pg_stat_activity
	// would be a snapshot taken at its first use.
	observer := connect(t, dsn)
	backends := func(cond string) int { // the sink's backends matching cond
		var n int
		if err := observer.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid NOT IN ($1, $2) AND `+cond,
			locker.PgConn().PID(), observer.PgConn().PID()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := range 2 {
		at := sinktest.Base.Add(time.Duration(i+1) * time.Minute)
		wg.Go(func() {
			_, err := s.PutPage(ctx, sinktest.NewPage(id, at.Format(time.RFC3339), at, at))
			errs <- err
		})
	}
	waitFor(t, "two writes blocked on the row lock", func() bool { return backends("wait_event_type = 'Lock'") == 2 })

	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = s.Stat(short, sinktest.Conn, sink.KindPage, id)
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stat with both connections busy: %v, want context.DeadlineExceeded", err)
	}
	if n := backends("true"); n != 2 {
		t.Errorf("sink has %d connections, want MaxConns = 2", n)
	}

	closed := make(chan struct{})
	go func() {
		_ = s.Close()
		close(closed)
	}()
	// With a canceled context a call cannot wait for a connection: it fails
	// with ErrClosed once Close has begun, with context.Canceled before.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	waitFor(t, "Close to refuse new calls", func() bool {
		_, err := s.Stat(canceled, sinktest.Conn, sink.KindPage, id)
		return errors.Is(err, sink.ErrClosed)
	})
	select {
	case <-closed:
		t.Fatal("Close returned while calls were in progress")
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	<-closed
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("write in progress during Close: %v", err)
		}
	}
	// Backends exit asynchronously after their client disconnects.
	waitFor(t, "the sink's backends to exit after Close", func() bool { return backends("true") == 0 })
	var title string
	if err := observer.QueryRow(ctx, "SELECT title FROM pages WHERE page_id = $1", id).Scan(&title); err != nil {
		t.Fatal(err)
	}
	if want := sinktest.Base.Add(2 * time.Minute).Format(time.RFC3339); title != want {
		t.Errorf("title %q, want %q", title, want)
	}
}

func TestOpenErrorsHideSecrets(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://user:s3cr3t-pw@127.0.0.1:notaport/db",
		"postgres://user:s3cr3t-pw@127.0.0.1:1/db?connect_timeout=2",
	} {
		_, err := pgsink.Open(ctx, dsn, pgsink.Options{})
		if err == nil {
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("error reveals the password: %v", err)
		}
	}
}

func TestObjectRoundTripIsSameJSON(t *testing.T) {
	t.Parallel()
	s := open(t, srv.NewDatabase(t), pgsink.Options{})
	ctx := context.Background()
	data, err := os.ReadFile("../../markdown/testdata/page.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Page   json.RawMessage `json:"page"`
		Blocks json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal(data, &fx); err != nil {
		t.Fatal(err)
	}
	blocks, err := record.DecodeBlocks(fx.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sink.PageFromObject(sinktest.Conn, fx.Page, nil, sinktest.Base)
	if err != nil {
		t.Fatal(err)
	}
	p.Blocks = blocks
	if _, err := s.PutPage(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.GetPage(ctx, sinktest.Conn, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !sinktest.JSONEqual(t, got.Object, fx.Page) {
		t.Errorf("object changed through jsonb:\n%s", got.Object)
	}
	sinktest.SameBlocks(t, got.Blocks, blocks)
}

func BenchmarkPGSinkPutPage(b *testing.B) {
	s := open(b, srv.NewDatabase(b), pgsink.Options{})
	ctx := context.Background()
	p := sinktest.NewPage(sinktest.PageID(1), "bench", sinktest.Base, sinktest.Base)
	for i := range 200 {
		p.Blocks = append(p.Blocks, sink.Block{ID: fmt.Sprintf("b10c%04x-1111-4222-8333-000000000000", i), Type: "paragraph",
			Raw: json.RawMessage(fmt.Sprintf(`{"object":"block","id":"b10c%04x-1111-4222-8333-000000000000","type":"paragraph","has_children":false,`+
				`"paragraph":{"rich_text":[{"type":"text","text":{"content":"Paragraph %d of the benchmark page.","link":null},"plain_text":"Paragraph %d of the benchmark page.","href":null}],"color":"default"}}`, i, i, i))})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p.SyncedAt = sinktest.Base.Add(time.Duration(i) * time.Millisecond)
		if w, err := s.PutPage(ctx, p); err != nil || !w {
			b.Fatalf("PutPage: %v %v", w, err)
		}
	}
}
