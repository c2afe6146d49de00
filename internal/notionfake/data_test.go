package notionfake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jomei/notionapi"
)

// t0 is the fake clock's start in the data tests: 30 s into a minute, so
// minute rounding is visible.
var t0 = time.Date(2025, 3, 4, 10, 0, 30, 0, time.UTC)

// dataHarness is a fake served over httptest with one seeded, connected
// workspace and a notionapi client pointed at it.
type dataHarness struct {
	t     *testing.T
	s     *Server
	ts    *httptest.Server
	clock *fakeClock
	ws    string
	pair  Pair
	seed  SeedResult
	api   *notionapi.Client
}

const testWS = "3f1e2d4c-5b6a-4789-8abc-def012345678"

func newDataHarness(t *testing.T, spec SeedSpec) *dataHarness {
	t.Helper()
	clock := &fakeClock{now: t0}
	s, ts := NewTest(t, Options{Now: clock.Now})
	h := &dataHarness{t: t, s: s, ts: ts, clock: clock, ws: testWS}
	h.seed = s.SeedWorkspace(testWS, spec)
	h.pair = s.SeedConnection(testWS)
	h.api = h.client(h.pair.AccessToken)
	return h
}

// rewriteTransport sends every request to the httptest server, as a client
// pointed at api.notion.com would be in tests.
type rewriteTransport struct {
	base   http.RoundTripper
	target *url.URL
}

func (rt rewriteTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.Clone(r.Context())
	r2.URL.Scheme, r2.URL.Host, r2.Host = rt.target.Scheme, rt.target.Host, ""
	return rt.base.RoundTrip(r2)
}

func (h *dataHarness) client(token string) *notionapi.Client {
	target, err := url.Parse(h.ts.URL)
	if err != nil {
		h.t.Fatal(err)
	}
	hc := &http.Client{Transport: rewriteTransport{base: h.ts.Client().Transport, target: target}}
	return notionapi.NewClient(notionapi.Token(token), notionapi.WithHTTPClient(hc), notionapi.WithRetry(1))
}

// rawReply is a response read without notionapi.
type rawReply struct {
	status int
	header http.Header
	body   []byte
}

func (r rawReply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("status %d: body is not JSON: %q", r.status, r.body)
	}
	return m
}

// raw sends a data request with the harness's token and Notion-Version,
// modified by mods.
func (h *dataHarness) raw(method, path string, body any, mods ...reqMod) rawReply {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.ts.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.pair.AccessToken)
	req.Header.Set("Notion-Version", "2022-06-28")
	req.Header.Set("Content-Type", "application/json")
	for _, m := range mods {
		m(req)
	}
	resp, err := h.ts.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return rawReply{status: resp.StatusCode, header: resp.Header, body: b}
}

func withToken(tok string) reqMod {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// notionErr returns err as a *notionapi.Error, failing the test otherwise.
func notionErr(t *testing.T, err error) *notionapi.Error {
	t.Helper()
	var ne *notionapi.Error
	if !errors.As(err, &ne) {
		t.Fatalf("error %v (%T) is not a *notionapi.Error", err, err)
	}
	return ne
}

func wantAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	ne := notionErr(t, err)
	if ne.Status != status || string(ne.Code) != code || ne.Object != "error" {
		t.Fatalf("error %+v, want %d %s", ne, status, code)
	}
}

func objectID(t *testing.T, o notionapi.Object) (string, time.Time) {
	t.Helper()
	switch v := o.(type) {
	case *notionapi.Page:
		return string(v.ID), v.LastEditedTime
	case *notionapi.Database:
		return string(v.ID), v.LastEditedTime
	}
	t.Fatalf("unexpected search result %T", o)
	return "", time.Time{}
}

