package filesink

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// BenchmarkIndexFlush measures one index flush of a connection holding
// 10,000 pages (100 databases of 50 rows, 5,000 nested pages, each page
// linking three others) after one page changed: what every IndexDelay
// costs while a sync writes. Reproduce with
//
//	go test -run '^$' -bench IndexFlush -benchmem ./sync/sink/filesink/
func BenchmarkIndexFlush(b *testing.B) {
	const pages, dbs, rowsPerDB = 10_000, 100, 50
	root := b.TempDir()
	s, err := Open(root, Options{IndexDelay: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	conn := "bench"
	id := func(kind byte, n int) string { return fmt.Sprintf("%c0000000-0000-4000-8000-%012d", kind, n) }
	c := s.index.conn(conn)
	c.loaded = true
	t0 := time.Date(2026, 12, 6, 14, 5, 0, 0, time.UTC)
	for i := range dbs {
		c.objects[id('d', i)] = &indexEntry{Kind: record.KindDatabase, Title: fmt.Sprintf("Database %d", i),
			Parent: &indexParent{Type: "page_id", ID: id('a', i)}, LastEditedTime: t0, VersionEditedAt: t0}
	}
	for i := range pages {
		e := &indexEntry{Kind: record.KindPage, Title: fmt.Sprintf("Page %d about things", i), LastEditedTime: t0, VersionEditedAt: t0,
			Links: []string{id('a', (i+1)%pages), id('a', (i+7)%pages), id('a', (i+100)%pages)}, Unresolved: []string{}}
		switch {
		case i < dbs*rowsPerDB:
			e.Parent = &indexParent{Type: "database_id", ID: id('d', i%dbs)}
		case i < 7_500:
			e.Parent = &indexParent{Type: "workspace"}
		default:
			e.Parent = &indexParent{Type: "page_id", ID: id('a', i-2_500)}
		}
		c.objects[id('a', i)] = e
		c.pending[id('a', i)] = true
	}
	for i := range dbs { // database documents, so their Markdown is written
		db := &record.Database{ConnectionID: conn, ID: id('d', i), ParentType: "page_id", ParentID: id('a', i),
			Title: fmt.Sprintf("Database %d", i), LastEditedTime: t0, Object: []byte(`{"object":"database","properties":{}}`), SyncedAt: t0}
		if _, err := s.PutDatabase(context.Background(), db); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := s.index.flush(ctx, conn); err != nil {
		b.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(root, conn, "manifest.json"))
	if err != nil {
		b.Fatal(err)
	}
	idx, err := os.Stat(filepath.Join(root, conn, "index.md"))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		// One row changed: its database's Markdown is rewritten too.
		c.mu.Lock()
		e := *c.objects[id('a', 0)]
		e.Title = fmt.Sprintf("Renamed %d", i)
		e.VersionEditedAt = e.VersionEditedAt.Add(time.Second)
		c.objects[id('a', 0)] = &e
		c.pending[id('a', 0)] = true
		c.mu.Unlock()
		if err := s.index.flush(ctx, conn); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(info.Size()), "manifest-bytes")
	b.ReportMetric(float64(idx.Size()), "index.md-bytes")
}
