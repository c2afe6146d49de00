package sinktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/notionsync/notionsync/sync/sink"
)

// Store is what the suite needs: a Sink that can also read back.
type Store interface {
	sink.Sink
	sink.Reader
	sink.UserStore
}

// Factory returns a new, empty store for t and arranges for it to be closed
// (t.Cleanup). It may be called from parallel subtests.
type Factory func(t *testing.T) Store

// Conn is the connection id the suite writes under.
const Conn = "conn_A-1"

// Base is a minute-aligned time, like Notion's last_edited_time.
var Base = time.Date(2024, 3, 2, 17, 45, 0, 0, time.UTC)

// PageID returns a page id for test n, spelled the way Notion's API does.
func PageID(n int) string { return fmt.Sprintf("5983%04x-2cf9-4fdf-8782-e53db20768a5", n) }

// databaseID is the database rows created by NewPage belong to.
const databaseID = "d9824bdc-8445-4327-be8b-5b47500af6ce"

// NewPage returns a realistic database-row page: a page object with a title
// property and a block tree with a nested list, a block type the Notion
// client cannot decode and a block without Raw.
func NewPage(id, title string, lastEdited, syncedAt time.Time) *sink.Page {
	titleJSON, _ := json.Marshal(title)
	obj := fmt.Sprintf(`{"object":"page","id":%q,"created_time":"2024-03-01T09:10:00.000Z",`+
		`"last_edited_time":%q,"parent":{"type":"database_id","database_id":%q},"archived":false,"in_trash":false,`+
		`"properties":{"Estimate":{"id":"e","type":"number","number":13.5},`+
		`"Name":{"id":"title","type":"title","title":[{"type":"text","text":{"content":%s,"link":null},"plain_text":%s,"href":null}]}},`+
		`"url":"https://www.notion.so/x"}`,
		id, lastEdited.Format("2006-01-02T15:04:05.000Z"), databaseID, titleJSON, titleJSON)
	para := func(bid, text string) sink.Block {
		textJSON, _ := json.Marshal(text)
		raw := fmt.Sprintf(`{"object":"block","id":%q,"type":"paragraph","has_children":false,`+
			`"paragraph":{"rich_text":[{"type":"text","plain_text":%s}],"color":"default"}}`, bid, textJSON)
		return sink.Block{ID: bid, Type: "paragraph", Raw: json.RawMessage(raw)}
	}
	list := sink.Block{
		ID: "b10c0002-1111-4222-8333-000000000002", Type: "bulleted_list_item", HasChildren: true,
		Raw: json.RawMessage(`{"object":"block","id":"b10c0002-1111-4222-8333-000000000002","type":"bulleted_list_item",` +
			`"has_children":true,"bulleted_list_item":{"rich_text":[{"type":"text","plain_text":"item"}]}}`),
		Children: []sink.Block{para("b10c0003-1111-4222-8333-000000000003", "nested")},
	}
	unknown := sink.Block{
		ID: "b10c0004-1111-4222-8333-000000000004", Type: "ai_block",
		Raw: json.RawMessage(`{"object":"block","id":"b10c0004-1111-4222-8333-000000000004","type":"ai_block","ai_block":{"prompt":"x","n":[1,2.5,null]}}`),
	}
	return &sink.Page{
		ConnectionID:   Conn,
		ID:             id,
		ParentType:     "database_id",
		ParentID:       databaseID,
		DatabaseID:     databaseID,
		LastEditedTime: lastEdited,
		Title:          title,
		Object:         json.RawMessage(obj),
		Blocks: []sink.Block{
			para("b10c0001-1111-4222-8333-000000000001", "first "+title),
			list,
			unknown,
			{ID: "b10c0005-1111-4222-8333-000000000005", Type: "divider"},
		},
		SyncedAt: syncedAt,
	}
}

// NewDatabase returns a realistic database object.
func NewDatabase(id, title string, lastEdited, syncedAt time.Time) *sink.Database {
	titleJSON, _ := json.Marshal(title)
	obj := fmt.Sprintf(`{"object":"database","id":%q,"last_edited_time":%q,"title":[{"type":"text","plain_text":%s}],`+
		`"parent":{"type":"page_id","page_id":"59833787-2cf9-4fdf-8782-e53db20768a5"},"archived":false,`+
		`"properties":{"Name":{"id":"title","name":"Name","type":"title","title":{}},"Estimate":{"id":"e","name":"Estimate","type":"number","number":{"format":"number"}}}}`,
		id, lastEdited.Format("2006-01-02T15:04:05.000Z"), titleJSON)
	return &sink.Database{
		ConnectionID: Conn, ID: id, ParentType: "page_id", ParentID: "59833787-2cf9-4fdf-8782-e53db20768a5",
		Title: title, LastEditedTime: lastEdited, Object: json.RawMessage(obj), SyncedAt: syncedAt,
	}
}