// searchAll walks every page of a search and returns the ids in order.
func (h *dataHarness) searchAll(req notionapi.SearchRequest) (ids []string, edited []time.Time, calls int) {
	h.t.Helper()
	for {
		calls++
		resp, err := h.api.Search.Do(context.Background(), &req)
		if err != nil {
			h.t.Fatalf("search: %v", err)
		}
		if resp.Object != "list" || len(resp.Results) > max(req.PageSize, 1) && req.PageSize != 0 {
			h.t.Fatalf("bad list: object %q, %d results for page size %d", resp.Object, len(resp.Results), req.PageSize)
		}
		for _, o := range resp.Results {
			id, e := objectID(h.t, o)
			ids = append(ids, id)
			edited = append(edited, e)
		}
		if !resp.HasMore {
			if resp.NextCursor != "" {
				h.t.Fatalf("has_more false with next_cursor %q", resp.NextCursor)
			}
			return ids, edited, calls
		}
		req.StartCursor = resp.NextCursor
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

var richSpec = SeedSpec{
	Seed: 7, Pages: 12, NestedPages: 5, BlocksPerPage: 16, BlockDepth: 3,
	Databases: 2, RowsPerDatabase: 9, BlocksPerRow: 2, History: 72 * time.Hour,
}

func TestSearchWalksEverything(t *testing.T) {
	h := newDataHarness(t, richSpec)
	want := append(h.s.AllPageIDs(h.ws), h.seed.DatabaseIDs...)
	if len(want) != 12+2+18 {
		t.Fatalf("AllPageIDs+databases = %d ids", len(want))
	}

	ids, edited, calls := h.searchAll(notionapi.SearchRequest{PageSize: 7})
	if !slices.Equal(sortedCopy(ids), sortedCopy(want)) {
		t.Fatalf("search found %d ids, want %d (or different ones)", len(ids), len(want))
	}
	if wantCalls := (len(want) + 6) / 7; calls != wantCalls {
		t.Errorf("%d search calls, want %d", calls, wantCalls)
	}
	if !slices.IsSortedFunc(edited, func(a, b time.Time) int { return b.Compare(a) }) {
		t.Errorf("default order is not last_edited_time descending: %v", edited)
	}
	for _, e := range edited {
		if !e.Equal(e.Truncate(time.Minute)) || e.After(t0) || e.Before(t0.Add(-72*time.Hour-time.Minute)) {
			t.Fatalf("last_edited_time %v not a minute within History", e)
		}
	}

	_, asc, _ := h.searchAll(notionapi.SearchRequest{
		PageSize: 100, Sort: &notionapi.SortObject{Timestamp: "last_edited_time", Direction: "ascending"}})
	if !slices.IsSortedFunc(asc, func(a, b time.Time) int { return a.Compare(b) }) {
		t.Errorf("ascending sort not ascending")
	}

	pages, _, _ := h.searchAll(notionapi.SearchRequest{Filter: notionapi.SearchFilter{Property: "object", Value: "page"}})
	if !slices.Equal(sortedCopy(pages), sortedCopy(h.s.AllPageIDs(h.ws))) {
		t.Errorf("page filter: %d ids", len(pages))
	}
	dbs, _, _ := h.searchAll(notionapi.SearchRequest{Filter: notionapi.SearchFilter{Property: "object", Value: "database"}})
	if !slices.Equal(sortedCopy(dbs), sortedCopy(h.seed.DatabaseIDs)) {
		t.Errorf("database filter: %v", dbs)
	}
	hit, _, _ := h.searchAll(notionapi.SearchRequest{Query: "database 2"})
	if len(hit) != 1 || hit[0] != h.seed.DatabaseIDs[1] {
		t.Errorf("query: %v", hit)
	}
}

func TestSearchRawShapeAndValidation(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 1, Pages: 3})
	r := h.raw("POST", "/v1/search", map[string]any{"page_size": 2})
	m := r.json(t)
	if r.status != 200 || m["object"] != "list" || m["type"] != "page_or_database" || m["has_more"] != true {
		t.Fatalf("search: %d %v", r.status, m)
	}
	if pod, ok := m["page_or_database"].(map[string]any); !ok || len(pod) != 0 {
		t.Errorf("page_or_database = %v", m["page_or_database"])
	}
	if id := r.header.Get("x-notion-request-id"); id == "" || id != m["request_id"] {
		t.Errorf("request id header %q, body %v", id, m["request_id"])
	}

	for name, body := range map[string]map[string]any{
		"cursor":    {"start_cursor": "5a5a5a5a-5a5a-4a5a-8a5a-5a5a5a5a5a5a"},
		"size 101":  {"page_size": 101},
		"size 0":    {"page_size": 0},
		"filter":    {"filter": map[string]any{"property": "object", "value": "block"}},
		"sort":      {"sort": map[string]any{"timestamp": "created_time", "direction": "descending"}},
		"direction": {"sort": map[string]any{"timestamp": "last_edited_time", "direction": "up"}},
		"type":      {"page_size": "ten"},
	} {
		r := h.raw("POST", "/v1/search", body)
		if m := r.json(t); r.status != 400 || m["code"] != "validation_error" || m["object"] != "error" {
			t.Errorf("%s: %d %v", name, r.status, m)
		}
	}
	_, err := h.api.Search.Do(context.Background(), &notionapi.SearchRequest{StartCursor: "nope"})
	wantAPIError(t, err, 400, "validation_error")

	r = h.raw("POST", "/v1/search", nil, func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("{")) })
	if m := r.json(t); r.status != 400 || m["code"] != "invalid_json" {
		t.Errorf("bad JSON: %d %v", r.status, m)
	}
}

