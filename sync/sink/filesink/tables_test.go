package filesink_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/linkcheck"
	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/filesink"
)

const (
	tblDB = "dddddddd-0000-4000-8000-000000000009"
	tblDS = "eeeeeeee-0000-4000-8000-000000000009"
)

// tblDatabase is a 2025-09-03 database: a container listing its one data
// source.
func tblDatabase(edited time.Time) *sink.Database {
	obj := fmt.Sprintf(`{"object":"database","id":%q,"last_edited_time":%q,"parent":{"type":"workspace","workspace":true},`+
		`"title":[{"type":"text","text":{"content":"Tasks"},"plain_text":"Tasks"}],"description":[],`+
		`"data_sources":[{"id":%q,"name":"Tasks"}]}`, tblDB, edited.Format(time.RFC3339), tblDS)
	return &sink.Database{ConnectionID: idxConn, ID: tblDB, ParentType: "workspace", Title: "Tasks",
		LastEditedTime: edited, Object: json.RawMessage(obj), SyncedAt: edited.Add(time.Second)}
}

// tblSource has the given properties (JSON members after the title).
func tblSource(edited time.Time, extra string) *sink.DataSource {
	obj := fmt.Sprintf(`{"object":"data_source","id":%q,"last_edited_time":%q,"parent":{"type":"database_id","database_id":%q},`+
		`"title":[{"type":"text","text":{"content":"Tasks"},"plain_text":"Tasks"}],`+
		`"properties":{"Name":{"id":"title","type":"title","title":{}}%s}}`, tblDS, edited.Format(time.RFC3339), tblDB, extra)
	return &sink.DataSource{ConnectionID: idxConn, ID: tblDS, DatabaseID: tblDB, Title: "Tasks",
		LastEditedTime: edited, Object: json.RawMessage(obj), SyncedAt: edited.Add(time.Second)}
}

const tblSchema = `,"Done":{"id":"a","type":"checkbox","checkbox":{}},"Points":{"id":"b","type":"number","number":{}},` +
	`"Stage":{"id":"c","type":"select","select":{}},"Due":{"id":"d","type":"date","date":{}},` +
	`"Owner":{"id":"e","type":"people","people":{}},"Blocks":{"id":"f","type":"relation","relation":{}},` +
	`"Note, \"quoted\"":{"id":"g","type":"rich_text","rich_text":{}}`

// tblRow is a row of tblDS; props are JSON members after the title.
func tblRow(n int, title string, edited time.Time, props string) *sink.Page {
	id := idxPageID(n)
	t, _ := json.Marshal(title)
	obj := fmt.Sprintf(`{"object":"page","id":%q,"last_edited_time":%q,"parent":{"type":"data_source_id","data_source_id":%q,"database_id":%q},`+
		`"properties":{"Name":{"id":"title","type":"title","title":[{"type":"text","text":{"content":%s},"plain_text":%s}]}%s}}`,
		id, edited.Format(time.RFC3339), tblDS, tblDB, t, t, props)
	return &sink.Page{ConnectionID: idxConn, ID: id, ParentType: "data_source_id", ParentID: tblDS, DatabaseID: tblDB,
		DataSourceID: tblDS, Title: title, LastEditedTime: edited, Object: json.RawMessage(obj), SyncedAt: edited.Add(time.Second)}
}

func rowProps(done bool, points, stage, due, owner, rel, note string) string {
	return fmt.Sprintf(`,"Done":{"type":"checkbox","checkbox":%v},"Points":{"type":"number","number":%s},`+
		`"Stage":{"type":"select","select":{"name":%q}},"Due":{"type":"date","date":{"start":%q,"end":null}},`+
		`"Owner":{"type":"people","people":[{"object":"user","id":%q}]},"Blocks":{"type":"relation","relation":[{"id":%q}],"has_more":false},`+
		`"Note, \"quoted\"":{"type":"rich_text","rich_text":[{"type":"text","text":{"content":%q},"plain_text":%q}]}`,
		done, points, stage, due, owner, rel, note, note)
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s is not valid CSV: %v", path, err)
	}
	return recs
}

