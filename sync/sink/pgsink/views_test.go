package pgsink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/pgsink"
	"github.com/notionsync/notionsync/sync/sink/sinktest"
)

const (
	vConn = "conn-views"
	vDB   = "dddddddd-0000-4000-8000-00000000000a"
	vDS   = "e1e2e3e4-0000-4000-8000-00000000000a"
	vView = "ds_e1e2e3e4_tasks"
)

var vBase = time.Date(2026, 12, 6, 14, 5, 0, 0, time.UTC)

func vSource(title string, edited time.Time, props string) *sink.DataSource {
	t, _ := json.Marshal(title)
	obj := fmt.Sprintf(`{"object":"data_source","id":%q,"last_edited_time":%q,"parent":{"type":"database_id","database_id":%q},`+
		`"title":[{"type":"text","text":{"content":%s},"plain_text":%s}],"properties":{%s}}`, vDS, edited.Format(time.RFC3339), vDB, t, t, props)
	return &sink.DataSource{ConnectionID: vConn, ID: vDS, DatabaseID: vDB, Title: title,
		LastEditedTime: edited, Object: json.RawMessage(obj), SyncedAt: edited.Add(time.Second)}
}

func vRow(n int, edited time.Time, props string) *sink.Page {
	id := fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", n)
	obj := fmt.Sprintf(`{"object":"page","id":%q,"last_edited_time":%q,"parent":{"type":"data_source_id","data_source_id":%q,"database_id":%q},"properties":{%s}}`,
		id, edited.Format(time.RFC3339), vDS, vDB, props)
	return &sink.Page{ConnectionID: vConn, ID: id, ParentType: "data_source_id", ParentID: vDS, DatabaseID: vDB, DataSourceID: vDS,
		LastEditedTime: edited, Object: json.RawMessage(obj), SyncedAt: edited.Add(time.Second)}
}

const vSchema = `"Name":{"type":"title","title":{}},"Points":{"type":"number","number":{}},"Done":{"type":"checkbox","checkbox":{}},` +
	`"Due":{"type":"date","date":{}},"Stage":{"type":"status","status":{}},"Tags":{"type":"multi_select","multi_select":{}},` +
	`"Owner":{"type":"people","people":{}},"Blocks":{"type":"relation","relation":{}},"Site":{"type":"url","url":{}},` +
	`"Created":{"type":"created_time","created_time":{}},"Calc":{"type":"formula","formula":{"expression":"1"}}`

func vProps(title string, points string, done bool) string {
	return fmt.Sprintf(`"Name":{"type":"title","title":[{"plain_text":%q},{"plain_text":" part two"}]},`+
		`"Points":{"type":"number","number":%s},"Done":{"type":"checkbox","checkbox":%v},`+
		`"Due":{"type":"date","date":{"start":"2026-12-06T14:05:00.000+00:00","end":"2026-12-07T09:00:00.000+00:00"}},`+
		`"Stage":{"type":"status","status":{"name":"Doing"}},"Tags":{"type":"multi_select","multi_select":[{"name":"a"},{"name":"b"}]},`+
		`"Owner":{"type":"people","people":[{"object":"user","id":"u1"}]},"Blocks":{"type":"relation","relation":[{"id":"r1"},{"id":"r2"}]},`+
		`"Site":{"type":"url","url":"https://example.com"},"Created":{"type":"created_time","created_time":"2026-12-01T10:00:00.000Z"},`+
		`"Calc":{"type":"formula","formula":{"type":"number","number":1}}`, title, points, done)
}