// NewDataSource returns a realistic data source object of database dbID
// (Notion-Version 2025-09-03).
func NewDataSource(id, dbID, title string, lastEdited, syncedAt time.Time) *sink.DataSource {
	titleJSON, _ := json.Marshal(title)
	obj := fmt.Sprintf(`{"object":"data_source","id":%q,"last_edited_time":%q,"title":[{"type":"text","plain_text":%s}],`+
		`"parent":{"type":"database_id","database_id":%q},"database_parent":{"type":"page_id","page_id":"59833787-2cf9-4fdf-8782-e53db20768a5"},"archived":false,"in_trash":false,`+
		`"properties":{"Name":{"id":"title","name":"Name","type":"title","title":{}},"Estimate":{"id":"e","name":"Estimate","type":"number","number":{"format":"number"}}}}`,
		id, lastEdited.Format("2006-01-02T15:04:05.000Z"), titleJSON, dbID)
	return &sink.DataSource{
		ConnectionID: Conn, ID: id, DatabaseID: dbID,
		Title: title, LastEditedTime: lastEdited, Object: json.RawMessage(obj), SyncedAt: syncedAt,
	}
}

// JSONEqual reports whether a and b hold the same JSON value.
func JSONEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("invalid JSON %q: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// SameBlocks fails t unless got holds the tree want (Raw compared as JSON;
// a want block without Raw only by id and type).
func SameBlocks(t testing.TB, got, want []sink.Block) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d blocks, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Type != w.Type {
			t.Errorf("block %d: got %s/%s, want %s/%s", i, g.ID, g.Type, w.ID, w.Type)
		}
		if w.Raw != nil {
			if g.HasChildren != w.HasChildren {
				t.Errorf("block %s: HasChildren %v, want %v", w.ID, g.HasChildren, w.HasChildren)
			}
			if !JSONEqual(t, g.Raw, w.Raw) {
				t.Errorf("block %s: Raw\n%s\nwant\n%s", w.ID, g.Raw, w.Raw)
			}
		}
		SameBlocks(t, g.Children, w.Children)
	}
}

func put(t *testing.T, s Store, p *sink.Page) bool {
	t.Helper()
	written, err := s.PutPage(context.Background(), p)
	if err != nil {
		t.Fatalf("PutPage: %v", err)
	}
	return written
}

func stat(t *testing.T, s Store, kind sink.Kind, id string) sink.State {
	t.Helper()
	st, err := s.Stat(context.Background(), Conn, kind, id)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	return st
}

func getPage(t *testing.T, s Store, id string) (*sink.Page, sink.State) {
	t.Helper()
	p, st, err := s.GetPage(context.Background(), Conn, id)
	if err != nil {
		t.Fatalf("GetPage: %v", err)
	}
	return p, st
}

func version(edited, observed time.Time) sink.Version {
	return sink.Version{EditedAt: edited, ObservedAt: observed}
}