func TestPageAndDatabaseObjects(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 3, Pages: 2, Databases: 1, RowsPerDatabase: 3})
	ctx := context.Background()
	dbID := h.seed.DatabaseIDs[0]
	rowID := h.seed.RowIDs[2]

	row, err := h.api.Page.Get(ctx, notionapi.PageID(rowID))
	if err != nil {
		t.Fatal(err)
	}
	if string(row.ID) != rowID || row.Object != "page" || row.Parent.Type != "database_id" ||
		string(row.Parent.DatabaseID) != dbID || row.Archived || row.CreatedBy.Object != "user" ||
		row.CreatedBy.ID == "" || !strings.HasSuffix(row.URL, strings.ReplaceAll(rowID, "-", "")) {
		t.Fatalf("row %+v", row)
	}
	wantTypes := map[string]notionapi.Property{
		"Name": &notionapi.TitleProperty{}, "Notes": &notionapi.RichTextProperty{},
		"Score": &notionapi.NumberProperty{}, "Status": &notionapi.SelectProperty{},
		"Tags": &notionapi.MultiSelectProperty{}, "Due": &notionapi.DateProperty{},
		"Done": &notionapi.CheckboxProperty{}, "Link": &notionapi.URLProperty{},
		"Owner": &notionapi.PeopleProperty{}, "Related": &notionapi.RelationProperty{},
	}
	if len(row.Properties) != len(wantTypes) {
		t.Fatalf("row has %d properties", len(row.Properties))
	}
	for name, want := range wantTypes {
		got, ok := row.Properties[name]
		if !ok || got.GetType() == "" || propKind(got) != propKind(want) {
			t.Errorf("property %s: %T, want %T", name, got, want)
		}
	}
	title := row.Properties["Name"].(*notionapi.TitleProperty)
	if len(title.Title) != 1 || !strings.HasPrefix(title.Title[0].PlainText, "Row 3 ") || title.ID != "title" {
		t.Errorf("title %+v", title)
	}
	rel := row.Properties["Related"].(*notionapi.RelationProperty)
	if len(rel.Relation) != 1 || string(rel.Relation[0].ID) != h.seed.RowIDs[1] {
		t.Errorf("relation %+v", rel.Relation)
	}
	if due := row.Properties["Due"].(*notionapi.DateProperty); due.Date == nil || due.Date.Start == nil {
		t.Errorf("date %+v", due)
	}

	db, err := h.api.Database.Get(ctx, notionapi.DatabaseID(dbID))
	if err != nil {
		t.Fatal(err)
	}
	if db.Object != "database" || len(db.Title) != 1 || !strings.HasPrefix(db.Title[0].PlainText, "Database 1 ") ||
		db.Parent.Type != "page_id" || len(db.Properties) != len(wantTypes) {
		t.Fatalf("database %+v", db)
	}
	if sel, ok := db.Properties["Status"].(*notionapi.SelectPropertyConfig); !ok || len(sel.Select.Options) != 3 {
		t.Errorf("select config %+v", db.Properties["Status"])
	}
	if rc, ok := db.Properties["Related"].(*notionapi.RelationPropertyConfig); !ok || string(rc.Relation.DatabaseID) != dbID {
		t.Errorf("relation config %+v", db.Properties["Related"])
	}

	// Raw shape: what notionapi drops.
	m := h.raw("GET", "/v1/pages/"+rowID, nil).json(t)
	for _, k := range []string{"in_trash", "icon", "cover", "public_url"} {
		if _, ok := m[k]; !ok {
			t.Errorf("page JSON lacks %q", k)
		}
	}
	if m["icon"] != nil || m["in_trash"] != false || !strings.HasSuffix(m["last_edited_time"].(string), ":00.000Z") {
		t.Errorf("page JSON %v", m)
	}
	top := h.raw("GET", "/v1/pages/"+h.seed.PageIDs[0], nil).json(t)
	if p := top["parent"].(map[string]any); p["type"] != "workspace" || p["workspace"] != true {
		t.Errorf("top-level parent %v", p)
	}
	if props := top["properties"].(map[string]any); len(props) != 1 || props["title"] == nil {
		t.Errorf("page properties %v", props)
	}
}

// propKind names the notionapi type a property value decoded to.
func propKind(v notionapi.Property) string {
	switch v.(type) {
	case *notionapi.TitleProperty:
		return "title"
	case *notionapi.RichTextProperty:
		return "rich_text"
	case *notionapi.NumberProperty:
		return "number"
	case *notionapi.SelectProperty:
		return "select"
	case *notionapi.MultiSelectProperty:
		return "multi_select"
	case *notionapi.DateProperty:
		return "date"
	case *notionapi.CheckboxProperty:
		return "checkbox"
	case *notionapi.URLProperty:
		return "url"
	case *notionapi.PeopleProperty:
		return "people"
	case *notionapi.RelationProperty:
		return "relation"
	}
	return "other"
}

