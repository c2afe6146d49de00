package notionfake

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/jomei/notionapi"
)

func TestSeedIsDeterministic(t *testing.T) {
	seed := func(spec SeedSpec, ws string) (SeedResult, [][]string) {
		s := New(Options{Now: (&fakeClock{now: t0}).Now})
		res := s.SeedWorkspace(ws, spec)
		var blocks [][]string
		for _, id := range append(slices.Clone(res.PageIDs), res.RowIDs...) {
			ids, err := s.PageBlockIDs(ws, id)
			if err != nil {
				t.Fatal(err)
			}
			blocks = append(blocks, ids)
		}
		return res, blocks
	}
	a, ab := seed(richSpec, testWS)
	b, bb := seed(richSpec, testWS)
	if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(ab, bb) {
		t.Fatal("same seed, workspace and spec gave different content")
	}
	if len(a.PageIDs) != 12 || len(a.DatabaseIDs) != 2 || len(a.RowIDs) != 18 || len(a.RowsByDatabase[a.DatabaseIDs[1]]) != 9 {
		t.Fatalf("result %+v", a)
	}
	for _, id := range append(append(slices.Clone(a.PageIDs), a.DatabaseIDs...), a.RowIDs...) {
		if n, ok := normalizeID(id); !ok || n != id || id[14] != '4' {
			t.Fatalf("id %q is not a dashed v4 UUID", id)
		}
	}
	other := richSpec
	other.Seed++
	if c, _ := seed(other, testWS); c.PageIDs[0] == a.PageIDs[0] {
		t.Error("another seed gave the same ids")
	}
	if c, _ := seed(richSpec, "11111111-2222-4333-8444-555555555555"); c.PageIDs[0] == a.PageIDs[0] {
		t.Error("another workspace gave the same ids")
	}
}

func TestSeedShapes(t *testing.T) {
	s := New(Options{Now: (&fakeClock{now: t0}).Now})
	res := s.SeedWorkspace(testWS, SeedSpec{Seed: 1, Pages: 4, NestedPages: 10})
	// NestedPages is clamped: the first page stays at the top level.
	if err := s.ViewPage(testWS, res.PageIDs[0], func(p *Page) {
		if p.Parent.Type != ParentWorkspace {
			t.Errorf("first page parent %+v", p.Parent)
		}
	}); err != nil {
		t.Fatal(err)
	}
	children := 0
	for _, id := range res.PageIDs[1:] {
		_ = s.ViewPage(testWS, id, func(p *Page) {
			if p.Parent.Type == ParentPage {
				children++
			}
		})
	}
	if children != 3 || res.BlockCount != 3 { // the child_page blocks
		t.Errorf("%d child pages, %d blocks", children, res.BlockCount)
	}
	empty := s.SeedWorkspace("", SeedSpec{})
	if empty.WorkspaceID == "" || len(empty.PageIDs) != 0 || len(s.AllPageIDs(empty.WorkspaceID)) != 0 {
		t.Errorf("empty seed %+v", empty)
	}
	if ids := s.AllPageIDs("nope"); ids != nil {
		t.Errorf("unknown workspace: %v", ids)
	}
}

