package notionfake

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// This file serves the data endpoints. Each handler runs with s.mu held (see
// dataHandler) and returns a body to marshal or a Notion error.

// maxParentHops bounds the walk up a parent chain (a test could build a cycle
// with EditPage).
const maxParentHops = 1000

// parentReadable reports whether every ancestor along par is shared with the
// integration. Sharing is inherited: unsharing a page hides everything in it.
func (d *wsData) parentReadable(par Parent) bool {
	for range maxParentHops {
		switch par.Type {
		case ParentPage:
			p, ok := d.pages[par.ID]
			if !ok {
				return true
			}
			if p.unshared {
				return false
			}
			par = p.Parent
		case ParentDatabase:
			db, ok := d.dbs[par.ID]
			if !ok {
				return true
			}
			if db.unshared {
				return false
			}
			par = db.parent
		case ParentBlock:
			ref, ok := d.blocks[par.ID]
			if !ok {
				return true
			}
			par = PageParent(ref.page.ID)
		default:
			return true
		}
	}
	return true
}

func (d *wsData) pageReadable(p *Page) bool { return !p.unshared && d.parentReadable(p.Parent) }

func (d *wsData) dbReadable(db *database) bool { return !db.unshared && d.parentReadable(db.parent) }

// readablePage returns the page id if the integration can read it.
func (d *wsData) readablePage(id string) (*Page, bool) {
	p, ok := d.pages[id]
	if !ok || !d.pageReadable(p) {
		return nil, false
	}
	return p, true
}

func (d *wsData) readableDatabase(id string) (*database, bool) {
	db, ok := d.dbs[id]
	if !ok || !d.dbReadable(db) {
		return nil, false
	}
	return db, true
}

// search serves POST /v1/search: readable, not archived pages (rows
// included) and databases whose title contains the query (case-insensitive),
// by last_edited_time (descending unless asked otherwise; ties in creation
// order).
func (s *Server) search(req *dataRequest) (any, *apiError) {
	p, aerr := req.searchParams()
	if aerr != nil {
		return nil, aerr
	}
	d := req.ws
	type hit struct {
		id     string
		edited time.Time
		seq    int64
		render func() any
	}
	query := strings.ToLower(p.query)
	matches := func(title string) bool { return strings.Contains(strings.ToLower(title), query) }
	var hits []hit
	if p.object == "" || p.object == "page" {
		for _, pg := range d.pages {
			if pg.Archived || !matches(pg.Title) || !d.pageReadable(pg) || omittedFromSearch(pg.ID, req.imperfect.SearchOmitShare) {
				continue
			}
			edited, indexed := searchView(pg, req.imperfect.SearchLag, req.now)
			if !indexed {
				continue
			}
			hits = append(hits, hit{pg.ID, minute(edited), pg.seq, func() any {
				out := d.renderPage(pg, req.renderOpts())
				out.LastEditedTime = notionTime(edited) // the lagging index's view
				return out
			}})
		}
	}
	if p.object != "page" {
		for _, db := range d.dbs {
			if db.archived || !d.dbReadable(db) {
				continue
			}
			if !req.dataSources {
				if matches(db.title) {
					hits = append(hits, hit{db.id, minute(db.lastEditedTime), db.seq, func() any { return d.renderDatabase(db) }})
				}
				continue
			}
			// The data-source API lists data sources, not databases.
			for _, src := range db.sources {
				if req.imperfect.SearchOmitsDataSources && omittedFromSearch(src.id, req.imperfect.SearchOmitShare) {
					continue
				}
				if matches(src.name) {
					hits = append(hits, hit{src.id, minute(db.lastEditedTime), db.seq, func() any { return d.renderDataSource(db, src) }})
				}
			}
		}
	}
	slices.SortFunc(hits, func(a, b hit) int {
		c := a.edited.Compare(b.edited)
		if !p.ascending {
			c = -c
		}
		return cmp.Or(c, cmp.Compare(a.seq, b.seq), cmp.Compare(a.id, b.id))
	})
	page, next, aerr := paginate(hits, func(h hit) string { return h.id }, p.cursor, p.size)
	if aerr != nil {
		return nil, aerr
	}
	results := make([]any, len(page))
	for i, h := range page {
		results[i] = h.render()
	}
	listType := "page_or_database"
	if req.dataSources {
		listType = "page_or_data_source"
	}
	return newList(listType, req.id, results, next), nil
}

// getPage serves GET /v1/pages/{id}. Archived pages are returned (archived
// and in_trash true); unknown and unshared ones are 404.
func (s *Server) getPage(req *dataRequest) (any, *apiError) {
	p, aerr := req.pathPage()
	if aerr != nil {
		return nil, aerr
	}
	return req.ws.renderPage(p, req.renderOpts()), nil
}

// pathPage is the readable page the path's {page_id} names: 400 for an id
// that is not one, 404 for an unknown or unshared page.
func (req *dataRequest) pathPage() (*Page, *apiError) {
	id, aerr := req.pathID("page_id")
	if aerr != nil {
		return nil, aerr
	}
	p, ok := req.ws.readablePage(id)
	if !ok {
		return nil, notFound("page", id)
	}
	return p, nil
}