// walkBlocks reads a page's content with notionapi, recursing where
// has_children (not into child pages), and returns the blocks in order.
func (h *dataHarness) walkBlocks(id string, pageSize int) []notionapi.Block {
	h.t.Helper()
	var out []notionapi.Block
	var cursor notionapi.Cursor
	for {
		resp, err := h.api.Block.GetChildren(context.Background(), notionapi.BlockID(id),
			&notionapi.Pagination{StartCursor: cursor, PageSize: pageSize})
		if err != nil {
			h.t.Fatalf("children of %s: %v", id, err)
		}
		if len(resp.Results) > pageSize {
			h.t.Fatalf("%d results for page size %d", len(resp.Results), pageSize)
		}
		for _, b := range resp.Results {
			out = append(out, b)
			if b.GetHasChildren() && b.GetType() != "child_page" && b.GetType() != "child_database" {
				out = append(out, h.walkBlocks(string(b.GetID()), pageSize)...)
			}
		}
		if !resp.HasMore {
			return out
		}
		cursor = notionapi.Cursor(resp.NextCursor)
	}
}

func TestBlockChildrenWalkMatchesSeed(t *testing.T) {
	h := newDataHarness(t, richSpec)
	ctx := context.Background()
	seen := map[notionapi.BlockType]int{}
	total := 0
	for _, id := range append(slices.Clone(h.seed.PageIDs), h.seed.RowIDs...) {
		blocks := h.walkBlocks(id, 4)
		wantIDs, err := h.s.PageBlockIDs(h.ws, id)
		if err != nil {
			t.Fatal(err)
		}
		gotIDs := make([]string, len(blocks))
		for i, b := range blocks {
			gotIDs[i] = string(b.GetID())
			seen[b.GetType()]++
			if b.GetObject() != "block" || b.GetCreatedTime() == nil || b.GetParent() == nil {
				t.Fatalf("block %+v", b)
			}
		}
		if !slices.Equal(gotIDs, wantIDs) {
			t.Fatalf("page %s: walked %d blocks, PageBlockIDs %d", id, len(gotIDs), len(wantIDs))
		}
		n, _ := h.s.PageBlockCount(h.ws, id)
		if n != len(blocks) {
			t.Fatalf("PageBlockCount %d, walked %d", n, len(blocks))
		}
		total += n
		for _, b := range blocks {
			switch b := b.(type) {
			case *notionapi.ChildPageBlock:
				p, err := h.api.Page.Get(ctx, notionapi.PageID(b.ID))
				if err != nil || string(p.Parent.PageID) != id {
					t.Fatalf("child page %s of %s: %v, parent %+v", b.ID, id, err, p)
				}
				if b.ChildPage.Title == "" {
					t.Errorf("child_page without title")
				}
			case *notionapi.ChildDatabaseBlock:
				if _, err := h.api.Database.Get(ctx, notionapi.DatabaseID(b.ID)); err != nil {
					t.Fatalf("child database %s: %v", b.ID, err)
				}
			case *notionapi.TableBlock:
				if b.Table.TableWidth != 3 || !b.HasChildren {
					t.Errorf("table %+v", b.Table)
				}
			case *notionapi.TableRowBlock:
				if len(b.TableRow.Cells) != 3 {
					t.Errorf("table row %+v", b.TableRow)
				}
			case *notionapi.UnsupportedBlock:
				t.Errorf("unexpected unsupported block")
			}
		}
	}
	if total != h.seed.BlockCount {
		t.Errorf("walked %d blocks, SeedResult.BlockCount %d", total, h.seed.BlockCount)
	}
	for _, typ := range []notionapi.BlockType{"paragraph", "heading_1", "heading_2", "heading_3", "bulleted_list_item",
		"numbered_list_item", "to_do", "code", "toggle", "table", "table_row", "quote", "callout", "divider",
		"child_page", "child_database"} {
		if seen[typ] == 0 {
			t.Errorf("no %s block seeded", typ)
		}
	}
	if h.seed.BlockCount < 12*16 {
		t.Errorf("BlockCount %d", h.seed.BlockCount)
	}
}

func TestGetBlock(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 2, Pages: 2, NestedPages: 1, BlocksPerPage: 5, BlockDepth: 2, Databases: 1})
	ctx := context.Background()
	ids, _ := h.s.PageBlockIDs(h.ws, h.seed.PageIDs[0])
	for _, id := range ids {
		b, err := h.api.Block.Get(ctx, notionapi.BlockID(id))
		if err != nil {
			t.Fatalf("block %s: %v", id, err)
		}
		if string(b.GetID()) != id {
			t.Fatalf("got block %s for %s", b.GetID(), id)
		}
	}
	b, err := h.api.Block.Get(ctx, notionapi.BlockID(h.seed.PageIDs[1]))
	if err != nil {
		t.Fatal(err)
	}
	if cp, ok := b.(*notionapi.ChildPageBlock); !ok || cp.Parent.Type != "page_id" || string(cp.Parent.PageID) != h.seed.PageIDs[0] {
		t.Fatalf("page as block: %#v", b)
	}
	if b, err := h.api.Block.Get(ctx, notionapi.BlockID(h.seed.DatabaseIDs[0])); err != nil || b.GetType() != "child_database" {
		t.Fatalf("database as block: %v %v", b, err)
	}
	_, err = h.api.Block.Get(ctx, "5a5a5a5a-5a5a-4a5a-8a5a-5a5a5a5a5a5a")
	wantAPIError(t, err, 404, "object_not_found")
}