func TestEditAPI(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 30, Pages: 2, BlocksPerPage: 3, Databases: 1, RowsPerDatabase: 1})
	ctx := context.Background()
	page := h.seed.PageIDs[0]
	before, _ := h.s.PageBlockCount(h.ws, page)

	h.clock.Advance(2 * time.Minute)
	if err := h.s.EditPage(h.ws, page, func(p *Page) {
		p.ID, p.Parent = "changed", DatabaseParent("x") // restored
		p.Blocks = append(p.Blocks, TextBlock("bulleted_list_item", "new", TextBlock("paragraph", "nested")))
	}); err != nil {
		t.Fatal(err)
	}
	if n, _ := h.s.PageBlockCount(h.ws, page); n != before+2 {
		t.Fatalf("PageBlockCount %d, want %d", n, before+2)
	}
	p, err := h.api.Page.Get(ctx, notionapi.PageID(page))
	if err != nil || p.Parent.Type != "workspace" || !p.LastEditedTime.Equal(t0.Add(2*time.Minute).Truncate(time.Minute)) {
		t.Fatalf("edited page %+v %v", p, err)
	}
	ids, _ := h.s.PageBlockIDs(h.ws, page)
	nb, err := h.api.Block.Get(ctx, notionapi.BlockID(ids[len(ids)-1]))
	if err != nil || nb.GetRichTextString() != "nested" || nb.GetParent().Type != "block_id" ||
		string(nb.GetParent().BlockID) != ids[len(ids)-2] {
		t.Fatalf("new nested block %#v %v", nb, err)
	}

	// EditPage can set last_edited_time itself.
	past := t0.Add(-time.Hour)
	_ = h.s.EditPage(h.ws, page, func(p *Page) { p.LastEditedTime = past })
	if p, _ := h.api.Page.Get(ctx, notionapi.PageID(page)); !p.LastEditedTime.Equal(past.Truncate(time.Minute)) {
		t.Fatalf("explicit last_edited_time: %v", p.LastEditedTime)
	}

	// TouchPage changes the first paragraph or appends one.
	h.clock.Advance(time.Minute)
	if err := h.s.TouchPage(h.ws, page, "hello"); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range h.walkBlocks(page, 100) {
		if pb, ok := b.(*notionapi.ParagraphBlock); ok && pb.GetRichTextString() == "hello" {
			found = true
			if !pb.LastEditedTime.Equal(minute(h.clock.Now())) {
				t.Errorf("touched block last_edited_time %v", pb.LastEditedTime)
			}
		}
	}
	if !found {
		t.Fatal("touched text not served")
	}

	// AddPage under a page: a child_page block, the parent edited.
	h.clock.Advance(time.Minute)
	child, err := h.s.AddPage(h.ws, PageParent(page), "Child", TextBlock("to_do", "task"))
	if err != nil {
		t.Fatal(err)
	}
	kids := h.walkBlocks(page, 100)
	if last := kids[len(kids)-1]; string(last.GetID()) != child || last.GetType() != "child_page" || !last.GetHasChildren() {
		t.Fatalf("last block %#v", last)
	}
	if p, _ := h.api.Page.Get(ctx, notionapi.PageID(page)); !p.LastEditedTime.Equal(minute(h.clock.Now())) {
		t.Errorf("parent not edited: %v", p.LastEditedTime)
	}
	if n, _ := h.s.PageBlockCount(h.ws, child); n != 1 {
		t.Errorf("child blocks %d", n)
	}

	// AddRow and AddDatabase.
	db := h.seed.DatabaseIDs[0]
	row, err := h.s.AddRow(h.ws, db, "Fresh row")
	if err != nil {
		t.Fatal(err)
	}
	q, err := h.api.Database.Query(ctx, notionapi.DatabaseID(db), &notionapi.DatabaseQueryRequest{})
	if err != nil || len(q.Results) != 2 || string(q.Results[1].ID) != row {
		t.Fatalf("query after AddRow: %+v %v", q, err)
	}
	raw := h.raw("GET", "/v1/pages/"+row, nil)
	var rowJSON struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(raw.body, &rowJSON); err != nil || len(rowJSON.Properties) != 10 {
		t.Fatalf("row JSON %s", raw.body)
	}
	newDB, err := h.s.AddDatabase(h.ws, WorkspaceParent(), "Top db")
	if err != nil {
		t.Fatal(err)
	}
	if d, err := h.api.Database.Get(ctx, notionapi.DatabaseID(newDB)); err != nil || d.Parent.Type != "workspace" || d.IsInline {
		t.Fatalf("top-level database %+v %v", d, err)
	}

	// Unknown ids.
	bogus := "5a5a5a5a-5a5a-4a5a-8a5a-5a5a5a5a5a5a"
	for name, err := range map[string]error{
		"EditPage":    h.s.EditPage(h.ws, bogus, func(*Page) {}),
		"TouchPage":   h.s.TouchPage(h.ws, bogus, "x"),
		"ArchivePage": h.s.ArchivePage(h.ws, bogus),
		"workspace":   h.s.TouchPage("nope", page, "x"),
		"AddRow":      func() error { _, err := h.s.AddRow(h.ws, bogus, "x"); return err }(),
		"AddPage":     func() error { _, err := h.s.AddPage(h.ws, PageParent(bogus), "x"); return err }(),
		"AddDatabase": func() error { _, err := h.s.AddDatabase(h.ws, PageParent(bogus), "x"); return err }(),
	} {
		if !errors.Is(err, ErrObjectNotFound) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := h.s.PageBlockCount(h.ws, bogus); !errors.Is(err, ErrObjectNotFound) {
		t.Errorf("PageBlockCount: %v", err)
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		`{"timestamp":"last_edited_time","last_edited_time":{"on_or_after":"2025-03-04T10:05:00Z"}}`,
		`{"timestamp":"created_time","created_time":{"equals":"2025-03-04"}}`,
		`{"and":[{"or":[{"timestamp":"last_edited_time","last_edited_time":{"before":"2025-03-04T10:05:00.000+02:00"}}]}]}`,
		`{"property":"Done","checkbox":{"equals":true}}`,
		`{"and":{}}`, `[]`, `null`, `{"timestamp":1}`,
	} {
		f.Add([]byte(s))
	}
	page := &Page{LastEditedTime: t0, CreatedTime: t0}
	f.Fuzz(func(t *testing.T, raw []byte) {
		match, aerr := parseFilter(raw, 0)
		if (match == nil) == (aerr == nil) {
			t.Fatalf("parseFilter(%q): filter %v, error %v", raw, match != nil, aerr)
		}
		if aerr != nil {
			if aerr.status != 400 || aerr.code != "validation_error" {
				t.Fatalf("error %+v", aerr)
			}
			return
		}
		match(page)
	})
}
