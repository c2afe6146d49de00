package fidelity

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/pgtest"
	"github.com/notionsync/notionsync/sync/sink"
)

var srv *pgtest.Server

func TestMain(m *testing.M) {
	os.Exit(pgtest.RunMain(m, pgtest.Options{}, func(s *pgtest.Server) { srv = s }))
}

const ws = "5a1e2d4c-5b6a-4789-8abc-def012345678"

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// seeded returns a fake with a workspace holding pages, two databases (one
// with two data sources) and rows with more than 25 references.
func seeded(t *testing.T) (*notionfake.Server, notionfake.SeedResult) {
	t.Helper()
	f := notionfake.New(notionfake.Options{Now: func() time.Time { return t0 }})
	res := f.SeedWorkspace(ws, notionfake.SeedSpec{Seed: 3, Pages: 3, Databases: 2, RowsPerDatabase: 4,
		MultiSourceDatabases: 1, ManyReferenceRows: 1, History: time.Hour})
	return f, res
}

// perfect is what a perfect mirror of truth holds.
func perfect(t *testing.T, truth notionfake.GroundTruth) []Stored {
	t.Helper()
	var out []Stored
	for _, o := range truth.Objects {
		if !o.Live() {
			continue
		}
		s := Stored{Kind: o.Kind, ID: o.ID, LastEditedTime: o.LastEditedTime}
		if o.Properties != nil {
			s.Properties = map[string]json.RawMessage{}
			for k, v := range o.Properties {
				b, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				s.Properties[k] = b
			}
		}
		out = append(out, s)
	}
	return out
}

func TestCheckCountsEachDifference(t *testing.T) {
	f, res := seeded(t)
	// Fresh top-level pages: a seeded page may hold a database, which
	// unsharing it would hide too.
	trashed, err := f.AddPage(ws, notionfake.WorkspaceParent(), "to trash")
	if err != nil {
		t.Fatal(err)
	}
	unshared, err := f.AddPage(ws, notionfake.WorkspaceParent(), "to unshare")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ArchivePage(ws, trashed); err != nil {
		t.Fatal(err)
	}
	if err := f.UnsharePage(ws, unshared); err != nil {
		t.Fatal(err)
	}
	truth, err := f.GroundTruth(ws)
	if err != nil {
		t.Fatal(err)
	}
	// 3 pages + 8 rows + 2 databases + 3 data sources (the second data
	// source's rows come on top: 4 more rows).
	if n := len(truth.Objects); n != 5+12+2+3 {
		t.Fatalf("ground truth has %d objects", n)
	}
	if _, err := f.GroundTruth("00000000-0000-4000-8000-000000000000"); err == nil {
		t.Fatal("ground truth of an unknown workspace: no error")
	}

	stored := perfect(t, truth)
	if r := Check(truth, stored); !r.Exact() || r.Live != 3+12+2 || r.LiveDataSources != 3 {
		t.Fatalf("perfect mirror: %v %v", r.Counts, r.IDs)
	}

	// One of each difference.
	byID := func(id string) *Stored {
		for i := range stored {
			if stored[i].ID == id {
				return &stored[i]
			}
		}
		t.Fatalf("%s not stored", id)
		return nil
	}
	many := res.RowsByDatabase[res.DatabaseIDs[0]][0] // a row with 30 references
	missing := res.RowIDs[len(res.RowIDs)-1]
	stale := res.PageIDs[0]
	dsMissing := res.DataSourceIDs[res.DatabaseIDs[0]][1]
	extra := "0f0e0d0c-0000-4000-8000-000000000001"

	cut := byID(many)
	var rel map[string]any
	for name, raw := range cut.Properties {
		if err := json.Unmarshal(raw, &rel); err != nil {
			t.Fatal(err)
		}
		if rel["type"] == "relation" {
			items := rel["relation"].([]any)
			if len(items) <= notionfake.ReferenceLimit {
				t.Fatalf("row %s has %d relation items", many, len(items))
			}
			rel["relation"], rel["has_more"] = items[:notionfake.ReferenceLimit], true
			cut.Properties[name], _ = json.Marshal(rel)
		}
	}
	byID(stale).LastEditedTime = byID(stale).LastEditedTime.Add(-time.Minute)
	stored = slices.DeleteFunc(stored, func(s Stored) bool { return s.ID == missing || s.ID == dsMissing })
	stored = append(stored,
		Stored{Kind: notionfake.TruthPage, ID: trashed, LastEditedTime: t0},
		Stored{Kind: notionfake.TruthPage, ID: unshared, LastEditedTime: t0},
		Stored{Kind: notionfake.TruthPage, ID: extra, LastEditedTime: t0},
		// Tombstones of unknown or gone objects are right, not extra.
		Stored{Kind: notionfake.TruthPage, ID: "0f0e0d0c-0000-4000-8000-000000000002", LastEditedTime: t0, Deleted: true},
	)
	r := Check(truth, stored)
	want := Counts{Live: 17, LiveDataSources: 3, Missing: 1, Stale: 1, LiveButGone: 2, Truncated: 1, MissingDataSources: 1, Extra: 1}
	if r.Counts != want {
		t.Fatalf("counts %v, want %v (ids %v)", r.Counts, want, r.IDs)
	}
	// The missing row is the multi-source database's (the last rows are
	// its second data source's).
	if r.MissingByCause[CauseMultiSource] != 1 || len(r.MissingByCause) != 1 {
		t.Errorf("missing by cause %v", r.MissingByCause)
	}
	for name, ids := range map[string][]string{"missing": {missing}, "stale": {stale}, "truncated": {many},
		"missing_data_sources": {dsMissing}, "extra": {extra}} {
		if !slices.Equal(r.IDs[name], ids) {
			t.Errorf("%s counted %v, want %v", name, r.IDs[name], ids)
		}
	}

	// A missing page held only as a tombstone still counts as missing.
	stored = append(stored, Stored{Kind: notionfake.TruthPage, ID: missing, LastEditedTime: t0, Deleted: true})
	if r := Check(truth, stored); r.Missing != 1 {
		t.Errorf("a tombstone of a live page: missing %d", r.Missing)
	}
}