func TestUnknownBlockTypes(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 4, Pages: 1, BlocksPerPage: 2, UnknownBlocks: true})
	page := h.seed.PageIDs[0]
	resp, err := h.api.Block.GetChildren(context.Background(), notionapi.BlockID(page), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != 3 {
		t.Fatalf("%d children", len(resp.Results))
	}
	// notionapi decodes unknown types to an empty UnsupportedBlock.
	if u, ok := resp.Results[2].(*notionapi.UnsupportedBlock); !ok || u.ID != "" {
		t.Fatalf("unknown block decoded as %#v", resp.Results[2])
	}
	m := h.raw("GET", "/v1/blocks/"+page+"/children", nil).json(t)
	last := m["results"].([]any)[2].(map[string]any)
	if last["type"] != "ai_block" || last["id"] == "" || last["has_children"] != false {
		t.Fatalf("raw unknown block %v", last)
	}
	if payload, ok := last["ai_block"].(map[string]any); !ok || payload["prompt"] == nil {
		t.Fatalf("payload %v", last["ai_block"])
	}

	// Added through EditPage, with children.
	if err := h.s.EditPage(h.ws, page, func(p *Page) {
		p.Blocks = append(p.Blocks, NewBlock("transcription", map[string]any{"x": 1}, TextBlock("paragraph", "inside")))
	}); err != nil {
		t.Fatal(err)
	}
	ids, _ := h.s.PageBlockIDs(h.ws, page)
	kids := h.raw("GET", "/v1/blocks/"+ids[len(ids)-2]+"/children", nil).json(t)
	if res := kids["results"].([]any); len(res) != 1 || res[0].(map[string]any)["type"] != "paragraph" {
		t.Fatalf("children of unknown block: %v", kids)
	}
}