// viewColumns returns the view's columns and their types, in order.
func viewColumnTypes(t *testing.T, c *pgx.Conn, view string) []string {
	t.Helper()
	rows, err := c.Query(context.Background(), `SELECT column_name || ' ' || data_type FROM information_schema.columns
WHERE table_name = $1 ORDER BY ordinal_position`, view)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

// A data source gets a view with its properties as typed columns, live
// rows only, re-created when its schema or title changes and dropped with
// it.
func TestDataSourceView(t *testing.T) {
	t.Parallel()
	dsn := srv.NewDatabase(t)
	s := open(t, dsn, pgsink.Options{})
	c := connect(t, dsn)
	ctx := context.Background()
	if _, err := s.PutDataSource(ctx, vSource("Tasks", vBase, vSchema)); err != nil {
		t.Fatal(err)
	}
	for i, p := range []*sink.Page{vRow(1, vBase, vProps("First", "3.5", true)), vRow(2, vBase, vProps("Second", "null", false)), vRow(3, vBase, vProps("Gone", "1", true))} {
		if _, err := s.PutPage(ctx, p); err != nil {
			t.Fatal(i, err)
		}
	}
	if err := s.DeletePage(ctx, vConn, "aaaaaaaa-0000-4000-8000-000000000003", vBase.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	want := "[connection_id text page_id uuid page_last_edited_time timestamp with time zone name text points numeric done boolean " +
		"due timestamp with time zone due_end timestamp with time zone stage text tags ARRAY owner ARRAY owner_names ARRAY blocks ARRAY site text " +
		"created timestamp with time zone calc jsonb]"
	if got := fmt.Sprint(viewColumnTypes(t, c, vView)); got != want {
		t.Errorf("columns:\n%s\nwant\n%s", got, want)
	}

	type row struct {
		name     string
		points   *float64
		done     bool
		due, end time.Time
		stage    string
		tags     []string
		owner    []string
		blocks   []string
		site     string
		created  time.Time
		calc     map[string]any
	}
	rows, err := c.Query(ctx, `SELECT name, points, done, due, due_end, stage, tags, owner, blocks, site, created, calc FROM `+vView+` ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.name, &r.points, &r.done, &r.due, &r.end, &r.stage, &r.tags, &r.owner, &r.blocks, &r.site, &r.created, &r.calc); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d rows, want 2 (the deleted row excluded): %+v", len(got), got)
	}
	r := got[0]
	if r.name != "First part two" || r.points == nil || *r.points != 3.5 || !r.done || !r.due.Equal(vBase) ||
		!r.end.Equal(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)) || r.stage != "Doing" ||
		fmt.Sprint(r.tags, r.owner, r.blocks) != "[a b] [u1] [r1 r2]" || r.site != "https://example.com" ||
		!r.created.Equal(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)) || r.calc["number"] != 1.0 {
		t.Errorf("first row: %+v", r)
	}
	if got[1].points != nil || got[1].done {
		t.Errorf("second row: %+v", got[1])
	}

	// A schema change (a property added, one removed) and a rename
	// re-create the view under its new name.
	if _, err := s.PutDataSource(ctx, vSource("Open tasks", vBase.Add(time.Hour),
		`"Name":{"type":"title","title":{}},"Points":{"type":"number","number":{}},"Email":{"type":"email","email":{}}`)); err != nil {
		t.Fatal(err)
	}
	if cols := viewColumnTypes(t, c, vView); len(cols) != 0 {
		t.Errorf("the old view remains: %v", cols)
	}
	if got, want := fmt.Sprint(viewColumnTypes(t, c, "ds_e1e2e3e4_open_tasks")),
		"[connection_id text page_id uuid page_last_edited_time timestamp with time zone name text points numeric email text]"; got != want {
		t.Errorf("after the schema change: %s, want %s", got, want)
	}
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM ds_e1e2e3e4_open_tasks WHERE points > 1`).Scan(&n); err != nil || n != 1 {
		t.Errorf("SELECT on the new view: %d, %v", n, err)
	}

	if err := s.DeleteDataSource(ctx, vConn, vDS, vBase.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if cols := viewColumnTypes(t, c, "ds_e1e2e3e4_open_tasks"); len(cols) != 0 {
		t.Errorf("a deleted data source keeps its view: %v", cols)
	}
}

// People columns come with their names (<prop>_names, in the same
// order), joined from the synced users, as the Markdown shows them; a user
// the mirror does not know is named by the value itself, else its id.
// created_by / last_edited_by get a <prop>_name.
func TestDataSourceViewPeopleNames(t *testing.T) {
	t.Parallel()
	dsn := srv.NewDatabase(t)
	s := open(t, dsn, pgsink.Options{})
	c := connect(t, dsn)
	ctx := context.Background()
	const alice, bob, gone = "a11ce000-1111-4222-8333-000000000001", "b0b00000-1111-4222-8333-000000000002", "90de0000-1111-4222-8333-000000000003"
	users := []sink.User{sinktest.NewUser(t, alice, "Alice Liddell", "alice@example.com", false), sinktest.NewUser(t, bob, "", "bob@example.com", false)}
	if _, err := s.PutUsers(ctx, &sink.Users{ConnectionID: vConn, Users: users, SyncedAt: vBase}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutDataSource(ctx, vSource("People", vBase,
		`"Name":{"type":"title","title":{}},"Owners":{"type":"people","people":{}},"By":{"type":"created_by","created_by":{}}`)); err != nil {
		t.Fatal(err)
	}
	row := vRow(1, vBase, `"Name":{"type":"title","title":[{"plain_text":"r"}]},`+
		`"Owners":{"type":"people","people":[{"object":"user","id":"`+bob+`"},{"object":"user","id":"`+strings.ToUpper(alice)+`"},`+
		`{"object":"user","id":"`+gone+`","name":"Former Member"},{"object":"user","id":"not-a-uuid"}]},`+
		`"By":{"type":"created_by","created_by":{"object":"user","id":"`+alice+`"}}`)
	if _, err := s.PutPage(ctx, row); err != nil {
		t.Fatal(err)
	}
	var ids, names []string
	var by, byName string
	if err := c.QueryRow(ctx, `SELECT owners, owners_names, by, by_name FROM ds_e1e2e3e4_people`).Scan(&ids, &names, &by, &byName); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(names), "[bob@example.com Alice Liddell Former Member not-a-uuid]"; got != want || len(ids) != 4 {
		t.Errorf("owners %v, names %s, want %s", ids, got, want)
	}
	if by != alice || byName != "Alice Liddell" {
		t.Errorf("created by %q named %q", by, byName)
	}
}

// Property names are hostile input: quotes, semicolons, 200 characters,
// names equal after slugging. The view is created, its columns are
// distinct and at most 63 bytes, and each reads its own property.
func TestDataSourceViewHostileNames(t *testing.T) {
	t.Parallel()
	dsn := srv.NewDatabase(t)
	s := open(t, dsn, pgsink.Options{})
	c := connect(t, dsn)
	ctx := context.Background()
	evil := `x"; DROP TABLE pages; --`
	quote := `O'Brien's ') OR 1=1 --`
	long := strings.Repeat("Very long name ", 14)[:200]
	names := []string{evil, quote, long, long + "!", "Due date", "due-date", "DUE DATE", "page_id", "", "日本語"}
	var schema, props []string
	schema = append(schema, `"Title; DROP":{"type":"title","title":{}}`)
	props = append(props, `"Title; DROP":{"type":"title","title":[{"plain_text":"row"}]}`)
	for i, n := range names {
		k, _ := json.Marshal(n)
		schema = append(schema, fmt.Sprintf(`%s:{"type":"rich_text","rich_text":{}}`, k))
		props = append(props, fmt.Sprintf(`%s:{"type":"rich_text","rich_text":[{"plain_text":"v%d"}]}`, k, i))
	}
	title := `Tasks"; DROP VIEW x; --`
	if _, err := s.PutDataSource(ctx, vSource(title, vBase, strings.Join(schema, ","))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutPage(ctx, vRow(1, vBase, strings.Join(props, ","))); err != nil {
		t.Fatal(err)
	}
	view := "ds_e1e2e3e4_tasks_drop_view_x"
	cols := viewColumnTypes(t, c, view)
	if len(cols) != 3+1+len(names) {
		t.Fatalf("view %s has columns %q", view, cols)
	}
	seen := map[string]bool{}
	for _, col := range cols {
		name, _, _ := strings.Cut(col, " ")
		if seen[name] || len(name) > 63 {
			t.Errorf("column %q duplicated or too long", name)
		}
		seen[name] = true
	}
	// Each column reads its own property: v0..v9 in schema order.
	rows, err := c.Query(ctx, `SELECT * FROM `+view)
	if err != nil {
		t.Fatal(err)
	}
	var vals [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		vals = append(vals, v)
	}
	if err := rows.Err(); err != nil || len(vals) != 1 {
		t.Fatalf("rows %v, %v", vals, err)
	}
	if got := fmt.Sprint(vals[0][3:]); got != "[row v0 v1 v2 v3 v4 v5 v6 v7 v8 v9]" {
		t.Errorf("values %s, columns %q", got, cols)
	}
	var tables int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pages`).Scan(&tables); err != nil || tables != 1 {
		t.Errorf("pages: %d, %v", tables, err)
	}
	t.Logf("columns: %q", cols)
}
