package notionfake

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
)

// This file is the data-source side of the fake (Notion-Version 2025-09-03
// and later), in the shapes of @notionhq/client 5.x (build/src/api-endpoints/
// databases.d.ts, data-sources.d.ts, search.d.ts, common.d.ts):
//
//	GET  /v1/databases/{id}           the container: data_sources [{id, name}], no properties
//	GET  /v1/data_sources/{id}        object "data_source": properties, parent {database_id}, database_parent
//	POST /v1/data_sources/{id}/query  the data source's rows; list type "page_or_data_source"
//	POST /v1/search                   filter value "page" or "data_source"; data sources instead of databases
//	rows' parent                      {type: "data_source_id", data_source_id, database_id}
//
// Every database has one data source (its first, sources[0]); databases made
// with AddMultiSourceDatabase or SeedSpec.MultiSourceDatabases have two. Under
// 2022-06-28 nothing of this shows, and querying a database with two data
// sources answers 400 validation_error (errMultiSource; Notion's upgrade
// guide says such reads fail but quotes no message, so the wording is the
// fake's, and names "multiple data sources"). A request's version selects
// the dialect, so one connection can be read either way. The fake's
// choices where Notion's reference is silent: POST /v1/databases/{id}/query
// (deprecated by 2025-09-03) keeps answering under the new version as under
// the old; a second data source shares its database's schema; the data
// source endpoints answer 400 invalid_request_url under 2022-06-28.

// DataSourcesVersion is the first Notion-Version that speaks data sources.
const DataSourcesVersion = "2025-09-03"

var versionPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// speaksDataSources reports whether a Notion-Version header asks for the
// data-source API: a date on or after DataSourcesVersion. Dates compare as
// strings in this format.
func speaksDataSources(version string) bool {
	return versionPattern.MatchString(version) && version >= DataSourcesVersion
}

// dataSource is one data source of a database.
type dataSource struct {
	id, name string
}