// A data source's rows become data_sources/<id>.md (title linking to the
// row, properties as readable columns, relations linking rows) and
// data_sources/<id>.csv; the database lists both; a changed row changes
// them, a tombstoned row leaves them, a deleted data source loses them;
// every link resolves.
func TestDataSourceTables(t *testing.T) {
	root := t.TempDir()
	s := openIndexed(t, root)
	ctx := context.Background()
	if _, err := s.PutDatabase(ctx, tblDatabase(idxBase)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutDataSource(ctx, tblSource(idxBase, tblSchema)); err != nil {
		t.Fatal(err)
	}
	user := "11111111-0000-4000-8000-000000000001"
	mustPut(t, s, tblRow(1, "Write spec", idxBase, rowProps(true, "3", "Doing", "2026-12-06T14:05:00.000+00:00", user, idxPageID(2), "a | pipe, \"and\" a comma")))
	mustPut(t, s, tblRow(2, "Ship it", idxBase, rowProps(false, "5.5", "Todo", "2026-12-24", user, idxPageID(99), "")))
	flush(t, s)

	conn := filepath.Join(root, idxConn)
	md := readFile(t, filepath.Join(conn, "data_sources", tblDS+".md"))
	for _, want := range []string{
		"# Tasks\n",
		"Data source of [Tasks](../databases/" + tblDB + ".md). 2 rows.",
		"| Name | Done | Points | Stage | Due | Owner | Blocks | Note, \"quoted\" |",
		"| [Ship it](../pages/" + idxPageID(2) + ".md) | No | 5.5 | Todo | 2026-12-24 | " + user + " | " + idxPageID(99) + " |  |",
		"| [Write spec](../pages/" + idxPageID(1) + ".md) | Yes | 3 | Doing | 2026-12-06 14:05 UTC | " + user + " | [Ship it](../pages/" + idxPageID(2) + ".md) | a \\| pipe, \"and\" a comma |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	recs := readCSV(t, filepath.Join(conn, "data_sources", tblDS+".csv"))
	want := [][]string{
		{"Name", "Done", "Points", "Stage", "Due", "Owner", "Blocks", "Note, \"quoted\""},
		{"Ship it", "false", "5.5", "Todo", "2026-12-24", user, idxPageID(99), ""},
		{"Write spec", "true", "3", "Doing", "2026-12-06T14:05:00.000+00:00", user, "Ship it", "a | pipe, \"and\" a comma"},
	}
	if fmt.Sprint(recs) != fmt.Sprint(want) {
		t.Errorf("CSV:\n%q\nwant\n%q", recs, want)
	}
	dbmd := readFile(t, filepath.Join(conn, "databases", tblDB+".md"))
	if w := "- [Tasks](../data_sources/" + tblDS + ".md) ([CSV](../data_sources/" + tblDS + ".csv))"; !strings.Contains(dbmd, w) {
		t.Errorf("database Markdown lacks %q:\n%s", w, dbmd)
	}

	// A row changes, another is deleted: only live rows, current values.
	mustPut(t, s, tblRow(2, "Ship it now", idxBase.Add(time.Minute), rowProps(true, "8", "Done", "2026-12-24", user, idxPageID(1), "")))
	if err := s.DeletePage(ctx, idxConn, idxPageID(1), idxBase.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	md = readFile(t, filepath.Join(conn, "data_sources", tblDS+".md"))
	if strings.Contains(md, "[Write spec]") || !strings.Contains(md, "| [Ship it now](../pages/"+idxPageID(2)+".md) | Yes | 8 | Done | 2026-12-24 | "+user+" | Write spec |  |") || !strings.Contains(md, " 1 row.") {
		t.Errorf("table after a change and a deletion:\n%s", md)
	}
	if recs := readCSV(t, filepath.Join(conn, "data_sources", tblDS+".csv")); len(recs) != 2 || recs[1][0] != "Ship it now" || recs[1][6] != "Write spec" {
		t.Errorf("CSV after a change and a deletion: %q", recs)
	}
	r, err := linkcheck.Check(conn)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if !r.Targets["data_sources/"+tblDS+".md"] || !r.Targets["data_sources/"+tblDS+".csv"] {
		t.Errorf("nothing links the data source's files: %v", r.Targets)
	}

	// A schema change re-renders the table without any row changing.
	if _, err := s.PutDataSource(ctx, tblSource(idxBase.Add(3*time.Minute), `,"Done":{"id":"a","type":"checkbox","checkbox":{}}`)); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	if recs := readCSV(t, filepath.Join(conn, "data_sources", tblDS+".csv")); fmt.Sprint(recs[0]) != "[Name Done]" {
		t.Errorf("CSV header after a schema change: %q", recs[0])
	}

	if err := s.DeleteDataSource(ctx, idxConn, tblDS, idxBase.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	for _, ext := range []string{".md", ".csv"} {
		if _, err := os.Stat(filepath.Join(conn, "data_sources", tblDS+ext)); !os.IsNotExist(err) {
			t.Errorf("deleted data source still has its %s file (%v)", ext, err)
		}
	}
	if r, err := linkcheck.Check(conn); err != nil || r.Err() != nil {
		t.Fatalf("links after the deletion: %v %v", err, r.Err())
	}
}

// Rows written by another process (no cache entry) are read from their
// documents: a second Sink on the same root renders the same table.
func TestDataSourceTableFromDocuments(t *testing.T) {
	root := t.TempDir()
	s := openIndexed(t, root)
	ctx := context.Background()
	if _, err := s.PutDataSource(ctx, tblSource(idxBase, tblSchema)); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, tblRow(1, "Write spec", idxBase, rowProps(true, "3", "Doing", "2026-12-06", "u", idxPageID(2), "n")))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := filesink.Open(root, filesink.Options{IndexDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	mustPut(t, s2, tblRow(2, "Other", idxBase, rowProps(false, "1", "Todo", "2026-12-07", "u", idxPageID(1), "m")))
	if err := s2.FlushIndex(ctx, idxConn); err != nil {
		t.Fatal(err)
	}
	recs := readCSV(t, filepath.Join(root, idxConn, "data_sources", tblDS+".csv"))
	if len(recs) != 3 || recs[2][0] != "Write spec" || recs[2][2] != "3" || recs[1][6] != "Write spec" {
		t.Errorf("CSV: %q", recs)
	}
}

// A table is rewritten when a page one of its relations links arrives or
// goes, though no row of its own changed: the link follows what the
// mirror holds.
func TestDataSourceTableFollowsLinkedPages(t *testing.T) {
	root := t.TempDir()
	s := openIndexed(t, root)
	ctx := context.Background()
	if _, err := s.PutDataSource(ctx, tblSource(idxBase, tblSchema)); err != nil {
		t.Fatal(err)
	}
	other := idxPageID(50)
	mustPut(t, s, tblRow(1, "Write spec", idxBase, rowProps(true, "3", "Doing", "2026-12-06", "u", other, "n")))
	flush(t, s)
	path := filepath.Join(root, idxConn, "data_sources", tblDS+".md")
	if md := readFile(t, path); strings.Contains(md, "](../pages/"+other+".md)") {
		t.Fatalf("links a page the mirror lacks:\n%s", md)
	}
	mustPut(t, s, idxPage(other, "Elsewhere", "workspace", idxBase))
	flush(t, s)
	if md := readFile(t, path); !strings.Contains(md, "[Elsewhere](../pages/"+other+".md)") {
		t.Errorf("the arrived page is not linked:\n%s", md)
	}
	if err := s.DeletePage(ctx, idxConn, other, idxBase.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	if md := readFile(t, path); strings.Contains(md, "](../pages/"+other+".md)") {
		t.Errorf("still links the deleted page:\n%s", md)
	}
}

// A row stored without a data source (Notion-Version 2022-06-28) is in the
// table of its database's only data source.
func TestDataSourceTableAdoptsLegacyRows(t *testing.T) {
	root := t.TempDir()
	s := openIndexed(t, root)
	if _, err := s.PutDataSource(context.Background(), tblSource(idxBase, tblSchema)); err != nil {
		t.Fatal(err)
	}
	legacy := tblRow(1, "Old row", idxBase, rowProps(true, "3", "Doing", "2026-12-06", "u", idxPageID(2), "n"))
	legacy.DataSourceID, legacy.ParentType, legacy.ParentID = "", "database_id", tblDB
	mustPut(t, s, legacy)
	flush(t, s)
	recs := readCSV(t, filepath.Join(root, idxConn, "data_sources", tblDS+".csv"))
	if len(recs) != 2 || recs[1][0] != "Old row" {
		t.Errorf("CSV: %q", recs)
	}
}
