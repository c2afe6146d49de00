package notionfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jomei/notionapi"
)

// childrenPath is the block children request of id, with an optional cursor.
func childrenPath(id, cursor string) string {
	p := "/v1/blocks/" + id + "/children?page_size=100"
	if cursor != "" {
		p += "&start_cursor=" + url.QueryEscape(cursor)
	}
	return p
}

// wantPoisonAnswer checks that r is the answer of kind.
func wantPoisonAnswer(t *testing.T, what string, r rawReply, kind PoisonKind) {
	t.Helper()
	switch kind {
	case PoisonMalformed:
		if r.status != 200 || json.Valid(r.body) || len(r.body) == 0 {
			t.Fatalf("%s: want 200 with truncated JSON, got %d %q", what, r.status, r.body)
		}
	case PoisonHTML:
		if r.status != 403 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
			r.header.Get("x-notion-request-id") != "" || json.Valid(r.body) {
			t.Fatalf("%s: want the Cloudflare 403, got %d %v %q", what, r.status, r.header, r.body)
		}
	case PoisonServerError:
		m := r.json(t)
		if r.status != 500 || m["code"] != "internal_server_error" || m["object"] != "error" {
			t.Fatalf("%s: want 500 internal_server_error, got %d %v", what, r.status, m)
		}
	}
}

func TestPoisonPageGet(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 40, Pages: 4, BlocksPerPage: 3})
	healthy := h.seed.PageIDs[3]
	kinds := []PoisonKind{PoisonMalformed, PoisonHTML, PoisonServerError}
	for i, kind := range kinds {
		// Dashless and upper case: Notion accepts any spelling.
		p, err := h.s.Poison(h.ws, strings.ToUpper(strings.ReplaceAll(h.seed.PageIDs[i], "-", "")), PoisonPageGet, kind)
		if err != nil {
			t.Fatal(err)
		}
		if p.ID != h.seed.PageIDs[i] || p.PageID != p.ID || p.WorkspaceID != h.ws || p.Kind != kind || p.Target != PoisonPageGet {
			t.Fatalf("poisoned %+v", p)
		}
	}
	// A poisoned request does not take a queued fault; the next healthy
	// one does.
	h.s.FailDataNext(1, 503)
	wantPoisonAnswer(t, "with a queued fault", h.raw("GET", "/v1/pages/"+h.seed.PageIDs[0], nil), PoisonMalformed)
	if r := h.raw("GET", "/v1/pages/"+healthy, nil); r.status != 503 {
		t.Fatalf("the queued fault: %d", r.status)
	}
	for i, kind := range kinds {
		if i > 0 {
			wantPoisonAnswer(t, string(kind), h.raw("GET", "/v1/pages/"+h.seed.PageIDs[i], nil), kind)
		}
		wantPoisonAnswer(t, string(kind), h.raw("GET", "/v1/pages/"+h.seed.PageIDs[i], nil), kind)
		// The page's content is not poisoned.
		if r := h.raw("GET", childrenPath(h.seed.PageIDs[i], ""), nil); r.status != 200 {
			t.Fatalf("children of a page-poisoned page: %d %s", r.status, r.body)
		}
	}
	if r := h.raw("GET", "/v1/pages/"+healthy, nil); r.status != 200 {
		t.Fatalf("healthy page: %d", r.status)
	}
	objs := h.s.PoisonedObjects()
	if len(objs) != 3 {
		t.Fatalf("poisoned objects %+v", objs)
	}
	for _, o := range objs {
		if o.Served != 2 {
			t.Errorf("%s served %d, want 2", o.ID, o.Served)
		}
	}
	st := h.s.DataStats()
	if st.PoisonedAnswers != 6 || st.InjectedFaults != 1 || st.Count(EndpointGetPage, 403) != 2 ||
		st.Count(EndpointGetPage, 500) != 2 || st.Count(EndpointGetPage, 200) != 3 || st.Count(EndpointGetPage, 503) != 1 {
		t.Errorf("stats %+v", st)
	}
	// Poisoning again changes the kind and keeps the count.
	if p, err := h.s.Poison(h.ws, h.seed.PageIDs[0], PoisonPageGet, PoisonServerError); err != nil || p.Served != 2 {
		t.Fatalf("re-poison: %+v %v", p, err)
	}
	wantPoisonAnswer(t, "re-poisoned", h.raw("GET", "/v1/pages/"+h.seed.PageIDs[0], nil), PoisonServerError)

	// Through notionapi: a clear error, not a crash.
	_, err := h.api.Page.Get(context.Background(), notionapi.PageID(h.seed.PageIDs[0]))
	wantAPIError(t, err, 500, "internal_server_error")
	if _, err := h.api.Page.Get(context.Background(), notionapi.PageID(h.seed.PageIDs[1])); err == nil {
		t.Fatal("notionapi decoded the truncated body")
	}

	if !h.s.Unpoison(h.ws, h.seed.PageIDs[0], PoisonPageGet) || h.s.Unpoison(h.ws, h.seed.PageIDs[0], PoisonPageGet) {
		t.Fatal("Unpoison did not report the poison once")
	}
	if r := h.raw("GET", "/v1/pages/"+h.seed.PageIDs[0], nil); r.status != 200 {
		t.Fatalf("after Unpoison: %d", r.status)
	}
	if n := h.s.ClearPoison(); n != 2 {
		t.Fatalf("ClearPoison cleared %d, want 2", n)
	}
	for _, id := range h.seed.PageIDs {
		if r := h.raw("GET", "/v1/pages/"+id, nil); r.status != 200 || !json.Valid(r.body) {
			t.Fatalf("after ClearPoison %s: %d", id, r.status)
		}
	}
	if len(h.s.PoisonedObjects()) != 0 {
		t.Fatal("objects still poisoned")
	}
}