// derivedUUID returns a version-4-shaped UUID derived from key, so that data
// sources get stable ids without drawing from a seed's random stream (which
// would change every seeded id after them).
func derivedUUID(key string) string {
	sum := sha256.Sum256([]byte("notionfake/" + key))
	sum[6] = sum[6]&0x0f | 0x40
	sum[8] = sum[8]&0x3f | 0x80
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// addSource adds a data source to db and returns it: the first is named
// like the database, later ones "<title> (source N)".
func (db *database) addSource() *dataSource {
	n := len(db.sources) + 1
	src := &dataSource{id: derivedUUID(fmt.Sprintf("%s/data_source/%d", db.id, n)), name: db.title}
	if n > 1 {
		src.name = fmt.Sprintf("%s (source %d)", db.title, n)
	}
	db.sources = append(db.sources, src)
	return src
}

func (db *database) multiSource() bool { return len(db.sources) > 1 }

// source returns db's data source id, or nil.
func (db *database) source(id string) *dataSource {
	for _, src := range db.sources {
		if src.id == id {
			return src
		}
	}
	return nil
}

// dataSourceByID returns the data source id and its database, or nils.
func (d *wsData) dataSourceByID(id string) (*database, *dataSource) {
	for _, db := range d.dbs {
		if src := db.source(id); src != nil {
			return db, src
		}
	}
	return nil, nil
}

// rowSource returns the data source row p belongs to, or nil when p is not
// a row.
func (d *wsData) rowSource(p *Page) (*database, *dataSource) {
	db := d.rowDatabase(p)
	if db == nil || len(db.sources) == 0 {
		return nil, nil
	}
	if p.source != "" {
		if src := db.source(p.source); src != nil {
			return db, src
		}
	}
	return db, db.sources[0]
}

// pageParentJSON renders a page's parent: a row's is its data source under
// the data-source API.
func (d *wsData) pageParentJSON(p *Page, dataSources bool) map[string]any {
	if dataSources {
		if db, src := d.rowSource(p); src != nil {
			return map[string]any{"type": "data_source_id", "data_source_id": src.id, "database_id": db.id}
		}
	}
	return parentJSON(p.Parent)
}

// databaseContainerJSON is DatabaseObjectResponse of the data-source API.
type databaseContainerJSON struct {
	Object         string          `json:"object"`
	ID             string          `json:"id"`
	Title          []any           `json:"title"`
	Description    []any           `json:"description"`
	Parent         map[string]any  `json:"parent"`
	IsInline       bool            `json:"is_inline"`
	InTrash        bool            `json:"in_trash"`
	Archived       bool            `json:"archived"`
	IsLocked       bool            `json:"is_locked"`
	CreatedTime    string          `json:"created_time"`
	LastEditedTime string          `json:"last_edited_time"`
	DataSources    []dataSourceRef `json:"data_sources"`
	Icon           any             `json:"icon"`
	Cover          any             `json:"cover"`
	URL            string          `json:"url"`
	PublicURL      *string         `json:"public_url"`
}

type dataSourceRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (d *wsData) renderDatabaseContainer(db *database) databaseContainerJSON {
	refs := make([]dataSourceRef, len(db.sources))
	for i, src := range db.sources {
		refs[i] = dataSourceRef{ID: src.id, Name: src.name}
	}
	return databaseContainerJSON{
		Object: "database", ID: db.id,
		Title: RichText(db.title), Description: []any{},
		Parent:   parentJSON(db.parent),
		IsInline: db.parent.Type != ParentWorkspace,
		InTrash:  db.archived, Archived: db.archived,
		CreatedTime: notionTime(db.createdTime), LastEditedTime: notionTime(db.lastEditedTime),
		DataSources: refs,
		Icon:        db.icon, Cover: db.cover,
		URL: notionURL(db.title, db.id),
	}
}

// dataSourceJSON is DataSourceObjectResponse.
type dataSourceJSON struct {
	Object         string         `json:"object"`
	ID             string         `json:"id"`
	Title          []any          `json:"title"`
	Description    []any          `json:"description"`
	Parent         map[string]any `json:"parent"`
	DatabaseParent map[string]any `json:"database_parent"`
	IsInline       bool           `json:"is_inline"`
	InTrash        bool           `json:"in_trash"`
	Archived       bool           `json:"archived"`
	CreatedTime    string         `json:"created_time"`
	LastEditedTime string         `json:"last_edited_time"`
	CreatedBy      userRef        `json:"created_by"`
	LastEditedBy   userRef        `json:"last_edited_by"`
	Properties     map[string]any `json:"properties"`
	Icon           any            `json:"icon"`
	Cover          any            `json:"cover"`
	URL            string         `json:"url"`
	PublicURL      *string        `json:"public_url"`
}

func (d *wsData) renderDataSource(db *database, src *dataSource) dataSourceJSON {
	user := userRef{Object: "user", ID: d.owner}
	props := make(map[string]any, len(db.schema))
	for _, ps := range db.schema {
		cfg := schemaConfig(ps)
		if ps.typ == "relation" {
			// A relation names the related data source too (2025-09-03).
			cfg = make(map[string]any, len(ps.config)+1)
			for k, v := range ps.config {
				cfg[k] = v
			}
			if target, ok := d.dbs[fmt.Sprint(ps.config["database_id"])]; ok && len(target.sources) > 0 {
				cfg["data_source_id"] = target.sources[0].id
			}
		}
		props[ps.name] = map[string]any{"id": ps.id, "name": ps.name, "description": nil, "type": ps.typ, ps.typ: cfg}
	}
	return dataSourceJSON{
		Object: "data_source", ID: src.id,
		Title: RichText(src.name), Description: []any{},
		Parent:         map[string]any{"type": "database_id", "database_id": db.id},
		DatabaseParent: parentJSON(db.parent),
		IsInline:       db.parent.Type != ParentWorkspace,
		InTrash:        db.archived, Archived: db.archived,
		CreatedTime: notionTime(db.createdTime), LastEditedTime: notionTime(db.lastEditedTime),
		CreatedBy: user, LastEditedBy: user,
		Properties: props,
		Icon:       db.icon, Cover: db.cover,
		URL: notionURL(src.name, src.id),
	}
}

// errDataSourcesVersion answers the data source endpoints under an API
// version older than DataSourcesVersion, where they do not exist.
func errDataSourcesVersion() *apiError {
	return &apiError{status: 400, code: "invalid_request_url", message: "Invalid request URL."}
}

// readableDataSource returns the data source id and its database if the
// integration can read them.
func (req *dataRequest) readableDataSource() (*database, *dataSource, *apiError) {
	if !req.dataSources {
		return nil, nil, errDataSourcesVersion()
	}
	id, aerr := req.pathID("data_source_id")
	if aerr != nil {
		return nil, nil, aerr
	}
	db, src := req.ws.dataSourceByID(id)
	if src == nil || !req.ws.dbReadable(db) {
		return nil, nil, notFound("data source", id)
	}
	return db, src, nil
}

// getDataSource serves GET /v1/data_sources/{id}.
func (s *Server) getDataSource(req *dataRequest) (any, *apiError) {
	db, src, aerr := req.readableDataSource()
	if aerr != nil {
		return nil, aerr
	}
	return req.ws.renderDataSource(db, src), nil
}

// queryDataSource serves POST /v1/data_sources/{id}/query: the data
// source's readable, not archived rows, filtered, sorted and paginated as
// POST /v1/databases/{id}/query does.
func (s *Server) queryDataSource(req *dataRequest) (any, *apiError) {
	db, src, aerr := req.readableDataSource()
	if aerr != nil {
		return nil, aerr
	}
	return s.queryRows(req, db, src, "page_or_data_source")
}

// queryRows answers a query of db's rows, of data source src only when src
// is not nil.
func (s *Server) queryRows(req *dataRequest, db *database, src *dataSource, listType string) (any, *apiError) {
	q, aerr := req.queryParams(db)
	if aerr != nil {
		return nil, aerr
	}
	d := req.ws
	var rows []*Page
	for _, p := range d.pages {
		if p.Parent.Type != ParentDatabase || p.Parent.ID != db.id || p.Archived || !d.pageReadable(p) {
			continue
		}
		if src != nil {
			if _, ps := d.rowSource(p); ps != src {
				continue
			}
		}
		if q.filter == nil || q.filter(p) {
			rows = append(rows, p)
		}
	}
	slices.SortFunc(rows, q.less)
	var status *requestStatus
	if limit := req.imperfect.resultLimit(); limit > 0 {
		status = &requestStatus{Type: "complete"}
		if len(rows) > limit {
			rows = rows[:limit]
			status = &requestStatus{Type: "incomplete", IncompleteReason: "query_result_limit_reached"}
		}
	}
	page, next, aerr := paginate(rows, func(p *Page) string { return p.ID }, q.cursor, q.size)
	if aerr != nil {
		return nil, aerr
	}
	results := make([]any, len(page))
	for i, p := range page {
		results[i] = d.renderPage(p, req.renderOpts())
	}
	l := newList(listType, req.id, results, next)
	l.RequestStatus = status
	return l, nil
}

// addSourceRows adds n generated rows to data source src of db (the seed of
// SeedSpec.MultiSourceDatabases).
func (g *seedGen) addSourceRows(db *database, src *dataSource, n int) {
	var prev string
	for j := range n {
		row := g.page(DatabaseParent(db.id), fmt.Sprintf("Row %d %s (%s)", j+1, g.words(2), src.name), g.spec.BlocksPerRow)
		row.source = src.id
		row.Properties = g.rowValues(db, prev)
		prev = row.ID
		g.res.RowIDs = append(g.res.RowIDs, row.ID)
		g.res.RowsByDatabase[db.id] = append(g.res.RowsByDatabase[db.id], row.ID)
		g.res.RowsByDataSource[src.id] = append(g.res.RowsByDataSource[src.id], row.ID)
	}
}

// AddRowToDataSource adds a row titled title with content blocks to data
// source dsID of workspace ws, like AddRow, and returns its id.
func (s *Server) AddRowToDataSource(ws, dsID, title string, blocks ...*Block) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookupWSLocked(ws)
	if err != nil {
		return "", err
	}
	id, _ := normalizeID(dsID)
	db, src := d.dataSourceByID(id)
	if src == nil {
		return "", fmt.Errorf("%w: data source %q in workspace %q", ErrObjectNotFound, dsID, ws)
	}
	p, err := s.addPageLocked(d, DatabaseParent(db.id), title, blocks)
	if err != nil {
		return "", err
	}
	p.source = src.id
	return p.ID, nil
}

// DataSourceIDs returns the ids of database dbID's data sources, its first
// one first.
func (s *Server) DataSourceIDs(ws, dbID string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookupWSLocked(ws)
	if err != nil {
		return nil, err
	}
	id, _ := normalizeID(dbID)
	db, ok := d.dbs[id]
	if !ok {
		return nil, fmt.Errorf("%w: database %q in workspace %q", ErrObjectNotFound, dbID, ws)
	}
	ids := make([]string, len(db.sources))
	for i, src := range db.sources {
		ids[i] = src.id
	}
	return ids, nil
}
