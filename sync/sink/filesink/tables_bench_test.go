package filesink

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// BenchmarkDataSourceFlush measures one index flush of a connection whose
// one data source holds 10,000 rows (eight properties each: checkbox,
// number, select, date, people, relation, rich text, multi-select) after
// one row changed: the table and CSV of 10,000 rows are rewritten, with
// every row's values taken from the cache. What every IndexDelay costs
// while a sync writes that data source. Reproduce with
//
//	go test -run '^$' -bench DataSourceFlush -benchmem ./sync/sink/filesink/
//
// BenchmarkDataSourceFlushCold is the same without the rendered rows from
// the previous flush (every row rendered again from its cached
// properties): the first flush after a start, or after a schema change.
func BenchmarkDataSourceFlush(b *testing.B) { benchmarkDataSourceFlush(b, false) }

func BenchmarkDataSourceFlushCold(b *testing.B) { benchmarkDataSourceFlush(b, true) }

func benchmarkDataSourceFlush(b *testing.B, cold bool) {
	const rows = 10_000
	root := b.TempDir()
	s, err := Open(root, Options{IndexDelay: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	conn := "bench"
	id := func(kind byte, n int) string { return fmt.Sprintf("%c0000000-0000-4000-8000-%012d", kind, n) }
	db, ds := id('d', 0), id('e', 0)
	t0 := time.Date(2026, 12, 6, 14, 5, 0, 0, time.UTC)
	schema := `{"object":"data_source","properties":{"Name":{"type":"title","title":{}},"Done":{"type":"checkbox"},"Points":{"type":"number"},` +
		`"Stage":{"type":"select"},"Due":{"type":"date"},"Owner":{"type":"people"},"Blocks":{"type":"relation"},"Note":{"type":"rich_text"},"Tags":{"type":"multi_select"}}}`
	if _, err := s.PutDataSource(context.Background(), &record.DataSource{ConnectionID: conn, ID: ds, DatabaseID: db, Title: "Tasks",
		LastEditedTime: t0, Object: json.RawMessage(schema), SyncedAt: t0}); err != nil {
		b.Fatal(err)
	}
	c := s.index.conn(conn)
	c.mu.Lock()
	c.rows = make(map[string]cachedRow, rows)
	for i := range rows {
		e := &indexEntry{Kind: record.KindPage, Title: fmt.Sprintf("Task %d", i), LastEditedTime: t0, VersionEditedAt: t0,
			Parent: &indexParent{Type: "database_id", ID: db}, DataSource: ds}
		c.objects[id('a', i)] = e
		c.pending[id('a', i)] = true
		props := fmt.Sprintf(`{"Name":{"type":"title","title":[{"type":"text","text":{"content":"Task %d"},"plain_text":"Task %d"}]},`+
			`"Done":{"type":"checkbox","checkbox":%v},"Points":{"type":"number","number":%d},"Stage":{"type":"select","select":{"name":"Doing"}},`+
			`"Due":{"type":"date","date":{"start":"2026-12-06T14:05:00.000+00:00","end":null}},"Owner":{"type":"people","people":[{"object":"user","id":%q}]},`+
			`"Blocks":{"type":"relation","relation":[{"id":%q}],"has_more":false},`+
			`"Note":{"type":"rich_text","rich_text":[{"type":"text","text":{"content":"some words about task %d"},"plain_text":"some words about task %d"}]},`+
			`"Tags":{"type":"multi_select","multi_select":[{"name":"alpha"},{"name":"beta"}]}}`,
			i, i, i%2 == 0, i, id('u', i%10), id('a', (i+1)%rows), i, i)
		c.rows[id('a', i)] = cachedRow{version: e.version(), properties: json.RawMessage(props)}
	}
	c.loaded = true
	c.mu.Unlock()
	ctx := context.Background()
	if err := s.index.flush(ctx, conn); err != nil {
		b.Fatal(err)
	}
	md, err := os.Stat(filepath.Join(root, conn, "data_sources", ds+".md"))
	if err != nil {
		b.Fatal(err)
	}
	csv, err := os.Stat(filepath.Join(root, conn, "data_sources", ds+".csv"))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		c.mu.Lock()
		e := *c.objects[id('a', 0)]
		e.Title = fmt.Sprintf("Renamed %d", i)
		e.VersionEditedAt = e.VersionEditedAt.Add(time.Second)
		c.objects[id('a', 0)] = &e
		cr := c.rows[id('a', 0)]
		cr.version = e.version()
		c.rows[id('a', 0)] = cr
		c.pending[id('a', 0)] = true
		c.mu.Unlock()
		if cold {
			c.rendered = nil // only flushes use it, and none runs now
		}
		if err := s.index.flush(ctx, conn); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(md.Size()), "table.md-bytes")
	b.ReportMetric(float64(csv.Size()), "csv-bytes")
}