func TestPoisonChildren(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 41, Pages: 2, HugePages: 1, HugePageBlocks: 300, HugeTextBytes: -1})
	huge := h.seed.HugePageIDs[0]
	if _, err := h.s.Poison(h.ws, huge, PoisonChildren, PoisonHTML); err != nil {
		t.Fatal(err)
	}
	// Every request of the listing fails, whatever its cursor; the page
	// object does not.
	wantPoisonAnswer(t, "first", h.raw("GET", childrenPath(huge, ""), nil), PoisonHTML)
	ids, err := h.s.PageBlockIDs(h.ws, huge)
	if err != nil {
		t.Fatal(err)
	}
	wantPoisonAnswer(t, "with cursor", h.raw("GET", childrenPath(huge, ids[len(ids)-1]), nil), PoisonHTML)
	if r := h.raw("GET", "/v1/pages/"+huge, nil); r.status != 200 {
		t.Fatalf("page of a children-poisoned page: %d", r.status)
	}
	h.s.ClearPoison()

	// A nested block: its page is the one whose sync breaks.
	var toggle string
	_ = h.s.ViewPage(h.ws, huge, func(p *Page) {
		for _, b := range p.Blocks {
			if b.Type == "toggle" {
				toggle = b.Children[1].ID // the inner toggle
				break
			}
		}
	})
	p, err := h.s.Poison(h.ws, toggle, PoisonChildren, PoisonMalformed)
	if err != nil || p.PageID != huge || p.ID != toggle {
		t.Fatalf("poison nested block: %+v %v", p, err)
	}
	wantPoisonAnswer(t, "nested", h.raw("GET", childrenPath(toggle, ""), nil), PoisonMalformed)
	if r := h.raw("GET", childrenPath(huge, ""), nil); r.status != 200 {
		t.Fatalf("top level of the page: %d", r.status)
	}
	if r := h.raw("GET", "/v1/blocks/"+toggle, nil); r.status != 200 {
		t.Fatalf("block object: %d", r.status)
	}
}