func TestQueryOnOrAfterWithMinuteRounding(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 5, Databases: 1, RowsPerDatabase: 5})
	ctx := context.Background()
	db := notionapi.DatabaseID(h.seed.DatabaseIDs[0])
	rows := h.seed.RowIDs
	at := func(hh, mm, ss int) *notionapi.Date {
		d := notionapi.Date(time.Date(2025, 3, 4, hh, mm, ss, 0, time.UTC))
		return &d
	}
	edited := func(c notionapi.DateFilterCondition) notionapi.Filter {
		return notionapi.TimestampFilter{Timestamp: "last_edited_time", LastEditedTime: &c}
	}
	query := func(f notionapi.Filter, sorts ...notionapi.SortObject) []string {
		t.Helper()
		resp, err := h.api.Database.Query(ctx, db, &notionapi.DatabaseQueryRequest{Filter: f, Sorts: sorts})
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		ids := make([]string, len(resp.Results))
		for i, p := range resp.Results {
			ids[i] = string(p.ID)
		}
		return ids
	}

	if got := query(nil); !slices.Equal(got, rows) {
		t.Fatalf("unfiltered query %v, want rows in creation order %v", got, rows)
	}
	// Seeded at 10:00:30 -> last_edited_time 10:00:00.
	if got := query(edited(notionapi.DateFilterCondition{OnOrAfter: at(10, 0, 0)})); len(got) != 5 {
		t.Fatalf("on_or_after 10:00:00: %d rows", len(got))
	}
	if got := query(edited(notionapi.DateFilterCondition{After: at(10, 0, 0)})); len(got) != 0 {
		t.Fatalf("after 10:00:00: %d rows", len(got))
	}

	h.clock.Advance(4*time.Minute + 40*time.Second) // 10:05:10
	if err := h.s.EditPage(h.ws, rows[1], func(p *Page) { p.Properties["Score"] = 1.5 }); err != nil {
		t.Fatal(err)
	}
	p, err := h.api.Page.Get(ctx, notionapi.PageID(rows[1]))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 3, 4, 10, 5, 0, 0, time.UTC); !p.LastEditedTime.Equal(want) {
		t.Fatalf("last_edited_time %v, want %v (rounded down)", p.LastEditedTime, want)
	}
	if got := query(edited(notionapi.DateFilterCondition{OnOrAfter: at(10, 5, 0)})); !slices.Equal(got, rows[1:2]) {
		t.Fatalf("on_or_after 10:05:00: %v", got)
	}
	// A cursor taken from the wall clock (10:05:10) misses the edit.
	if got := query(edited(notionapi.DateFilterCondition{OnOrAfter: at(10, 5, 10)})); len(got) != 0 {
		t.Fatalf("on_or_after 10:05:10: %v", got)
	}

	h.clock.Advance(40 * time.Second) // 10:05:50, same minute
	if err := h.s.TouchPage(h.ws, rows[3], "typed"); err != nil {
		t.Fatal(err)
	}
	if err := h.s.TouchPage(h.ws, rows[1], "again"); err != nil {
		t.Fatal(err)
	}
	p2, _ := h.api.Page.Get(ctx, notionapi.PageID(rows[1]))
	if !p2.LastEditedTime.Equal(p.LastEditedTime) {
		t.Fatalf("second edit in the same minute moved last_edited_time to %v", p2.LastEditedTime)
	}
	// A strict "after" with the last seen value loses same-minute edits.
	if got := query(edited(notionapi.DateFilterCondition{After: at(10, 5, 0)})); len(got) != 0 {
		t.Fatalf("after 10:05:00: %v", got)
	}
	if got := query(edited(notionapi.DateFilterCondition{OnOrAfter: at(10, 5, 0)})); !slices.Equal(got, []string{rows[1], rows[3]}) {
		t.Fatalf("on_or_after 10:05:00: %v", got)
	}
	if got := query(edited(notionapi.DateFilterCondition{Before: at(10, 5, 0)})); len(got) != 3 {
		t.Fatalf("before: %v", got)
	}
	if got := query(edited(notionapi.DateFilterCondition{OnOrBefore: at(10, 5, 0)})); len(got) != 5 {
		t.Fatalf("on_or_before: %v", got)
	}
	raw := h.raw("POST", "/v1/databases/"+string(db)+"/query", map[string]any{"filter": map[string]any{
		"timestamp": "last_edited_time", "last_edited_time": map[string]any{"equals": "2025-03-04"}}})
	if res := raw.json(t)["results"].([]any); raw.status != 200 || len(res) != 5 {
		t.Fatalf("equals date-only: %d %s", raw.status, raw.body)
	}

	// Sorts.
	got := query(nil, notionapi.SortObject{Timestamp: "last_edited_time", Direction: "descending"})
	if !slices.Equal(got[:2], []string{rows[1], rows[3]}) {
		t.Fatalf("sorted descending: %v", got)
	}
	got = query(nil, notionapi.SortObject{Property: "Name", Direction: "descending"})
	if !slices.IsSortedFunc(got, func(a, b string) int { return -strings.Compare(titleOf(t, h, a), titleOf(t, h, b)) }) {
		t.Fatalf("sorted by title: %v", got)
	}

	// Compounds.
	and := notionapi.AndCompoundFilter{
		edited(notionapi.DateFilterCondition{OnOrAfter: at(10, 0, 0)}),
		edited(notionapi.DateFilterCondition{Before: at(10, 5, 0)}),
	}
	if got := query(and); len(got) != 3 {
		t.Fatalf("and: %v", got)
	}
	or := notionapi.OrCompoundFilter{
		edited(notionapi.DateFilterCondition{After: at(10, 4, 0)}),
		notionapi.TimestampFilter{Timestamp: "created_time", CreatedTime: &notionapi.DateFilterCondition{Before: at(9, 0, 0)}},
	}
	if got := query(or); len(got) != 2 {
		t.Fatalf("or: %v", got)
	}
	nested := notionapi.AndCompoundFilter{or, notionapi.OrCompoundFilter{and}}
	if got := query(nested); len(got) != 0 {
		t.Fatalf("nested: %v", got)
	}
}

func titleOf(t *testing.T, h *dataHarness, id string) string {
	t.Helper()
	var title string
	if err := h.s.ViewPage(h.ws, id, func(p *Page) { title = p.Title }); err != nil {
		t.Fatal(err)
	}
	return title
}