// updatePage serves PATCH /v1/pages/{id}: archived / in_trash, and the title.
func (s *Server) updatePage(req *dataRequest) (any, *apiError) {
	id, aerr := req.pathID("page_id")
	if aerr != nil {
		return nil, aerr
	}
	var b struct {
		Archived   *bool                      `json:"archived"`
		InTrash    *bool                      `json:"in_trash"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if aerr := req.decodeBody(&b); aerr != nil {
		return nil, aerr
	}
	p, ok := req.ws.readablePage(id)
	if !ok {
		return nil, notFound("page", id)
	}
	isTitle := func(name string) bool {
		if db := req.ws.rowDatabase(p); db != nil {
			ps := db.property(name)
			return ps != nil && ps.typ == "title"
		}
		return name == "title"
	}
	title, hasTitle := "", false
	for name, raw := range b.Properties {
		if !isTitle(name) {
			return nil, validationError("notionfake supports updating the title property only; got %s.", name)
		}
		var v struct {
			Title []struct {
				PlainText string `json:"plain_text"`
				Text      *struct {
					Content string `json:"content"`
				} `json:"text"`
			} `json:"title"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, validationError("body.properties.%s.title should be an array of rich text.", name)
		}
		var sb strings.Builder
		for _, rt := range v.Title {
			if rt.Text != nil {
				sb.WriteString(rt.Text.Content)
			} else {
				sb.WriteString(rt.PlainText)
			}
		}
		title, hasTitle = sb.String(), true
	}
	archived := p.Archived
	if b.Archived != nil {
		archived = *b.Archived
	}
	if b.InTrash != nil {
		archived = *b.InTrash
	}
	if archived && p.Archived && hasTitle {
		return nil, validationError("Can't edit block that is archived. You must unarchive the block before editing.")
	}
	if hasTitle {
		p.Title = title
	}
	p.Archived = archived
	p.LastEditedTime = minute(req.now)
	return req.ws.renderPage(p, req.renderOpts()), nil
}

// getDatabase serves GET /v1/databases/{id}.
func (s *Server) getDatabase(req *dataRequest) (any, *apiError) {
	id, aerr := req.pathID("database_id")
	if aerr != nil {
		return nil, aerr
	}
	db, ok := req.ws.readableDatabase(id)
	if !ok {
		return nil, notFound("database", id)
	}
	if req.dataSources {
		return req.ws.renderDatabaseContainer(db), nil
	}
	if db.multiSource() && req.imperfect.MultiSourceReadFails {
		return nil, validationError("%s", errMultiSource)
	}
	return req.ws.renderDatabase(db), nil
}

// errMultiSource is Notion's answer to querying, under 2022-06-28, a
// database that has more than one data source.
const errMultiSource = "Databases with multiple data sources are not supported in this API version. " +
	"Please upgrade to API version 2025-09-03 or later to query this database."

// queryDatabase serves POST /v1/databases/{id}/query: the database's
// readable, not archived rows that match the filter, sorted, paginated.
func (s *Server) queryDatabase(req *dataRequest) (any, *apiError) {
	id, aerr := req.pathID("database_id")
	if aerr != nil {
		return nil, aerr
	}
	d := req.ws
	db, ok := d.readableDatabase(id)
	if !ok {
		return nil, notFound("database", id)
	}
	if db.multiSource() {
		return nil, validationError("%s", errMultiSource)
	}
	return s.queryRows(req, db, nil, "page_or_database")
}

// getBlock serves GET /v1/blocks/{id}. A page id answers its child_page
// block, a database id its child_database block, as Notion does.
func (s *Server) getBlock(req *dataRequest) (any, *apiError) {
	id, aerr := req.pathID("block_id")
	if aerr != nil {
		return nil, aerr
	}
	d := req.ws
	if p, ok := d.pages[id]; ok {
		if !d.pageReadable(p) {
			return nil, notFound("block", id)
		}
		return d.renderPageAsBlock(p), nil
	}
	if db, ok := d.dbs[id]; ok {
		if !d.dbReadable(db) {
			return nil, notFound("block", id)
		}
		return d.renderDatabaseAsBlock(db), nil
	}
	ref, ok := d.blocks[id]
	if !ok || !d.pageReadable(ref.page) {
		return nil, notFound("block", id)
	}
	return d.renderBlock(ref.b, ref.parent, req.renderOpts()), nil
}

// blockChildren serves GET /v1/blocks/{id}/children: one level of a page's
// or block's content. child_page and child_database blocks are listed, not
// expanded.
func (s *Server) blockChildren(req *dataRequest) (any, *apiError) {
	id, aerr := req.pathID("block_id")
	if aerr != nil {
		return nil, aerr
	}
	cursor, size, aerr := req.queryPagination()
	if aerr != nil {
		return nil, aerr
	}
	d := req.ws
	var (
		children []*Block
		parent   Parent
	)
	if p, ok := d.pages[id]; ok {
		if !d.pageReadable(p) {
			return nil, notFound("block", id)
		}
		children, parent = p.Blocks, PageParent(p.ID)
	} else if db, ok := d.dbs[id]; ok {
		if !d.dbReadable(db) {
			return nil, notFound("block", id)
		}
		// A database's rows are not its block children.
	} else if ref, ok := d.blocks[id]; ok && d.pageReadable(ref.page) {
		children, parent = ref.b.Children, Parent{Type: ParentBlock, ID: ref.b.ID}
	} else {
		return nil, notFound("block", id)
	}
	page, next, aerr := paginate(d.visibleBlocks(children), func(b *Block) string { return b.ID }, cursor, size)
	if aerr != nil {
		return nil, aerr
	}
	results := make([]any, len(page))
	for i, b := range page {
		results[i] = d.renderBlock(b, parent, req.renderOpts())
	}
	return newList("block", req.id, results, next), nil
}