func TestPoisonRejects(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 42, Pages: 1, BlocksPerPage: 2, Databases: 1, RowsPerDatabase: 1})
	block, err := h.s.PageBlockIDs(h.ws, h.seed.PageIDs[0])
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		ws, id string
		target PoisonTarget
		kind   PoisonKind
		want   error
	}{
		"target":           {h.ws, h.seed.PageIDs[0], "search", PoisonHTML, ErrInvalidPoison},
		"kind":             {h.ws, h.seed.PageIDs[0], PoisonPageGet, "timeout", ErrInvalidPoison},
		"block page":       {h.ws, block[0], PoisonPageGet, PoisonHTML, ErrInvalidPoison},
		"database":         {h.ws, h.seed.DatabaseIDs[0], PoisonChildren, PoisonHTML, ErrInvalidPoison},
		"unknown id":       {h.ws, "5a5a5a5a-5a5a-4a5a-8a5a-5a5a5a5a5a5a", PoisonPageGet, PoisonHTML, ErrObjectNotFound},
		"unknown ws":       {"nope", h.seed.PageIDs[0], PoisonPageGet, PoisonHTML, ErrObjectNotFound},
		"other ws's page":  {"other", h.seed.PageIDs[0], PoisonPageGet, PoisonHTML, ErrObjectNotFound},
		"malformed id":     {h.ws, "not-an-id", PoisonChildren, PoisonHTML, ErrObjectNotFound},
		"row is a page ok": {h.ws, h.seed.RowIDs[0], PoisonPageGet, PoisonHTML, nil},
	} {
		if name == "other ws's page" {
			h.s.SeedWorkspace("other", SeedSpec{Seed: 1, Pages: 1})
		}
		_, err := h.s.Poison(tc.ws, tc.id, tc.target, tc.kind)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: error %v, want %v", name, err, tc.want)
		}
	}
	if n := len(h.s.PoisonedObjects()); n != 1 {
		t.Errorf("%d objects poisoned, want the row only", n)
	}
	// PoisonObjects: all or none.
	if _, err := h.s.PoisonObjects(h.ws, []string{h.seed.PageIDs[0], h.seed.DatabaseIDs[0]}, PoisonChildren, PoisonHTML); !errors.Is(err, ErrInvalidPoison) {
		t.Fatalf("with a database: %v", err)
	}
	if n := len(h.s.PoisonedObjects()); n != 1 {
		t.Errorf("a refused PoisonObjects poisoned something: %d objects", n)
	}
	ps, err := h.s.PoisonObjects(h.ws, []string{h.seed.PageIDs[0], block[1]}, PoisonChildren, PoisonHTML)
	if err != nil || len(ps) != 2 || ps[1].PageID != h.seed.PageIDs[0] || ps[1].ID != block[1] {
		t.Fatalf("PoisonObjects: %+v %v", ps, err)
	}
}

func TestPoisonPagesAndRandomPages(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 43, Pages: 5, Databases: 1, RowsPerDatabase: 2})
	all := h.s.AllPageIDs(h.ws)
	got, err := h.s.PoisonPages(h.ws, 2, PoisonPageGet, PoisonServerError)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != all[0] || got[1].ID != all[1] {
		t.Fatalf("first 2: %+v, want %v", got, all[:2])
	}
	// Already poisoned pages (for any target) are skipped.
	got, err = h.s.PoisonPages(h.ws, 1, PoisonChildren, PoisonHTML)
	if err != nil || len(got) != 1 || got[0].ID != all[2] || got[0].Target != PoisonChildren {
		t.Fatalf("next: %+v %v", got, err)
	}
	if _, err := h.s.PoisonPages(h.ws, len(all), PoisonPageGet, PoisonHTML); !errors.Is(err, ErrNotEnoughPages) {
		t.Fatalf("too many: %v", err)
	}
	if n := len(h.s.PoisonedObjects()); n != 3 {
		t.Fatalf("a refused PoisonPages poisoned something: %d objects", n)
	}
	h.s.ClearPoison()

	// Random pages across workspaces: deterministic, distinct, unpoisoned.
	h.s.SeedWorkspace("ws-b", SeedSpec{Seed: 44, Pages: 6})
	h.s.SeedWorkspace("ws-c", SeedSpec{Seed: 45, Pages: 6})
	wss := []string{"ws-b", "ws-c"}
	pick := func() []Poisoned {
		t.Helper()
		ps, err := h.s.PoisonRandomPages(wss, 5, PoisonPageGet, PoisonMalformed, 7)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	a := pick()
	h.s.ClearPoison()
	b := pick()
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different pages:\n%+v\n%+v", a, b)
	}
	seen := map[string]bool{}
	for _, p := range a {
		if p.WorkspaceID == h.ws || seen[p.ID] || !slices.Contains(h.s.AllPageIDs(p.WorkspaceID), p.ID) {
			t.Fatalf("bad pick %+v in %+v", p, a)
		}
		seen[p.ID] = true
	}
	c, err := h.s.PoisonRandomPages(wss, 7, PoisonChildren, PoisonHTML, 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c {
		if seen[p.ID] {
			t.Fatalf("%s poisoned twice", p.ID)
		}
	}
	if _, err := h.s.PoisonRandomPages(wss, 1, PoisonChildren, PoisonHTML, 7); !errors.Is(err, ErrNotEnoughPages) {
		t.Fatalf("every page poisoned, yet: %v", err)
	}
	if _, err := h.s.PoisonRandomPages([]string{"nope"}, 1, PoisonChildren, PoisonHTML, 7); !errors.Is(err, ErrObjectNotFound) {
		t.Fatalf("unknown workspace: %v", err)
	}
	// No workspaces: all of them, the harness's included.
	if ps, err := h.s.PoisonRandomPages(nil, len(all), PoisonPageGet, PoisonHTML, 1); err != nil || len(ps) != len(all) || ps[0].WorkspaceID != h.ws {
		t.Fatalf("all workspaces: %+v %v", ps, err)
	}
}

