package sink_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/notionsync/notionsync/internal/pgtest"
	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/filesink"
	"github.com/notionsync/notionsync/sync/sink/pgsink"
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

func TestOpenByURL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pgDSN := srv.NewDatabase(t)
	tests := []struct {
		url  string
		want any
	}{
		{"file://" + filepath.Join(dir, "a"), (*filesink.Sink)(nil)},
		{"FILE://" + filepath.Join(dir, "b"), (*filesink.Sink)(nil)},
		{filepath.Join(dir, "c"), (*filesink.Sink)(nil)},
		{pgDSN, (*pgsink.Sink)(nil)},
		{"postgresql://" + strings.TrimPrefix(pgDSN, "postgres://"), (*pgsink.Sink)(nil)},
	}
	for _, tt := range tests {
		s, err := sink.Open(ctx, tt.url, sink.Options{})
		if err != nil {
			t.Fatalf("Open(%q): %v", tt.url, err)
		}
		if fmt.Sprintf("%T", s) != fmt.Sprintf("%T", tt.want) {
			t.Errorf("Open(%q) = %T, want %T", tt.url, s, tt.want)
		}
		if _, ok := s.(sink.Reader); !ok {
			t.Errorf("%T is not a Reader", s)
		}
		p := sinktest.NewPage(sinktest.PageID(1), "x", sinktest.Base, sinktest.Base)
		if w, err := s.PutPage(ctx, p); err != nil || !w {
			t.Errorf("PutPage through %q: %v %v", tt.url, w, err)
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a", sinktest.Conn, "pages", sinktest.PageID(1)+".json")); err != nil {
		t.Errorf("file:// did not write under its path: %v", err)
	}
	for _, u := range []string{"redis://user:secret@localhost/0", "s3://bucket/x", "file://"} {
		_, err := sink.Open(ctx, u, sink.Options{})
		if !errors.Is(err, sink.ErrUnsupportedURL) {
			t.Errorf("Open(%q): %v, want ErrUnsupportedURL", u, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error reveals credentials: %v", err)
		}
	}
}

func TestPageFromObject(t *testing.T) {
	obj := []byte(`{"object":"page","id":"59833787-2cf9-4fdf-8782-e53db20768a5","last_edited_time":"2024-03-02T17:45:00.000Z",
		"parent":{"type":"data_source_id","data_source_id":"11111111-2222-4333-8444-555555555555","database_id":"d9824bdc-8445-4327-be8b-5b47500af6ce"},
		"in_trash":true,"properties":{"Tags":{"type":"multi_select","multi_select":[]},"Name":{"type":"title","title":[{"plain_text":"Hello "},{"plain_text":"world"}]}}}`)
	p, err := sink.PageFromObject("c", obj, nil, sinktest.Base)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "59833787-2cf9-4fdf-8782-e53db20768a5" || p.Title != "Hello world" || !p.Archived ||
		p.DatabaseID != "d9824bdc-8445-4327-be8b-5b47500af6ce" || p.ParentType != "data_source_id" ||
		p.ParentID != "11111111-2222-4333-8444-555555555555" || !p.LastEditedTime.Equal(sinktest.Base) {
		t.Errorf("got %+v", p)
	}
	if _, err := sink.PageFromObject("c", []byte(`{"object":"database"}`), nil, sinktest.Base); !errors.Is(err, sink.ErrInvalidObject) {
		t.Errorf("database object as page: %v", err)
	}
	d, err := sink.DatabaseFromObject("c", []byte(`{"object":"database","id":"d9824bdc84454327be8b5b47500af6ce","title":[{"plain_text":"Tasks"}],"archived":true,"last_edited_time":"2024-03-02T17:45:00.000Z"}`), sinktest.Base)
	if err != nil || d.Title != "Tasks" || !d.Archived {
		t.Errorf("DatabaseFromObject: %+v %v", d, err)
	}
	b, err := sink.BlockFromRaw([]byte(`{"object":"block","id":"b1","type":"toggle","has_children":true,"toggle":{}}`))
	if err != nil || b.ID != "b1" || b.Type != "toggle" || !b.HasChildren {
		t.Errorf("BlockFromRaw: %+v %v", b, err)
	}
}