func TestQueryValidationAndPagination(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 6, Databases: 1, RowsPerDatabase: 11})
	ctx := context.Background()
	db := h.seed.DatabaseIDs[0]
	var got []string
	req := &notionapi.DatabaseQueryRequest{PageSize: 4}
	for calls := 1; ; calls++ {
		resp, err := h.api.Database.Query(ctx, notionapi.DatabaseID(db), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.Results {
			got = append(got, string(p.ID))
		}
		if !resp.HasMore {
			if calls != 3 {
				t.Errorf("%d calls", calls)
			}
			break
		}
		req.StartCursor = resp.NextCursor
	}
	if !slices.Equal(got, h.seed.RowIDs) {
		t.Fatalf("paginated query %v", got)
	}

	path := "/v1/databases/" + db + "/query"
	for name, body := range map[string]any{
		"property filter": map[string]any{"filter": map[string]any{"property": "Done", "checkbox": map[string]any{"equals": true}}},
		"bad date":        map[string]any{"filter": map[string]any{"timestamp": "last_edited_time", "last_edited_time": map[string]any{"after": "yesterday"}}},
		"two conditions": map[string]any{"filter": map[string]any{"timestamp": "last_edited_time",
			"last_edited_time": map[string]any{"after": "2025-01-01", "before": "2026-01-01"}}},
		"past_week": map[string]any{"filter": map[string]any{"timestamp": "last_edited_time", "last_edited_time": map[string]any{"past_week": map[string]any{}}}},
		"too deep": map[string]any{"filter": map[string]any{"and": []any{map[string]any{"or": []any{
			map[string]any{"and": []any{map[string]any{"or": []any{}}}}}}}}},
		"sort prop":   map[string]any{"sorts": []any{map[string]any{"property": "Nope", "direction": "ascending"}}},
		"sort number": map[string]any{"sorts": []any{map[string]any{"property": "Score", "direction": "ascending"}}},
		"sort dir":    map[string]any{"sorts": []any{map[string]any{"timestamp": "created_time", "direction": "sideways"}}},
		"cursor":      map[string]any{"start_cursor": h.seed.DatabaseIDs[0]},
		"size":        map[string]any{"page_size": 500},
	} {
		r := h.raw("POST", path, body)
		if m := r.json(t); r.status != 400 || m["code"] != "validation_error" {
			t.Errorf("%s: %d %v", name, r.status, m)
		}
	}
}

func TestUnshareAndArchive(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 8, Pages: 3, NestedPages: 2, BlocksPerPage: 2, Databases: 1, RowsPerDatabase: 2})
	ctx := context.Background()
	// Find a page with a child page.
	var parent, child string
	for _, id := range h.seed.PageIDs {
		_ = h.s.ViewPage(h.ws, id, func(p *Page) {
			if p.Parent.Type == ParentPage && parent == "" {
				parent, child = p.Parent.ID, p.ID
			}
		})
	}
	if parent == "" {
		t.Fatal("no nested page seeded")
	}
	childBlocks := func() int {
		t.Helper()
		n := 0
		for _, b := range h.walkBlocks(parent, 100) {
			if string(b.GetID()) == child {
				n++
			}
		}
		return n
	}

	// Archive the child.
	h.clock.Advance(3 * time.Minute)
	if err := h.s.ArchivePage(h.ws, child); err != nil {
		t.Fatal(err)
	}
	p, err := h.api.Page.Get(ctx, notionapi.PageID(child))
	if err != nil || !p.Archived || !p.LastEditedTime.Equal(minute(h.clock.Now())) {
		t.Fatalf("archived page: %+v %v", p, err)
	}
	if m := h.raw("GET", "/v1/pages/"+child, nil).json(t); m["in_trash"] != true || m["archived"] != true {
		t.Fatalf("archived raw %v", m)
	}
	if slices.Contains(h.s.AllPageIDs(h.ws), child) {
		t.Error("AllPageIDs lists an archived page")
	}
	if ids, _, _ := h.searchAll(notionapi.SearchRequest{}); slices.Contains(ids, child) {
		t.Error("search lists an archived page")
	}
	if childBlocks() != 0 {
		t.Error("parent still lists the archived child page")
	}
	// Restore through the API.
	restored, err := h.api.Page.Update(ctx, notionapi.PageID(child), &notionapi.PageUpdateRequest{Archived: false})
	if err != nil || restored.Archived {
		t.Fatalf("restore: %+v %v", restored, err)
	}
	if childBlocks() != 1 {
		t.Error("restored child page not listed")
	}

	// Unshare the parent: it and the child are gone, the rest stays.
	if err := h.s.UnsharePage(h.ws, parent); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{parent, child} {
		_, err := h.api.Page.Get(ctx, notionapi.PageID(id))
		wantAPIError(t, err, 404, "object_not_found")
		_, err = h.api.Block.GetChildren(ctx, notionapi.BlockID(id), nil)
		wantAPIError(t, err, 404, "object_not_found")
	}
	ids, _, _ := h.searchAll(notionapi.SearchRequest{})
	if slices.Contains(ids, parent) || slices.Contains(ids, child) {
		t.Error("search lists unshared pages")
	}
	if !slices.Equal(sortedCopy(ids), sortedCopy(append(h.s.AllPageIDs(h.ws), searchableDBs(h)...))) {
		t.Errorf("search %d ids vs AllPageIDs", len(ids))
	}
	if err := h.s.UnsharePage(h.ws, h.seed.DatabaseIDs[0]); err != nil {
		t.Fatal(err)
	}
	_, err = h.api.Database.Query(ctx, notionapi.DatabaseID(h.seed.DatabaseIDs[0]), &notionapi.DatabaseQueryRequest{})
	wantAPIError(t, err, 404, "object_not_found")
	_, err = h.api.Page.Get(ctx, notionapi.PageID(h.seed.RowIDs[0]))
	wantAPIError(t, err, 404, "object_not_found")
	if err := h.s.UnsharePage(h.ws, "5a5a5a5a-5a5a-4a5a-8a5a-5a5a5a5a5a5a"); !errors.Is(err, ErrObjectNotFound) {
		t.Errorf("UnsharePage unknown: %v", err)
	}
}