// TestPoisonConcurrent runs poisoned and healthy requests while the poison
// is set and cleared (run with -race): every answer is the poison's or a
// valid page.
func TestPoisonConcurrent(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 46, Pages: 4})
	var wg sync.WaitGroup
	errs := make(chan string, 256)
	for g := range 4 {
		wg.Go(func() {
			id := h.seed.PageIDs[g]
			for range 50 {
				r := h.raw("GET", "/v1/pages/"+id, nil)
				if !(r.status == 500 || r.status == 200 && json.Valid(r.body)) {
					errs <- fmt.Sprintf("%s: %d %q", id, r.status, r.body)
				}
			}
		})
	}
	for range 50 {
		if _, err := h.s.PoisonPages(h.ws, 2, PoisonPageGet, PoisonServerError); err != nil {
			t.Error(err)
		}
		_ = h.s.PoisonedObjects()
		h.s.ClearPoison()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestInvalidCursors(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 47, Pages: 3, HugePages: 1, HugePageBlocks: 250, HugeTextBytes: -1, Databases: 1, RowsPerDatabase: 3})
	huge := h.seed.HugePageIDs[0]
	first := h.raw("GET", childrenPath(huge, ""), nil).json(t)
	next, _ := first["next_cursor"].(string)
	if next == "" {
		t.Fatalf("no next cursor: %v", first["has_more"])
	}
	// Unknown and malformed cursors are refused, on every paginated endpoint.
	for name, r := range map[string]rawReply{
		"children garbage": h.raw("GET", childrenPath(huge, "garbage!"), nil),
		"children unknown": h.raw("GET", childrenPath(huge, "5a5a5a5a-5a5a-4a5a-8a5a-5a5a5a5a5a5a"), nil),
		"children other":   h.raw("GET", childrenPath(h.seed.PageIDs[0], next), nil), // a cursor of another listing
		"search":           h.raw("POST", "/v1/search", map[string]any{"start_cursor": "zzz"}),
		"query":            h.raw("POST", "/v1/databases/"+h.seed.DatabaseIDs[0]+"/query", map[string]any{"start_cursor": "zzz"}),
	} {
		m := r.json(t)
		if r.status != 400 || m["code"] != "validation_error" || !strings.HasPrefix(m["message"].(string), "The start_cursor provided is invalid: ") {
			t.Errorf("%s: %d %v", name, r.status, m)
		}
	}
	if st := h.s.DataStats(); st.InvalidCursors != 5 || st.InjectedInvalidCursors != 0 {
		t.Fatalf("stats %+v", st)
	}

	// Injected: valid cursors are refused; requests without one pass.
	h.s.InvalidCursorNext(3)
	if r := h.raw("GET", childrenPath(huge, ""), nil); r.status != 200 {
		t.Fatalf("no cursor: %d", r.status)
	}
	r := h.raw("GET", childrenPath(huge, next), nil)
	if m := r.json(t); r.status != 400 || m["code"] != "validation_error" || m["message"] != "The start_cursor provided is invalid: "+next {
		t.Fatalf("injected: %d %v", r.status, m)
	}
	// In a body, through notionapi.
	_, err := h.api.Search.Do(context.Background(), &notionapi.SearchRequest{StartCursor: notionapi.Cursor(h.seed.PageIDs[1])})
	wantAPIError(t, err, 400, "validation_error")
	// A queued fault comes first and does not spend an invalid cursor.
	h.s.FailDataNext(1, 502)
	if r := h.raw("GET", childrenPath(huge, next), nil); r.status != 502 {
		t.Fatalf("queued fault: %d", r.status)
	}
	if n := h.s.PendingInvalidCursors(); n != 1 {
		t.Fatalf("pending %d, want 1", n)
	}
	if r := h.raw("POST", "/v1/databases/"+h.seed.DatabaseIDs[0]+"/query", map[string]any{"start_cursor": h.seed.RowIDs[1]}); r.status != 400 {
		t.Fatalf("query: %d", r.status)
	}
	// Spent: the same cursor works again.
	if r := h.raw("GET", childrenPath(huge, next), nil); r.status != 200 {
		t.Fatalf("after the faults: %d %s", r.status, r.body)
	}
	if r := h.raw("POST", "/v1/databases/"+h.seed.DatabaseIDs[0]+"/query", map[string]any{"start_cursor": h.seed.RowIDs[1]}); r.status != 200 {
		t.Fatalf("query after the faults: %d %s", r.status, r.body)
	}
	if st := h.s.DataStats(); st.InvalidCursors != 8 || st.InjectedInvalidCursors != 3 || h.s.PendingInvalidCursors() != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// walkChildren reads page id's whole block tree as a client does and