// Run runs the conformance suite against stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	ctx := context.Background()
	m := time.Minute

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		want := NewPage(PageID(1), "Launch", Base, Base.Add(30*time.Second+123456789))
		// Ids in any UUID spelling are accepted and normalized.
		in := *want
		in.ID = strings.ToUpper(strings.ReplaceAll(want.ID, "-", ""))
		if !put(t, s, &in) {
			t.Fatal("first write not written")
		}
		got, st := getPage(t, s, want.ID)
		if got.ID != want.ID || got.ConnectionID != Conn || got.Title != want.Title ||
			got.DatabaseID != databaseID || got.ParentType != "database_id" || got.ParentID != databaseID {
			t.Errorf("metadata: got %+v", got)
		}
		synced := want.SyncedAt.Truncate(time.Microsecond)
		if !got.LastEditedTime.Equal(Base) || !got.SyncedAt.Equal(synced) || got.Archived {
			t.Errorf("got LastEditedTime %v SyncedAt %v Archived %v", got.LastEditedTime, got.SyncedAt, got.Archived)
		}
		if !JSONEqual(t, got.Object, want.Object) {
			t.Errorf("Object\n%s\nwant\n%s", got.Object, want.Object)
		}
		SameBlocks(t, got.Blocks, want.Blocks)
		if st.Version != version(Base, synced) || st.Deleted() || st.Unshared() || !st.HasContent() {
			t.Errorf("state %+v", st)
		}
		if st2 := stat(t, s, sink.KindPage, in.ID); st2 != st {
			t.Errorf("Stat %+v, GetPage state %+v", st2, st)
		}
	})

	t.Run("OlderVersionRejected", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		id := PageID(2)
		if !put(t, s, NewPage(id, "new", Base.Add(2*m), Base.Add(3*m))) {
			t.Fatal("not written")
		}
		// Older last_edited_time, even if fetched later, never overwrites.
		if put(t, s, NewPage(id, "old", Base.Add(m), Base.Add(10*m))) {
			t.Error("older version written")
		}
		if got, _ := getPage(t, s, id); got.Title != "new" {
			t.Errorf("title %q, want new", got.Title)
		}
	})

	t.Run("EqualEditedTimeLaterFetchWins", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		id := PageID(3)
		put(t, s, NewPage(id, "A", Base, Base.Add(10*time.Second)))
		if !put(t, s, NewPage(id, "B", Base, Base.Add(40*time.Second))) {
			t.Fatal("same-minute later fetch not written")
		}
		if put(t, s, NewPage(id, "C", Base, Base.Add(20*time.Second))) {
			t.Error("same-minute earlier fetch overwrote a later one")
		}
		// Idempotent: the very same write again is accepted and changes nothing.
		before := stat(t, s, sink.KindPage, id)
		if !put(t, s, NewPage(id, "B", Base, Base.Add(40*time.Second))) {
			t.Error("repeating the same write was rejected")
		}
		got, after := getPage(t, s, id)
		if got.Title != "B" || after != before {
			t.Errorf("after repeat: title %q state %+v, want B %+v", got.Title, after, before)
		}
	})

	t.Run("Tombstone", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		id := PageID(4)
		put(t, s, NewPage(id, "live", Base.Add(3*m), Base.Add(4*m)))
		deletedAt := Base.Add(5*m + 30*time.Second)
		if err := s.DeletePage(ctx, Conn, id, deletedAt); err != nil {
			t.Fatal(err)
		}
		got, st := getPage(t, s, id)
		if !st.Deleted() || !st.DeletedAt.Equal(deletedAt) || !got.Archived {
			t.Fatalf("not a tombstone: %+v", st)
		}
		if got.Object == nil || got.Title != "live" || len(got.Blocks) == 0 {
			t.Error("tombstone lost the stored content")
		}
		if st.Version != version(Base.Add(5*m), deletedAt) {
			t.Errorf("tombstone version %v", st.Version)
		}
		// A copy edited before the deletion's minute never resurrects it.
		if put(t, s, NewPage(id, "stale", Base.Add(3*m), Base.Add(9*m))) {
			t.Error("stale page overwrote the tombstone")
		}
		// Same minute, fetched before the deletion: stale.
		if put(t, s, NewPage(id, "stale", Base.Add(5*m), Base.Add(5*m+20*time.Second))) {
			t.Error("same-minute page fetched before the deletion overwrote the tombstone")
		}
		// A deletion older than the stored version changes nothing.
		if err := s.DeletePage(ctx, Conn, id, Base.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if st2 := stat(t, s, sink.KindPage, id); st2 != st {
			t.Errorf("older deletion changed state: %+v", st2)
		}
		// Same minute, fetched after the deletion: the page was restored.
		if !put(t, s, NewPage(id, "restored", Base.Add(5*m), Base.Add(5*m+40*time.Second))) {
			t.Fatal("restored page rejected")
		}
		got, st = getPage(t, s, id)
		if st.Deleted() || got.Archived || got.Title != "restored" {
			t.Errorf("not resurrected: %+v %q", st, got.Title)
		}
		// An old deletion event arriving late does not delete it again.
		if err := s.DeletePage(ctx, Conn, id, deletedAt); err != nil {
			t.Fatal(err)
		}
		if st := stat(t, s, sink.KindPage, id); st.Deleted() {
			t.Error("late, older deletion applied")
		}
	})

	t.Run("BareTombstone", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		id := PageID(5)
		at := Base.Add(10 * m)
		if err := s.DeletePage(ctx, Conn, id, at); err != nil {
			t.Fatal(err)
		}
		got, st := getPage(t, s, id)
		if !st.Deleted() || st.HasContent() || got.Object != nil || got.Blocks != nil {
			t.Errorf("bare tombstone: %+v %+v", st, got)
		}
		if put(t, s, NewPage(id, "stale", Base.Add(9*m), Base.Add(11*m))) {
			t.Error("page edited before the deletion overwrote the bare tombstone")
		}
		if !put(t, s, NewPage(id, "new", Base.Add(11*m), Base.Add(12*m))) {
			t.Error("page edited after the deletion rejected")
		}
		if st := stat(t, s, sink.KindPage, id); st.Deleted() {
			t.Error("still deleted")
		}
	})

	t.Run("ArchivedPage", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		id := PageID(6)
		live := NewPage(id, "live", Base, Base.Add(m))
		put(t, s, live)
		archived := NewPage(id, "archived", Base.Add(2*m), Base.Add(3*m))
		archived.Archived, archived.Blocks = true, nil
		if !put(t, s, archived) {
			t.Fatal("archived page not written")
		}
		got, st := getPage(t, s, id)
		if !st.Deleted() || !st.DeletedAt.Equal(Base.Add(2*m)) || !got.Archived || got.Title != "archived" {
			t.Errorf("archived: %+v title %q", st, got.Title)
		}
		SameBlocks(t, got.Blocks, live.Blocks) // kept from the live version
		// A later live version (restored and edited) resurrects it.
		if !put(t, s, NewPage(id, "back", Base.Add(4*m), Base.Add(5*m))) {
			t.Fatal("restored page rejected")
		}
		if st := stat(t, s, sink.KindPage, id); st.Deleted() {
			t.Error("still deleted")
		}
	})

	t.Run("ConfirmedTombstone", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		id, dbID := PageID(40), PageID(41)
		live := NewPage(id, "live", Base, Base.Add(m))
		put(t, s, live)
		if _, err := s.PutDatabase(ctx, NewDatabase(dbID, "db", Base, Base.Add(m))); err != nil {
			t.Fatal(err)
		}
		// A confirmation observed before the stored fetch is stale.
		if err := s.Tombstone(ctx, Conn, sink.KindPage, id, sink.ReasonUnshared, Base.Add(30*time.Second)); err != nil {
			t.Fatal(err)
		}
		if st := stat(t, s, sink.KindPage, id); st.Deleted() {
			t.Fatalf("stale confirmation applied: %+v", st)
		}
		at := Base.Add(10*m + 5*time.Second)
		if err := s.Tombstone(ctx, Conn, sink.KindPage, id, sink.ReasonUnshared, at); err != nil {
			t.Fatal(err)
		}
		got, st := getPage(t, s, id)
		if !st.Deleted() || !st.DeletedAt.Equal(at) || st.DeletedReason != sink.ReasonUnshared || !st.Unshared() || !got.Archived {
			t.Fatalf("unshared page not a tombstone with its reason: %+v", st)
		}
		if st.Version != version(Base, at) {
			t.Errorf("tombstone version %v, want the stored edit observed at the confirmation", st.Version)
		}
		if got.Object == nil || got.Title != "live" {
			t.Error("tombstone lost the stored content")
		}
		// Kinds: a database is confirmed gone the same way.
		if err := s.Tombstone(ctx, Conn, sink.KindDatabase, dbID, sink.ReasonRestricted, at); err != nil {
			t.Fatal(err)
		}
		if st := stat(t, s, sink.KindDatabase, dbID); !st.Deleted() || st.DeletedReason != sink.ReasonRestricted || st.Unshared() {
			t.Errorf("database: %+v", st)
		}
		// Shared again with its old last_edited_time (Notion keeps it): a
		// later fetch of the same edit restores the page.
		if !put(t, s, NewPage(id, "back", Base, at.Add(m))) {
			t.Fatal("a fetch after the confirmation was rejected")
		}
		if st := stat(t, s, sink.KindPage, id); st.Deleted() || st.DeletedReason != "" || st.Unshared() {
			t.Errorf("not restored: %+v", st)
		}
		// Objects not stored are ignored; a bad reason is refused.
		if err := s.Tombstone(ctx, Conn, sink.KindPage, PageID(42), sink.ReasonUnshared, at); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, Conn, sink.KindPage, PageID(42)); !errors.Is(err, sink.ErrNotFound) {
			t.Errorf("tombstone of an object never stored: %v", err)
		}
		if err := s.Tombstone(ctx, Conn, sink.KindPage, id, "gone", at); err == nil {
			t.Error("unknown reason accepted")
		}
		// An archived write says why.
		archived := NewPage(id, "trashed", Base.Add(20*m), Base.Add(21*m))
		archived.Archived = true
		put(t, s, archived)
		if st := stat(t, s, sink.KindPage, id); !st.Deleted() || st.DeletedReason != sink.ReasonTrashed {
			t.Errorf("archived page: %+v", st)
		}
	})

	t.Run("RemovedBlocksDisappear", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		id := PageID(43)
		v1 := NewPage(id, "v1", Base, Base.Add(m))
		put(t, s, v1)
		v2 := NewPage(id, "v2", Base.Add(2*m), Base.Add(3*m))
		// The list with its nested paragraph and the unknown block removed.
		v2.Blocks = []sink.Block{v1.Blocks[0], v1.Blocks[3]}
		if !put(t, s, v2) {
			t.Fatal("not written")
		}
		got, _ := getPage(t, s, id)
		SameBlocks(t, got.Blocks, v2.Blocks)
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		want := map[string]bool{}
		for i := range 5 {
			id := PageID(50 + i)
			put(t, s, NewPage(id, "p", Base, Base.Add(m)))
			want[id] = i == 3
		}
		if err := s.DeletePage(ctx, Conn, PageID(53), Base.Add(5*m)); err != nil {
			t.Fatal(err)
		}
		dbID := PageID(60)
		if _, err := s.PutDatabase(ctx, NewDatabase(dbID, "db", Base, Base.Add(m))); err != nil {
			t.Fatal(err)
		}
		// Another connection's objects are not listed.
		other := NewPage(PageID(61), "other", Base, Base.Add(m))
		other.ConnectionID = "conn_B"
		put(t, s, other)
		got := map[string]bool{}
		err := s.List(ctx, Conn, sink.KindPage, func(id string, st sink.State) error {
			got[id] = st.Deleted()
			if !st.HasContent() {
				t.Errorf("%s listed without content: %+v", id, st)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("listed %v, want %v", got, want)
		}
		for id, del := range want {
			if d, ok := got[id]; !ok || d != del {
				t.Errorf("%s: listed %v (deleted %v), want deleted %v", id, ok, d, del)
			}
		}
		var dbs []string
		if err := s.List(ctx, Conn, sink.KindDatabase, func(id string, _ sink.State) error { dbs = append(dbs, id); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(dbs) != 1 || dbs[0] != dbID {
			t.Errorf("databases %v, want [%s]", dbs, dbID)
		}
		stop := errors.New("stop")
		n := 0
		if err := s.List(ctx, Conn, sink.KindPage, func(string, sink.State) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Errorf("fn's error: got %v after %d calls", err, n)
		}
		if err := s.List(ctx, "no-such-conn", sink.KindPage, func(string, sink.State) error { t.Error("called"); return nil }); err != nil {
			t.Errorf("empty connection: %v", err)
		}
		if err := s.List(ctx, "bad conn/..", sink.KindPage, func(string, sink.State) error { return nil }); !errors.Is(err, sink.ErrInvalidID) {
			t.Errorf("bad connection id: %v", err)
		}
	})

	t.Run("Unshared", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		id := PageID(7)
		put(t, s, NewPage(id, "v1", Base, Base.Add(m)))
		// A 404 older than the last successful fetch is stale.
		if err := s.MarkUnshared(ctx, Conn, id, Base.Add(30*time.Second)); err != nil {
			t.Fatal(err)
		}
		if st := stat(t, s, sink.KindPage, id); st.Unshared() {
			t.Fatal("stale 404 applied")
		}
		lost := Base.Add(5 * m)
		if err := s.MarkUnshared(ctx, Conn, id, lost); err != nil {
			t.Fatal(err)
		}
		st := stat(t, s, sink.KindPage, id)
		if !st.Unshared() || !st.UnsharedAt.Equal(lost) || st.Deleted() {
			t.Fatalf("not unshared: %+v", st)
		}
		// Newer content fetched before the 404: written, still unshared.
		if !put(t, s, NewPage(id, "v2", Base.Add(2*m), Base.Add(4*m))) {
			t.Fatal("newer content rejected")
		}
		if st := stat(t, s, sink.KindPage, id); !st.UnsharedAt.Equal(lost) {
			t.Errorf("fetch older than the 404 cleared it: %+v", st)
		}
		// Fetched after the 404: access is back.
		if !put(t, s, NewPage(id, "v3", Base.Add(3*m), Base.Add(6*m))) {
			t.Fatal("newer content rejected")
		}
		if st := stat(t, s, sink.KindPage, id); st.Unshared() {
			t.Errorf("still unshared: %+v", st)
		}
		// A successful fetch after the 404 clears it even when its content
		// loses to the stored version.
		if err := s.MarkUnshared(ctx, Conn, id, Base.Add(7*m)); err != nil {
			t.Fatal(err)
		}
		if put(t, s, NewPage(id, "older", Base.Add(m), Base.Add(8*m))) {
			t.Error("older content written")
		}
		got, st := getPage(t, s, id)
		if st.Unshared() || got.Title != "v3" {
			t.Errorf("after older fetch past the 404: %+v title %q", st, got.Title)
		}
		// Unknown objects are ignored.
		other := PageID(70)
		if err := s.MarkUnshared(ctx, Conn, other, lost); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, Conn, sink.KindPage, other); !errors.Is(err, sink.ErrNotFound) {
			t.Errorf("Stat of unknown object after MarkUnshared: %v", err)
		}
	})

	t.Run("Database", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		id := "a1b2c3d4-0000-4000-8000-000000000002"
		want := NewDatabase(id, "Tasks", Base.Add(m), Base.Add(2*m))
		if w, err := s.PutDatabase(ctx, want); err != nil || !w {
			t.Fatalf("PutDatabase: %v %v", w, err)
		}
		if w, err := s.PutDatabase(ctx, NewDatabase(id, "old", Base, Base.Add(9*m))); err != nil || w {
			t.Errorf("older database: written %v err %v", w, err)
		}
		got, st, err := s.GetDatabase(ctx, Conn, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Title != "Tasks" || got.ParentType != "page_id" || !JSONEqual(t, got.Object, want.Object) || st.Deleted() {
			t.Errorf("database %+v state %+v", got, st)
		}
		if err := s.MarkUnshared(ctx, Conn, id, Base.Add(3*m)); err != nil {
			t.Fatal(err)
		}
		if st := stat(t, s, sink.KindDatabase, id); !st.Unshared() {
			t.Error("database not unshared")
		}
		archived := NewDatabase(id, "Tasks", Base.Add(4*m), Base.Add(5*m))
		archived.Archived = true
		if w, err := s.PutDatabase(ctx, archived); err != nil || !w {
			t.Fatalf("archived database: %v %v", w, err)
		}
		if st := stat(t, s, sink.KindDatabase, id); !st.Deleted() || st.Unshared() {
			t.Errorf("archived database state %+v", st)
		}
		other := "a1b2c3d4-0000-4000-8000-000000000003"
		if err := s.DeleteDatabase(ctx, Conn, other, Base); err != nil {
			t.Fatal(err)
		}
		if st := stat(t, s, sink.KindDatabase, other); !st.Deleted() {
			t.Error("database tombstone missing")
		}
		// Pages and databases are separate namespaces.
		if _, err := s.Stat(ctx, Conn, sink.KindPage, id); !errors.Is(err, sink.ErrNotFound) {
			t.Errorf("Stat page with a database id: %v", err)
		}
	})

	t.Run("DataSource", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		id := "da7a5000-0000-4000-8000-000000000001"
		want := NewDataSource(id, databaseID, "Tasks", Base.Add(m), Base.Add(2*m))
		if w, err := s.PutDataSource(ctx, want); err != nil || !w {
			t.Fatalf("PutDataSource: %v %v", w, err)
		}
		if w, err := s.PutDataSource(ctx, NewDataSource(id, databaseID, "old", Base, Base.Add(9*m))); err != nil || w {
			t.Errorf("older data source: written %v err %v", w, err)
		}
		got, st, err := s.GetDataSource(ctx, Conn, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Title != "Tasks" || got.DatabaseID != databaseID || !JSONEqual(t, got.Object, want.Object) || st.Deleted() ||
			!st.LastEditedTime.Equal(Base.Add(m)) {
			t.Errorf("data source %+v state %+v", got, st)
		}
		// A data source is neither a page nor a database.
		for _, k := range []sink.Kind{sink.KindPage, sink.KindDatabase} {
			if _, err := s.Stat(ctx, Conn, k, id); !errors.Is(err, sink.ErrNotFound) {
				t.Errorf("Stat %s with a data source id: %v", k, err)
			}
		}
		if err := s.MarkUnshared(ctx, Conn, id, Base.Add(3*m)); err != nil {
			t.Fatal(err)
		}
		if st := stat(t, s, sink.KindDataSource, id); !st.Unshared() {
			t.Error("data source not unshared")
		}
		archived := NewDataSource(id, databaseID, "Tasks", Base.Add(4*m), Base.Add(5*m))
		archived.Archived = true
		if w, err := s.PutDataSource(ctx, archived); err != nil || !w {
			t.Fatalf("archived data source: %v %v", w, err)
		}
		if st := stat(t, s, sink.KindDataSource, id); !st.Deleted() || st.Unshared() {
			t.Errorf("archived data source state %+v", st)
		}
		other := "da7a5000-0000-4000-8000-000000000002"
		if err := s.DeleteDataSource(ctx, Conn, other, Base); err != nil {
			t.Fatal(err)
		}
		if st := stat(t, s, sink.KindDataSource, other); !st.Deleted() || st.HasContent() {
			t.Errorf("data source tombstone state %+v", st)
		}
		// A stale copy fetched before the deletion is refused.
		if w, err := s.PutDataSource(ctx, NewDataSource(other, databaseID, "stale", Base.Add(-m), Base.Add(-m))); err != nil || w {
			t.Errorf("stale data source over a tombstone: written %v err %v", w, err)
		}
		// A row names its data source; the sink gives it back.
		row := NewPage(PageID(77), "row", Base, Base)
		row.ParentType, row.ParentID, row.DataSourceID = "data_source_id", id, strings.ToUpper(id)
		put(t, s, row)
		if p, _ := getPage(t, s, row.ID); p.DataSourceID != id || p.DatabaseID != databaseID {
			t.Errorf("row data source %q database %q, want %q %q", p.DataSourceID, p.DatabaseID, id, databaseID)
		}
		// A data source must name its database.
		bad := NewDataSource("da7a5000-0000-4000-8000-000000000003", "", "x", Base, Base)
		if _, err := s.PutDataSource(ctx, bad); !errors.Is(err, sink.ErrInvalidID) {
			t.Errorf("data source without a database: %v", err)
		}
	})

	t.Run("InvalidInput", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		bad := []string{"../../etc/passwd", "..", "", "5983a000-2cf9-4fdf-8782-e53db20768a5/../x",
			"5983a000-2cf9-4fdf-8782-e53db20768a", "5983a000-2cf9-4fdf-8782-e53db20768a5a", "5983a0002cf9-4fdf-8782-e53db20768a5-",
			"g983a000-2cf9-4fdf-8782-e53db20768a5", "5983a000-2cf9-4fdf-8782-e53db20768a5\x00"}
		for _, id := range bad {
			if _, err := s.PutPage(ctx, NewPage(id, "x", Base, Base)); !errors.Is(err, sink.ErrInvalidID) {
				t.Errorf("PutPage id %q: %v", id, err)
			}
			if err := s.DeletePage(ctx, Conn, id, Base); !errors.Is(err, sink.ErrInvalidID) {
				t.Errorf("DeletePage id %q: %v", id, err)
			}
			if err := s.MarkUnshared(ctx, Conn, id, Base); !errors.Is(err, sink.ErrInvalidID) {
				t.Errorf("MarkUnshared id %q: %v", id, err)
			}
			if _, err := s.Stat(ctx, Conn, sink.KindPage, id); !errors.Is(err, sink.ErrInvalidID) {
				t.Errorf("Stat id %q: %v", id, err)
			}
		}
		for _, conn := range []string{"", "../x", "a/b", "a.b", strings.Repeat("c", 129), "x\x00"} {
			p := NewPage(PageID(8), "x", Base, Base)
			p.ConnectionID = conn
			if _, err := s.PutPage(ctx, p); !errors.Is(err, sink.ErrInvalidID) {
				t.Errorf("PutPage connection %q: %v", conn, err)
			}
		}
		p := NewPage(PageID(8), "x", Base, Base)
		p.DatabaseID = "../db"
		if _, err := s.PutPage(ctx, p); !errors.Is(err, sink.ErrInvalidID) {
			t.Errorf("bad DatabaseID: %v", err)
		}
		for name, mutate := range map[string]func(*sink.Page){
			"object not JSON":    func(p *sink.Page) { p.Object = json.RawMessage(`{"object":`) },
			"object not object":  func(p *sink.Page) { p.Object = json.RawMessage(`[1]`) },
			"no object":          func(p *sink.Page) { p.Object = nil },
			"no last_edited":     func(p *sink.Page) { p.LastEditedTime = time.Time{} },
			"block raw not JSON": func(p *sink.Page) { p.Blocks[0].Raw = json.RawMessage(`{]`) },
		} {
			p := NewPage(PageID(9), "x", Base, Base)
			mutate(p)
			if _, err := s.PutPage(ctx, p); !errors.Is(err, sink.ErrInvalidObject) {
				t.Errorf("%s: %v", name, err)
			}
		}
		if _, err := s.Stat(ctx, Conn, sink.KindPage, PageID(9)); !errors.Is(err, sink.ErrNotFound) {
			t.Errorf("invalid writes stored something: %v", err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		if _, err := s.Stat(ctx, Conn, sink.KindPage, PageID(10)); !errors.Is(err, sink.ErrNotFound) {
			t.Errorf("Stat: %v", err)
		}
		if _, _, err := s.GetPage(ctx, Conn, PageID(10)); !errors.Is(err, sink.ErrNotFound) {
			t.Errorf("GetPage: %v", err)
		}
		if _, _, err := s.GetDatabase(ctx, Conn, PageID(10)); !errors.Is(err, sink.ErrNotFound) {
			t.Errorf("GetDatabase: %v", err)
		}
	})

	t.Run("NULInText", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		id := PageID(11)
		p := NewPage(id, "a\x00b", Base, Base)
		p.Blocks[0].Raw = json.RawMessage(`{"object":"block","id":"b10c0001-1111-4222-8333-000000000001","type":"paragraph",` +
			`"paragraph":{"rich_text":[{"plain_text":"x\u0000y \\u0000 \ud83d\ude00 \ud800"}]}}`)
		if !put(t, s, p) {
			t.Fatal("not written")
		}
		got, _ := getPage(t, s, id)
		if got.Title != "a\x00b" && got.Title != "a\uFFFDb" {
			t.Errorf("title %q", got.Title)
		}
		var o struct {
			Properties struct {
				Name struct {
					Title []struct {
						PlainText string `json:"plain_text"`
					} `json:"title"`
				} `json:"Name"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(got.Object, &o); err != nil || len(o.Properties.Name.Title) != 1 {
			t.Fatalf("object: %v %s", err, got.Object)
		}
		if pt := o.Properties.Name.Title[0].PlainText; pt != "a\x00b" && pt != "a\uFFFDb" {
			t.Errorf("plain_text %q", pt)
		}
		var b struct {
			Paragraph struct {
				RichText []struct {
					PlainText string `json:"plain_text"`
				} `json:"rich_text"`
			} `json:"paragraph"`
		}
		if err := json.Unmarshal(got.Blocks[0].Raw, &b); err != nil || len(b.Paragraph.RichText) != 1 {
			t.Fatalf("block: %v %s", err, got.Blocks[0].Raw)
		}
		// The escaped backslash before "u0000" is text, not a NUL escape, and
		// the surrogate pair is one emoji: both survive.
		if pt := b.Paragraph.RichText[0].PlainText; pt != "x\x00y \\u0000 😀 \uFFFD" && pt != "x\uFFFDy \\u0000 😀 \uFFFD" {
			t.Errorf("block text %q", pt)
		}
	})

	t.Run("ConcurrentWritersKeepNewest", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		id := PageID(12)
		type change struct {
			edited, observed time.Time
			del              bool
		}
		var changes []change
		for i := range 6 {
			for j := range 4 {
				changes = append(changes, change{edited: Base.Add(time.Duration(i) * m), observed: Base.Add(time.Duration(i)*m + time.Duration(j)*time.Second)})
			}
		}
		// A deletion in the middle of the history.
		changes = append(changes, change{observed: Base.Add(3*m + 30*time.Second), del: true})
		newest := changes[len(changes)-2]
		rand.Shuffle(len(changes), func(i, j int) { changes[i], changes[j] = changes[j], changes[i] })
		var wg sync.WaitGroup
		errs := make(chan error, len(changes))
		start := make(chan struct{})
		for _, c := range changes {
			wg.Go(func() {
				<-start
				if c.del {
					errs <- s.DeletePage(ctx, Conn, id, c.observed)
					return
				}
				_, err := s.PutPage(ctx, NewPage(id, c.observed.Format(time.RFC3339), c.edited, c.observed))
				errs <- err
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got, st := getPage(t, s, id)
		if st.Version != version(newest.edited, newest.observed) || st.Deleted() || got.Title != newest.observed.Format(time.RFC3339) {
			t.Errorf("final state %+v title %q, want version %v", st, got.Title, version(newest.edited, newest.observed))
		}
	})

	t.Run("Users", func(t *testing.T) {
		t.Parallel()
		testUsers(t, newStore(t))
	})

	t.Run("Close", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		put(t, s, NewPage(PageID(13), "x", Base, Base))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := s.PutPage(ctx, NewPage(PageID(13), "y", Base.Add(m), Base.Add(m))); !errors.Is(err, sink.ErrClosed) {
			t.Errorf("PutPage after Close: %v", err)
		}
		if _, err := s.Stat(ctx, Conn, sink.KindPage, PageID(13)); !errors.Is(err, sink.ErrClosed) {
			t.Errorf("Stat after Close: %v", err)
		}
	})
}

// NewUser returns a user object as GET /v1/users lists it: a person with
// email (email != ""), a person without (email == "", as an integration
// without the user-email capability sees one) or a bot (bot). An empty
// name is null.
func NewUser(t testing.TB, id, name, email string, bot bool) sink.User {
	t.Helper()
	obj := map[string]any{"object": "user", "id": id, "name": nil, "avatar_url": nil}
	if name != "" {
		obj["name"] = name
	}
	switch {
	case bot:
		obj["type"], obj["bot"] = "bot", map[string]any{}
	case email != "":
		obj["type"], obj["person"] = "person", map[string]any{"email": email}
	default:
		obj["type"], obj["person"] = "person", map[string]any{}
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	u, err := sink.UserFromObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func testUsers(t *testing.T, s Store) {
	ctx := context.Background()
	const (
		alice = "a11ce000-1111-4222-8333-000000000001"
		bob   = "b0b00000-1111-4222-8333-000000000002"
		botID = "b0700000-1111-4222-8333-000000000003"
		carol = "ca201000-1111-4222-8333-000000000004"
	)
	if _, err := s.GetUsers(ctx, Conn); !errors.Is(err, sink.ErrNotFound) {
		t.Fatalf("GetUsers before any listing: %v, want ErrNotFound", err)
	}
	putUsers := func(at time.Time, us ...sink.User) bool {
		t.Helper()
		w, err := s.PutUsers(ctx, &sink.Users{ConnectionID: Conn, Users: us, SyncedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	type want struct {
		id, name, email, typ string
		removed              time.Time
	}
	check := func(step string, wantSynced time.Time, ws ...want) *sink.Users {
		t.Helper()
		got, err := s.GetUsers(ctx, Conn)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if !got.SyncedAt.Equal(wantSynced) || len(got.Users) != len(ws) {
			t.Fatalf("%s: synced %v with %d users %+v, want %v with %d", step, got.SyncedAt, len(got.Users), got.Users, wantSynced, len(ws))
		}
		// Removed users come last, in no particular order: compare them
		// by id (ws lists them so).
		removed := slices.IndexFunc(got.Users, func(u sink.User) bool { return !u.RemovedAt.IsZero() })
		if removed >= 0 {
			slices.SortFunc(got.Users[removed:], func(a, b sink.User) int { return strings.Compare(a.ID, b.ID) })
		}
		for i, w := range ws {
			g := got.Users[i]
			if g.ID != w.id || g.Name != w.name || g.Email != w.email || g.Type != w.typ || !g.RemovedAt.Equal(w.removed) {
				t.Errorf("%s: user %d = %s %q %q %s removed %v, want %+v", step, i, g.ID, g.Name, g.Email, g.Type, g.RemovedAt, w)
			}
		}
		return got
	}

	first := []sink.User{
		NewUser(t, alice, "Alice", "alice@example.com", false),
		NewUser(t, strings.ToUpper(strings.ReplaceAll(bob, "-", "")), "", "", false), // no name, no email
		NewUser(t, botID, "Some bot", "", true),
	}
	if !putUsers(Base, first...) {
		t.Fatal("first listing not written")
	}
	got := check("first listing", Base,
		want{alice, "Alice", "alice@example.com", "person", time.Time{}},
		want{bob, "", "", "person", time.Time{}},
		want{botID, "Some bot", "", "bot", time.Time{}})
	for i := range first {
		if !JSONEqual(t, got.Users[i].Object, first[i].Object) {
			t.Errorf("user %s: object %s, want %s", first[i].ID, got.Users[i].Object, first[i].Object)
		}
	}

	// An older listing loses, whatever it holds.
	if putUsers(Base.Add(-time.Minute), NewUser(t, carol, "Carol", "", false)) {
		t.Error("an older listing was written")
	}
	check("after an older listing", Base,
		want{alice, "Alice", "alice@example.com", "person", time.Time{}},
		want{bob, "", "", "person", time.Time{}},
		want{botID, "Some bot", "", "bot", time.Time{}})

	// A newer listing renames, adds, and keeps the missing users as removed.
	t1 := Base.Add(time.Minute)
	if !putUsers(t1, NewUser(t, carol, "Carol", "", false), NewUser(t, alice, "Alice B.", "alice@example.com", false)) {
		t.Fatal("second listing not written")
	}
	check("second listing", t1,
		want{carol, "Carol", "", "person", time.Time{}},
		want{alice, "Alice B.", "alice@example.com", "person", time.Time{}},
		want{botID, "Some bot", "", "bot", t1},
		want{bob, "", "", "person", t1})

	// A user back in a later listing is no longer removed; one removed
	// earlier keeps its first removal time.
	t2 := Base.Add(2 * time.Minute)
	putUsers(t2, NewUser(t, alice, "Alice B.", "alice@example.com", false), NewUser(t, bob, "Bob", "", false))
	check("third listing", t2,
		want{alice, "Alice B.", "alice@example.com", "person", time.Time{}},
		want{bob, "Bob", "", "person", time.Time{}},
		want{botID, "Some bot", "", "bot", t1},
		want{carol, "Carol", "", "person", t2})

	// Bad input is refused and changes nothing.
	bad := []*sink.Users{
		{ConnectionID: "../x", Users: first, SyncedAt: t2.Add(time.Minute)},
		{ConnectionID: Conn, Users: []sink.User{{ID: "not-a-uuid", Object: json.RawMessage(`{}`)}}, SyncedAt: t2.Add(time.Minute)},
		{ConnectionID: Conn, Users: []sink.User{{ID: alice, Object: json.RawMessage(`[1]`)}}, SyncedAt: t2.Add(time.Minute)},
	}
	for i, u := range bad {
		if _, err := s.PutUsers(ctx, u); err == nil {
			t.Errorf("bad listing %d accepted", i)
		}
	}
	check("after bad input", t2,
		want{alice, "Alice B.", "alice@example.com", "person", time.Time{}},
		want{bob, "Bob", "", "person", time.Time{}},
		want{botID, "Some bot", "", "bot", t1},
		want{carol, "Carol", "", "person", t2})
}