// writeSink stores, through the real sink API, a live page with a relation
// of 30 items, a trashed page, an unshared page and a database.
func writeSink(t *testing.T, s sink.Sink, conn string) (live, trashed, unshared, db string) {
	t.Helper()
	ctx := context.Background()
	live, trashed, unshared, db = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222",
		"33333333-3333-4333-8333-333333333333", "44444444-4444-4444-8444-444444444444"
	var rel []string
	for i := range 30 {
		rel = append(rel, fmt.Sprintf(`{"id":"55555555-5555-4555-8555-%012d"}`, i))
	}
	page := func(id string, archived bool) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"object":"page","id":%q,"last_edited_time":"2026-03-04T10:00:00.000Z",
			"archived":%v,"in_trash":%v,"parent":{"type":"workspace","workspace":true},
			"properties":{"title":{"id":"title","type":"title","title":[]},
			"Rel":{"id":"r","type":"relation","relation":[%s],"has_more":false}}}`, id, archived, archived, strings.Join(rel, ",")))
	}
	for _, p := range []struct {
		id       string
		archived bool
	}{{live, false}, {trashed, true}, {unshared, false}} {
		pg, err := sink.PageFromObject(conn, page(p.id, p.archived), nil, t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutPage(ctx, pg); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkUnshared(ctx, conn, unshared, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	d, err := sink.DatabaseFromObject(conn, json.RawMessage(fmt.Sprintf(`{"object":"database","id":%q,
		"last_edited_time":"2026-03-04T09:00:00.000Z","title":[],"parent":{"type":"workspace","workspace":true},"properties":{}}`, db)), t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutDatabase(ctx, d); err != nil {
		t.Fatal(err)
	}
	return live, trashed, unshared, db
}

func checkStored(t *testing.T, got []Stored, live, trashed, unshared, db string) {
	t.Helper()
	slices.SortFunc(got, func(a, b Stored) int { return strings.Compare(a.ID, b.ID) })
	if len(got) != 4 {
		t.Fatalf("stored %+v", got)
	}
	want := []struct {
		id, kind          string
		deleted, unshared bool
		edited            time.Time
	}{
		{live, notionfake.TruthPage, false, false, t0},
		{trashed, notionfake.TruthPage, true, false, t0},
		{unshared, notionfake.TruthPage, false, true, t0},
		{db, notionfake.TruthDatabase, false, false, t0.Add(-time.Hour)},
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.id || g.Kind != w.kind || g.Deleted != w.deleted || g.Unshared != w.unshared || !g.LastEditedTime.Equal(w.edited) {
			t.Errorf("stored[%d] = %+v, want %+v", i, g, w)
		}
	}
	var rel struct {
		Relation []any `json:"relation"`
	}
	if err := json.Unmarshal(got[0].Properties["Rel"], &rel); err != nil || len(rel.Relation) != 30 {
		t.Errorf("live page's relation: %d items (%v)", len(rel.Relation), err)
	}
}

func TestFileStore(t *testing.T) {
	root := t.TempDir()
	s, err := sink.Open(context.Background(), "file://"+root, sink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	live, trashed, unshared, db := writeSink(t, s, "conn-1")
	got, err := FileStore{Root: root}.Stored(context.Background(), "conn-1")
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, got, live, trashed, unshared, db)
	if got, err := (FileStore{Root: root}).Stored(context.Background(), "conn-2"); err != nil || len(got) != 0 {
		t.Fatalf("unknown connection: %v, %v", got, err)
	}
}

func TestPGStore(t *testing.T) {
	dsn := srv.NewDatabase(t)
	s, err := sink.Open(context.Background(), dsn, sink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	live, trashed, unshared, db := writeSink(t, s, "conn-1")
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	got, err := PGStore{DB: conn}.Stored(context.Background(), "conn-1")
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, got, live, trashed, unshared, db)
}

// A page no API path reaches (search omits it and every page above it) is
// counted as unfindable, not missing; a page under a findable parent, or a
// row, that the sink lacks is missing.
func TestCheckCountsUnfindableApart(t *testing.T) {
	f, res := seeded(t)
	top, err := f.AddPage(ws, notionfake.WorkspaceParent(), "top-level, omitted")
	if err != nil {
		t.Fatal(err)
	}
	child, err := f.AddPage(ws, notionfake.PageParent(top), "under an omitted top-level page")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetImperfections(notionfake.Imperfections{SearchOmitShare: 1}); err != nil {
		t.Fatal(err)
	}
	truth, err := f.GroundTruth(ws)
	if err != nil {
		t.Fatal(err)
	}
	row := res.RowIDs[0]
	unfindable := map[string]bool{}
	for _, o := range truth.Objects {
		if o.Unfindable {
			unfindable[o.ID] = true
		}
	}
	if !unfindable[top] || !unfindable[child] || unfindable[row] {
		t.Fatalf("unfindable = %v; want the top-level page %s and its child %s, not the row %s", unfindable, top, child, row)
	}
	var stored []Stored
	for _, s := range perfect(t, truth) {
		if s.ID != top && s.ID != child && s.ID != row {
			stored = append(stored, s)
		}
	}
	r := Check(truth, stored)
	if r.Unfindable != 2 || r.Missing != 1 || !slices.Equal(r.IDs["missing"], []string{row}) {
		t.Fatalf("counts %v, ids %v; want 2 unfindable and the row missing", r.Counts, r.IDs)
	}
	// Without the omission every page is findable again: all three missing.
	if err := f.SetImperfections(notionfake.Imperfections{}); err != nil {
		t.Fatal(err)
	}
	if truth, err = f.GroundTruth(ws); err != nil {
		t.Fatal(err)
	}
	if r := Check(truth, stored); r.Unfindable != 0 || r.Missing != 3 {
		t.Fatalf("without omission: %v, want 3 missing", r.Counts)
	}
}