// returns the blocks and the number of requests.
func (h *dataHarness) walkChildren(id string) (blocks []map[string]any, requests int) {
	h.t.Helper()
	queue := []string{id}
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		cursor := ""
		for {
			requests++
			r := h.raw("GET", childrenPath(parent, cursor), nil)
			if r.status != 200 {
				h.t.Fatalf("children of %s: %d %s", parent, r.status, r.body)
			}
			var l struct {
				Results    []map[string]any `json:"results"`
				HasMore    bool             `json:"has_more"`
				NextCursor *string          `json:"next_cursor"`
			}
			if err := json.Unmarshal(r.body, &l); err != nil {
				h.t.Fatal(err)
			}
			if len(l.Results) > maxPageSize {
				h.t.Fatalf("%d results in one page", len(l.Results))
			}
			for _, b := range l.Results {
				blocks = append(blocks, b)
				if b["has_children"] == true && b["type"] != "child_page" {
					queue = append(queue, b["id"].(string))
				}
			}
			if !l.HasMore {
				break
			}
			cursor = *l.NextCursor
		}
	}
	return blocks, requests
}

func TestHugePages(t *testing.T) {
	spec := SeedSpec{Seed: 48, Pages: 3, BlocksPerPage: 4, BlockDepth: 2, Databases: 1, RowsPerDatabase: 2, UnknownBlocks: true}
	plain := New(Options{Now: (&fakeClock{now: t0}).Now}).SeedWorkspace(testWS, spec)
	spec.HugePages = 2
	h := newDataHarness(t, spec)
	// Huge pages come on top: the rest of the content is unchanged.
	if !slices.Equal(h.seed.PageIDs[:3], plain.PageIDs) || !slices.Equal(h.seed.RowIDs, plain.RowIDs) ||
		len(h.seed.HugePageIDs) != 2 || !slices.Equal(h.seed.PageIDs[3:], h.seed.HugePageIDs) {
		t.Fatalf("seed %+v\nwithout huge pages %+v", h.seed, plain)
	}
	const perHuge = DefaultHugePageBlocks + 10*5 + 1 // 10 toggles of 3 + 2; the unknown block
	if h.seed.BlockCount != plain.BlockCount+2*perHuge {
		t.Fatalf("block count %d, want %d + 2×%d", h.seed.BlockCount, plain.BlockCount, perHuge)
	}
	huge := h.seed.HugePageIDs[0]
	blocks, requests := h.walkChildren(huge)
	if n, _ := h.s.PageBlockCount(h.ws, huge); len(blocks) != perHuge || n != perHuge {
		t.Fatalf("walked %d blocks, PageBlockCount %d, want %d", len(blocks), n, perHuge)
	}
	if want := DefaultHugePageBlocks/100 + 1 + 2*10; requests != want { // 2,501 top-level blocks: 26 pages
		t.Errorf("%d requests, want %d", requests, want)
	}
	// The long paragraph: 100 KB in rich text runs of at most 2,000
	// characters.
	first := blocks[0]
	rt := first["paragraph"].(map[string]any)["rich_text"].([]any)
	var text strings.Builder
	for _, it := range rt {
		c := it.(map[string]any)["text"].(map[string]any)["content"].(string)
		if len([]rune(c)) > MaxRichTextContent || it.(map[string]any)["plain_text"] != c {
			t.Fatalf("rich text run of %d characters", len(c))
		}
		text.WriteString(c)
	}
	if first["type"] != "paragraph" || len(rt) != DefaultHugeTextBytes/MaxRichTextContent || text.Len() != DefaultHugeTextBytes {
		t.Fatalf("long paragraph: %d runs, %d bytes", len(rt), text.Len())
	}
	types := map[string]int{}
	depth3 := false
	for _, b := range blocks {
		types[b["type"].(string)]++
		if par := b["parent"].(map[string]any); par["type"] == "block_id" {
			// A child of the inner toggle sits two levels below the page.
			if h.s.dataBlockParent(par["block_id"].(string)) != "" {
				depth3 = true
			}
		}
	}
	if types["toggle"] != 20 || types["ai_block"] != 1 || !depth3 {
		t.Errorf("types %v, three levels %v", types, depth3)
	}
	// Through notionapi, whose decoding must survive the long text.
	resp, err := h.api.Block.GetChildren(context.Background(), notionapi.BlockID(huge), &notionapi.Pagination{PageSize: 100})
	if err != nil || len(resp.Results) != 100 || !resp.HasMore {
		t.Fatalf("notionapi: %v, %d results", err, len(resp.Results))
	}

	if got := SplitRichText(""); len(got) != 0 {
		t.Errorf("SplitRichText(\"\") = %v", got)
	}
	if got := SplitRichText(strings.Repeat("é", 2001)); len(got) != 2 {
		t.Errorf("SplitRichText splits runes: %d runs", len(got))
	}
}

