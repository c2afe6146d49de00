package sinktest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/record"
)

// FileStore is what RunFileGC needs: a Store that keeps files and collects
// the orphaned ones.
type FileStore interface {
	Store
	record.FileStore
	record.FileCollector
}

// Clock is a settable clock for RunFileGC's stores.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// FileFactory returns a new, empty FileStore for t whose clock is now.
type FileFactory func(t *testing.T, now func() time.Time) FileStore

// RunFileGC checks CollectFiles: a file whose last reference went away (a
// block removed from a page, a page deleted) is deleted only after grace
// since a pass first found it orphaned; a file a sync was handed again
// (PutFile of the same content for another object not written yet) is
// kept; files of live pages, databases and data sources are kept; the
// key index forgets deleted files and the usage shrinks.
func RunFileGC(t *testing.T, newStore FileFactory) {
	t.Parallel()
	ctx := context.Background()
	clk := &Clock{t: Base.Add(time.Hour)}
	s := newStore(t, clk.Now)
	const grace = time.Hour
	put := func(key, objectID, body string) record.FileLink {
		t.Helper()
		l, err := s.PutFile(ctx, Conn, record.FileMeta{Key: key, ObjectID: objectID, Name: key[strings.LastIndex(key, "/")+1:]}, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	// wantOrphans < 0: not checked (a file handed out to a sync for an
	// object not written yet counts as an orphan in one backend, not in
	// the other).
	gc := func(wantOrphans, wantDeleted int) {
		t.Helper()
		got, err := s.CollectFiles(ctx, Conn, grace)
		if err != nil {
			t.Fatal(err)
		}
		if wantOrphans >= 0 && got.Orphans != wantOrphans || got.Deleted != wantDeleted {
			t.Fatalf("collection %+v, want %d orphans, %d deleted", got, wantOrphans, wantDeleted)
		}
	}
	readable := func(l record.FileLink) bool {
		t.Helper()
		rc, err := s.OpenFile(ctx, Conn, l)
		if errors.Is(err, record.ErrNotFound) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
		return true
	}
	p1, p2, p3 := PageID(0x6c1), PageID(0x6c2), PageID(0x6c3)
	db, ds := "d9824bdc-8445-4327-be8b-5b47500a6c10", "d9824bdc-8445-4327-be8b-5b47500a6c11"
	const host = "https://s3.example/ws/"
	a, b := put(host+"a/a.png", p1, "bytes of a"), put(host+"b/b.pdf", p1, "bytes of b")
	c := put(host+"c/c.txt", p2, "bytes of c")
	d := put(host+"d/cover.png", db, "bytes of d")
	e := put(host+"e/icon.png", ds, "bytes of e")
	edited := Base
	page := func(id string, files ...record.FileLink) {
		t.Helper()
		edited = edited.Add(time.Minute)
		p := NewPage(id, "files", edited, clk.Now())
		p.Files = files
		put2(t, s, p)
	}
	page(p1, a, b)
	page(p2, c)
	dbo := NewDatabase(db, "db", Base, clk.Now())
	dbo.Files = []record.FileLink{d}
	if _, err := s.PutDatabase(ctx, dbo); err != nil {
		t.Fatal(err)
	}
	dso := NewDataSource(ds, db, "ds", Base, clk.Now())
	dso.Files = []record.FileLink{e}
	if _, err := s.PutDataSource(ctx, dso); err != nil {
		t.Fatal(err)
	}
	gc(0, 0)

	// b's block is removed from p1; p2 is deleted: b and c are orphans,
	// kept for grace.
	page(p1, a)
	if err := s.DeletePage(ctx, Conn, p2, clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	gc(2, 0)
	clk.Advance(grace / 2)
	gc(2, 0)
	// A sync hands c out again (another page, p3, references the same
	// content and is not written yet) before grace has passed.
	c3 := put(host+"c3/c.txt", p3, "bytes of c")
	clk.Advance(grace/2 + time.Minute)
	usage0, _ := s.FileUsage(ctx, Conn)
	gc(-1, 1)
	if readable(b) {
		t.Error("orphan b is still stored after grace")
	}
	if _, err := s.FileByKey(ctx, Conn, b.Key); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("the key of deleted b still resolves: %v", err)
	}
	for _, l := range []record.FileLink{a, c, d, e} {
		if !readable(l) {
			t.Errorf("file %s (referenced, or handed out again) was deleted", l.Key)
		}
	}
	if usage, _ := s.FileUsage(ctx, Conn); usage != usage0-b.Size {
		t.Errorf("usage %d after deleting %d of %d", usage, b.Size, usage0)
	}
	// p3 is written: c is referenced again and stays.
	page(p3, c3)
	clk.Advance(3 * grace)
	gc(0, 0)
	if !readable(c) {
		t.Error("c, referenced by p3, was deleted")
	}
	// A put of b's content again stores it anew.
	if l := put(host+"b/b.pdf", p1, "bytes of b"); !l.Added || !readable(l) {
		t.Errorf("b put again: %+v", l)
	}
}

func put2(t *testing.T, s sink.Sink, p *sink.Page) {
	t.Helper()
	if _, err := s.PutPage(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}