// searchableDBs returns the seeded databases the integration still reads.
func searchableDBs(h *dataHarness) []string {
	var out []string
	for _, id := range h.seed.DatabaseIDs {
		if r := h.raw("GET", "/v1/databases/"+id, nil); r.status == 200 {
			out = append(out, id)
		}
	}
	return out
}

func TestMultiSourceDatabase(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 9, Pages: 1})
	ctx := context.Background()
	id, err := h.s.AddMultiSourceDatabase(h.ws, PageParent(h.seed.PageIDs[0]), "Two sources")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.api.Database.Get(ctx, notionapi.DatabaseID(id)); err != nil {
		t.Fatalf("retrieve: %v", err)
	}
	_, err = h.api.Database.Query(ctx, notionapi.DatabaseID(id), &notionapi.DatabaseQueryRequest{})
	wantAPIError(t, err, 400, "validation_error")
	if msg := notionErr(t, err).Message; !strings.Contains(msg, "Databases with multiple data sources are not supported in this API version.") {
		t.Errorf("message %q", msg)
	}
}

func TestAuthenticationOfDataRequests(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 10, Pages: 1})
	path := "/v1/pages/" + h.seed.PageIDs[0]
	if r := h.raw("GET", path, nil, withoutVersion); r.status != 400 || r.json(t)["code"] != "missing_version" {
		t.Fatalf("no version: %d %s", r.status, r.body)
	}
	if r := h.raw("GET", path, nil, withToken("ntn_bogus")); r.status != 401 || r.json(t)["code"] != "unauthorized" {
		t.Fatalf("bad token: %d %s", r.status, r.body)
	}
	// Another workspace's token sees none of this one's content.
	other := h.s.SeedConnection("")
	if r := h.raw("GET", path, nil, withToken(other.AccessToken)); r.status != 404 {
		t.Fatalf("other workspace: %d %s", r.status, r.body)
	}
	h.s.Revoke(h.ws)
	if r := h.raw("GET", path, nil); r.status != 401 {
		t.Fatalf("revoked: %d", r.status)
	}
	st := h.s.DataStats()
	if st.Count(EndpointGetPage, 401) != 2 || st.Count(EndpointGetPage, 400) != 1 || st.Count(EndpointGetPage, 404) != 1 {
		t.Errorf("stats %+v", st.Requests)
	}
	if h.s.RequestCount(h.ws) != 0 || h.s.RequestCount(other.WorkspaceID) != 1 || st.Total() != 4 {
		t.Errorf("request counts: ws %d, other %d, total %d", h.s.RequestCount(h.ws), h.s.RequestCount(other.WorkspaceID), st.Total())
	}
}

func TestPathIDsAndRoutes(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 11, Pages: 1})
	id := h.seed.PageIDs[0]
	if r := h.raw("GET", "/v1/pages/"+strings.ReplaceAll(strings.ToUpper(id), "-", ""), nil); r.status != 200 || r.json(t)["id"] != id {
		t.Fatalf("undashed id: %d %s", r.status, r.body)
	}
	if r := h.raw("GET", "/v1/pages/not-a-uuid", nil); r.status != 400 || r.json(t)["code"] != "validation_error" {
		t.Fatalf("bad id: %d %s", r.status, r.body)
	}
	if r := h.raw("PUT", "/v1/pages/"+id, nil); r.status != 400 || r.json(t)["code"] != "invalid_request_url" {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	if r := h.raw("GET", "/v1/blocks/"+id+"/children?page_size=abc", nil); r.status != 400 {
		t.Fatalf("page_size=abc: %d", r.status)
	}
	r := h.raw("PATCH", "/v1/pages/"+id, map[string]any{"properties": map[string]any{
		"title": map[string]any{"title": []any{map[string]any{"text": map[string]any{"content": "Renamed"}}}}}})
	if m := r.json(t); r.status != 200 || titleOf(t, h, id) != "Renamed" || m["object"] != "page" {
		t.Fatalf("rename: %d %s", r.status, r.body)
	}
	if r := h.raw("PATCH", "/v1/pages/"+id, map[string]any{"properties": map[string]any{"Score": map[string]any{"number": 1}}}); r.status != 400 {
		t.Fatalf("unsupported property update: %d", r.status)
	}
}