// dataBlockParent returns the parent block id of block id, "" for a block
// directly in a page (for tests).
func (s *Server) dataBlockParent(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.dataLocked().ws {
		if ref, ok := d.blocks[id]; ok {
			if ref.parent.Type == ParentBlock {
				return ref.parent.ID
			}
			return ""
		}
	}
	return ""
}

// The permanent kinds answer Notion's error object with their status and
// code, for a page GET, a children listing and a database query, every
// time until lifted.
func TestPoisonPermanentKinds(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 47, Pages: 4, BlocksPerPage: 3, Databases: 1, RowsPerDatabase: 2})
	status := map[PoisonKind]float64{PoisonRestricted: 403, PoisonNotFound: 404, PoisonValidation: 400}
	kinds := []PoisonKind{PoisonRestricted, PoisonNotFound, PoisonValidation}
	db := h.seed.DatabaseIDs[0]
	for i, kind := range kinds {
		if !kind.Permanent() || !PoisonQuery.Takes(kind) || !PoisonPageGet.Takes(kind) || !PoisonChildren.Takes(kind) || !PoisonDatabaseGet.Takes(kind) {
			t.Fatalf("%s: not a permanent kind for every target", kind)
		}
		page := h.seed.PageIDs[i]
		for _, target := range []PoisonTarget{PoisonPageGet, PoisonChildren, PoisonQuery, PoisonDatabaseGet} {
			id, method, path := page, "GET", "/v1/pages/"+page
			switch target {
			case PoisonDatabaseGet:
				id, path = db, "/v1/databases/"+db
			case PoisonChildren:
				path = childrenPath(page, "")
			case PoisonQuery:
				id, method, path = db, "POST", "/v1/databases/"+db+"/query"
			}
			if _, err := h.s.Poison(h.ws, id, target, kind); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				r := h.raw(method, path, nil)
				m := r.json(t)
				if float64(r.status) != status[kind] || m["code"] != string(kind) || m["object"] != "error" || m["status"] != status[kind] {
					t.Fatalf("%s %s: want %v %s, got %d %v", target, kind, status[kind], kind, r.status, m)
				}
			}
			if !h.s.Unpoison(h.ws, id, target) {
				t.Fatalf("%s %s was not poisoned", target, kind)
			}
			if r := h.raw(method, path, nil); r.status != 200 {
				t.Fatalf("%s %s after Unpoison: %d %s", target, kind, r.status, r.body)
			}
		}
	}
}
