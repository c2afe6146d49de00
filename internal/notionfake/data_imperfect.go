package notionfake

import (
	"fmt"
	"hash/fnv"
	"net/url"
	"strconv"
	"time"
)

// This file holds Notion's documented imperfections, each off in the zero
// Imperfections, so that a client can be shown failing on each before it is
// fixed (issue 11). Shapes follow @notionhq/client 5.x
// (build/src/api-endpoints/pages.d.ts, data-sources.d.ts).

// ReferenceLimit is how many references Notion puts in one page property
// value (relation, people, rich_text, title); the rest are read with
// GET /v1/pages/{page_id}/properties/{property_id}.
const ReferenceLimit = 25

// DefaultResultLimit is how many results Notion returns for one database or
// data source query before it answers request_status incomplete.
const DefaultResultLimit = 10_000

// Imperfections are the imperfections of Notion the fake reproduces. The
// zero value switches every one off.
type Imperfections struct {
	// MultiSourceReadFails: under API version 2022-06-28, GET
	// /v1/databases/{id} of a database with several data sources answers
	// the same 400 validation_error as its query (Notion's upgrade guide:
	// "Database read, write, or query" fail). Off: the GET succeeds and only
	// the query fails.
	MultiSourceReadFails bool
	// TruncateReferences cuts relation, people, rich_text and title values
	// of page objects at ReferenceLimit items and marks them has_more: true
	// (the SDK types list no has_more for the last three; Notion's relation
	// value carries it, the fake adds it to all four when it cuts). The
	// property item endpoint serves the whole list either way.
	TruncateReferences bool
	// ResultLimit stops every database and data source query at
	// ResultLimitSize rows (sorted and filtered as asked; pagination runs
	// through the first ResultLimitSize only). Each page of a query over
	// the limit carries request_status {type: "incomplete",
	// incomplete_reason: "query_result_limit_reached"}; the others
	// {type: "complete"}.
	ResultLimit bool
	// ResultLimitSize is the limit of ResultLimit. Default (0)
	// DefaultResultLimit; tests use a small one.
	ResultLimitSize int
	// SearchOmitShare is the fraction, 0..1, of pages (rows included) that
	// search never returns, chosen deterministically by page id (a hash of
	// the id below the share). GET and queries still serve them.
	SearchOmitShare float64
	// SearchOmitsDataSources applies SearchOmitShare to data sources too
	// (chosen by data source id the same way), as search under
	// Notion-Version 2025-09-03 lists them: a database's second data
	// source can be missing from search while its first is returned.
	SearchOmitsDataSources bool
	// SearchLag delays search's view of edits on the fake's clock: a page
	// created less than SearchLag ago is missing from search, a page edited
	// less than SearchLag ago is returned (and sorted) with the
	// last_edited_time it had before. Content that exists when SearchLag
	// is switched on is indexed as it is then.
	SearchLag time.Duration
	// CursorExpiry expires pagination cursors on the fake's clock: a
	// start_cursor (search, block children, database and data source
	// queries, property items, users) the fake issued CursorExpiry or
	// longer ago is refused with 400 validation_error "The start_cursor
	// provided is invalid: <cursor>", the answer Notion gives for a cursor
	// it no longer accepts. Issuing the same cursor again (a listing
	// started over) renews it. Zero: cursors never expire.
	CursorExpiry time.Duration
}

// cursorExpiredLocked reports whether req carries a start_cursor that the
// fake issued CursorExpiry or longer ago. The caller holds s.mu.
func (st *dataState) cursorExpiredLocked(req *dataRequest) (string, bool) {
	exp := req.imperfect.CursorExpiry
	if exp <= 0 {
		return "", false
	}
	c := req.requestCursor()
	if c == "" {
		return "", false
	}
	at, ok := st.cursorIssued[cursorKey{req.ws.id, c}]
	return c, ok && req.now.Sub(at) >= exp
}

// cursorKey names an issued cursor: cursors are object ids, unique per
// workspace.
type cursorKey struct{ ws, cursor string }

// noteCursorLocked records when the next_cursor of a successful list
// answer was issued (CursorExpiry). The caller holds s.mu.
func (st *dataState) noteCursorLocked(ws string, result any, now time.Time) {
	var next string
	switch l := result.(type) {
	case listJSON:
		if l.NextCursor != nil {
			next = *l.NextCursor
		}
	case map[string]any:
		next, _ = l["next_cursor"].(string)
	}
	if next == "" {
		return
	}
	if st.cursorIssued == nil {
		st.cursorIssued = make(map[cursorKey]time.Time)
	}
	st.cursorIssued[cursorKey{ws, next}] = now
}

func (im Imperfections) resultLimit() int {
	if !im.ResultLimit {
		return 0
	}
	if im.ResultLimitSize > 0 {
		return im.ResultLimitSize
	}
	return DefaultResultLimit
}

// SetImperfections replaces the imperfections in force.
func (s *Server) SetImperfections(im Imperfections) error {
	if !(im.SearchOmitShare >= 0 && im.SearchOmitShare <= 1) {
		return fmt.Errorf("notionfake: SearchOmitShare %v outside 0..1", im.SearchOmitShare)
	}
	if im.SearchLag < 0 || im.ResultLimitSize < 0 || im.CursorExpiry < 0 {
		return fmt.Errorf("notionfake: negative SearchLag, ResultLimitSize or CursorExpiry")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dataLocked()
	if im.SearchLag > 0 && st.imperfect.SearchLag == 0 {
		for _, d := range st.ws {
			for _, p := range d.pages {
				p.searchEdited, p.searchIndexed = p.LastEditedTime, true
			}
		}
	}
	st.imperfect = im
	return nil
}

// Imperfections returns the imperfections in force.
func (s *Server) Imperfections() Imperfections {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dataLocked().imperfect
}

// omittedFromSearch reports whether page id falls in the share of pages
// search omits: deterministic, so every search omits the same pages.
func omittedFromSearch(id string, share float64) bool {
	if share <= 0 {
		return false
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return float64(h.Sum64()>>11)/float64(1<<53) < share
}

// searchView returns the last_edited_time search shows for p and whether
// search shows p at all, under SearchLag; it brings p's search index up to
// date when the lag has passed. The caller holds s.mu.
func searchView(p *Page, lag time.Duration, now time.Time) (time.Time, bool) {
	if lag <= 0 {
		return p.LastEditedTime, true
	}
	if now.Sub(minute(p.LastEditedTime)) >= lag {
		p.searchEdited, p.searchIndexed = p.LastEditedTime, true
	}
	if !p.searchIndexed {
		if now.Sub(minute(p.CreatedTime)) < lag {
			return time.Time{}, false
		}
		// Created long ago, edited lately: indexed as created.
		p.searchEdited, p.searchIndexed = p.CreatedTime, true
	}
	return p.searchEdited, true
}

// requestStatus is a query's request_status.
type requestStatus struct {
	Type             string `json:"type"`
	IncompleteReason string `json:"incomplete_reason,omitempty"`
}

// truncatable are the property types whose page values Notion cuts at
// ReferenceLimit items.
func truncatable(typ string) bool {
	return typ == "relation" || typ == "people" || typ == "rich_text" || typ == "title"
}

// rollupCount is the value of a count rollup over n related pages.
func rollupCount(n int) map[string]any {
	return map[string]any{"type": "number", "number": n, "function": "count"}
}

// rollupRelation returns the relation items a rollup of p rolls up.
func (d *wsData) rollupRelation(p *Page, ps propertySchema) []any {
	name, _ := ps.config["relation_property_name"].(string)
	items, _ := p.Properties[name].([]any)
	return items
}

// propertyValue returns the whole value of property ps of page p (a row,
// or a page's "title"). A rollup is computed (count of the relation it
// names).
func (d *wsData) propertyValue(p *Page, ps propertySchema) any {
	if ps.typ == "rollup" {
		return rollupCount(len(d.rollupRelation(p, ps)))
	}
	if ps.typ == "title" {
		if v, ok := p.Properties[ps.name].([]any); ok && len(v) > 0 {
			return v
		}
		return RichText(p.Title)
	}
	if pv, ok := p.Properties[ps.name]; ok {
		return pv
	}
	return emptyPropertyValue(ps.typ)
}

// pageSchema returns the properties of p: its database's schema for a row,
// the title alone for a page.
func (d *wsData) pageSchema(p *Page) []propertySchema {
	if db := d.rowDatabase(p); db != nil {
		return db.schema
	}
	return []propertySchema{{id: "title", name: "title", typ: "title"}}
}

// getPageProperty serves GET /v1/pages/{id}/properties/{property_id}: a
// property item list for title, rich_text, people and relation (paginated,
// page_size up to 100, start_cursor an offset the fake issued) and for a
// rollup (its related pages, the whole value in property_item.rollup), a
// single property item for the other types.
func (s *Server) getPageProperty(req *dataRequest) (any, *apiError) {
	p, aerr := req.pathPage()
	if aerr != nil {
		return nil, aerr
	}
	propID := req.r.PathValue("property_id")
	var ps *propertySchema
	for _, sc := range req.ws.pageSchema(p) {
		if sc.id == propID {
			ps = &sc
			break
		}
	}
	if ps == nil {
		return nil, notFoundProperty(propID)
	}
	v := req.ws.propertyValue(p, *ps)
	items, isList := v.([]any)
	itemType, listValue := ps.typ, any(map[string]any{})
	switch {
	case ps.typ == "rollup":
		// The fake's choice (Notion documents the shape, not the items of a
		// count): the results are the related pages as relation items, the
		// whole rollup's value is property_item.rollup.
		items, itemType, listValue = req.ws.rollupRelation(p, *ps), "relation", v
	case !truncatable(ps.typ):
		return map[string]any{"object": "property_item", "id": ps.id, "type": ps.typ, ps.typ: v}, nil
	case !isList:
		items = nil
	}
	cursor, size, aerr := req.queryPagination()
	if aerr != nil {
		return nil, aerr
	}
	start := 0
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil || n <= 0 || n >= len(items) {
			return nil, invalidCursor(cursor)
		}
		start = n
	}
	end := min(start+size, len(items))
	results := make([]any, 0, end-start)
	for _, it := range items[start:end] {
		results = append(results, map[string]any{"object": "property_item", "id": ps.id, "type": itemType, itemType: it})
	}
	out := map[string]any{
		"object": "list", "results": results, "next_cursor": nil, "has_more": false,
		"type": "property_item", "request_id": req.id,
		"property_item": map[string]any{"id": ps.id, "type": ps.typ, ps.typ: listValue, "next_url": nil},
	}
	if end < len(items) {
		next := strconv.Itoa(end)
		out["next_cursor"], out["has_more"] = next, true
		u := url.URL{Scheme: "https", Host: "api.notion.com", Path: req.r.URL.Path,
			RawQuery: url.Values{"start_cursor": {next}}.Encode()}
		out["property_item"].(map[string]any)["next_url"] = u.String()
	}
	return out, nil
}

func notFoundProperty(id string) *apiError {
	return &apiError{status: 404, code: "object_not_found", message: fmt.Sprintf("Could not find property with id: %s", id)}
}

// seedManyReferences gives the first n rows of each database of the seed
// ManyReferences relation, people and rich_text items: the database's
// other rows first, then ids derived from the row's (pages the integration
// cannot see, as relations to unshared pages are). It adds a count rollup
// of the relation ("Related count") to the schema. It draws nothing from
// the seed's random stream.
func (g *seedGen) seedManyReferences(db *database, rows []string, n int) {
	if db.property(rollupName) == nil {
		var relID string
		for _, ps := range db.schema {
			if ps.typ == "relation" {
				relID = ps.id
				break
			}
		}
		db.schema = append(db.schema, propertySchema{id: "rlup", name: rollupName, typ: "rollup", config: map[string]any{
			"relation_property_name": "Related", "relation_property_id": relID,
			"rollup_property_name": "Name", "rollup_property_id": "title", "function": "count"}})
	}
	for i, rowID := range rows[:min(n, len(rows))] {
		row := g.d.pages[rowID]
		var rel, people, text []any
		for _, other := range rows {
			if other != rowID && len(rel) < ManyReferences {
				rel = append(rel, map[string]any{"id": other})
			}
		}
		for j := 0; len(rel) < ManyReferences; j++ {
			rel = append(rel, map[string]any{"id": derivedUUID(fmt.Sprintf("%s/relation/%d", rowID, j))})
		}
		for j := range ManyReferences {
			people = append(people, map[string]any{"object": "user", "id": derivedUUID(fmt.Sprintf("%s/user/%d", g.d.id, j))})
			text = append(text, RichText(fmt.Sprintf("part %d of row %d. ", j+1, i+1))[0])
		}
		for _, ps := range db.schema {
			switch ps.typ {
			case "relation":
				row.Properties[ps.name] = rel
			case "people":
				row.Properties[ps.name] = people
			case "rich_text":
				row.Properties[ps.name] = text
			}
		}
	}
}

// rollupName is the count rollup SeedSpec.ManyReferenceRows adds.
const rollupName = "Related count"

// ManyReferences is how many relation, people and rich_text items
// SeedSpec.ManyReferenceRows gives a row: more than ReferenceLimit.
const ManyReferences = 30

// SharePage shares page or database id with the integration again (after
// UnsharePage) without touching its last_edited_time: a page shared late
// shows up with an old timestamp, as in Notion.
func (s *Server) SharePage(ws, id string) error { return s.setShared(ws, id, true) }

// SearchOmits reports whether the imperfections in force make search omit
// page id (SearchOmitShare): tests use it to pick a page search cannot
// find.
func (s *Server) SearchOmits(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	nid, _ := normalizeID(id)
	return omittedFromSearch(nid, s.dataLocked().imperfect.SearchOmitShare)
}
