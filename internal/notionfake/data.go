package notionfake

// This file and the other data*.go files are the fake of Notion's data API,
// version 2022-06-28 (what github.com/jomei/notionapi v1.13.3 speaks), and,
// for requests with Notion-Version 2025-09-03 or later, the data-source API
// (data_sources.go):
//
//	POST  /v1/search
//	GET   /v1/pages/{id}
//	PATCH /v1/pages/{id}              (archived / in_trash and the title only)
//	GET   /v1/databases/{id}
//	POST  /v1/databases/{id}/query
//	GET   /v1/blocks/{id}
//	GET   /v1/blocks/{id}/children
//	GET   /v1/pages/{id}/properties/{property_id}  (data_imperfect.go)
//	GET   /v1/data_sources/{id}                    (2025-09-03 and later)
//	POST  /v1/data_sources/{id}/query              (2025-09-03 and later)
//	GET   /v1/users, GET /v1/users/{id}            (data_users.go)
//
// Workspaces are shared with the OAuth part: a request's bearer token selects
// its connection and so its workspace (Authenticate). Content lives per
// workspace under Server.mu (extLocked, key dataKey): pages, databases and
// blocks, seeded with SeedWorkspace and edited with EditPage, TouchPage,
// AddPage, AddRow, ArchivePage and UnsharePage. Every timestamp is rounded
// down to the minute, as Notion's are.
//
// Every request, in order: waits out SetDataLatency; is authenticated (400
// missing_version, 401 unauthorized); is counted (DataStats, RequestCount);
// passes the emulated per-connection rate limit (SetRateLimit); is answered
// by its object's poison if the page or block it asks for is poisoned
// (Poison, PoisonPages, PoisonRandomPages); otherwise takes the next
// injected fault if one is queued (FailDataNext, RateLimitDataNext,
// UnauthorizedNext, MalformedNext, HTMLErrorNext); otherwise, when it
// carries a start_cursor, takes the next invalid-cursor answer if one is
// queued (InvalidCursorNext), or is refused if its cursor expired
// (Imperfections.CursorExpiry); and is then served. Served requests with an
// unknown or malformed start_cursor are refused with 400 validation_error
// ("The start_cursor provided is invalid: ..."), as Notion refuses them.
// Every response carries x-notion-request-id (error bodies repeat it as
// request_id), except the Cloudflare-style HTML 403, which does not come
// from Notion.
//
// Concurrency: every exported method is safe for concurrent use, also while
// requests are served. Handlers hold s.mu while they read content and
// marshal the response, never while they wait (SetDataLatency). Callbacks
// (EditPage, ViewPage) run with s.mu held and must not call the Server.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxDataBody bounds the request bodies the data endpoints read. Notion
// accepts up to 500 KB of JSON.
const maxDataBody = 1 << 20

// ErrObjectNotFound is returned (wrapped) by the content-control methods
// (EditPage, TouchPage, ArchivePage, ...) for an unknown workspace, page,
// database or block.
var ErrObjectNotFound = errors.New("notionfake: object not found")

// ParentType is the kind of a Parent, as Notion names it.
type ParentType string

// Parent types of pages, databases and blocks.
const (
	ParentWorkspace ParentType = "workspace"
	ParentPage      ParentType = "page_id"
	ParentDatabase  ParentType = "database_id"
	ParentBlock     ParentType = "block_id"
)

// Parent locates a page, database or block: the workspace top level, a page,
// a database (the page is a row) or a block.
type Parent struct {
	Type ParentType
	// ID is the parent's id; empty for ParentWorkspace.
	ID string
}

// WorkspaceParent is the top level of a workspace.
func WorkspaceParent() Parent { return Parent{Type: ParentWorkspace} }

// PageParent is the page id.
func PageParent(id string) Parent { return Parent{Type: ParentPage, ID: id} }

// DatabaseParent is the database id: a page with it is a row.
func DatabaseParent(id string) Parent { return Parent{Type: ParentDatabase, ID: id} }

// Page is a Notion page: a regular page or a database row. EditPage hands a
// *Page to the test under the Server's lock.
type Page struct {
	// ID is a dashed UUID. EditPage restores it if the edit changes it.
	ID string
	// Parent is the workspace, a page or a database (a row). EditPage
	// restores it if the edit changes it.
	Parent Parent
	// Title is the plain text of the title property ("title" for a page, the
	// database's title property for a row).
	Title string
	// Properties holds a row's other property values by property name: the
	// JSON value Notion nests under the property's type key, for example
	// 4.5 for a number, []any{map[string]any{"name": "x"}} for a
	// multi_select, RichText("text") for a rich_text. A property of the
	// schema missing here is rendered empty (null, [] or false). Pages that
	// are not rows ignore it, except for a non-empty []any under "title":
	// a rich text array under the title property's name replaces the
	// title's single text run (to test titles of more than 25 items).
	Properties map[string]any
	// Icon and Cover are the page's icon and cover: nil, or a file object
	// (FileObject, ExternalFileObject; an icon may also be an emoji object).
	Icon, Cover any
	// Archived is rendered as both archived and in_trash.
	Archived bool
	// CreatedBy and LastEditedBy are user ids ("" is the workspace owner),
	// rendered as partial users.
	CreatedBy, LastEditedBy string
	// CreatedTime and LastEditedTime are rendered rounded down to the minute.
	CreatedTime    time.Time
	LastEditedTime time.Time
	// Blocks is the page's content. A child_page (child_database) block's ID
	// is the id of the page (database) it shows; its Payload and Children
	// are ignored, the block is rendered from that object.
	Blocks []*Block

	seq      int64 // creation order, breaks ties when sorting
	unshared bool
	// source is the id of the data source a row belongs to; "" is its
	// database's first data source.
	source  string
	indexed []string // ids this page put in wsData.blocks
	// searchEdited is the last_edited_time search shows under
	// Imperfections.SearchLag; searchIndexed whether search knows p.
	searchEdited  time.Time
	searchIndexed bool
}

// Block is a content block.
type Block struct {
	// ID is a dashed UUID; EditPage assigns one to a new block left empty.
	ID string
	// Type is Notion's block type ("paragraph", "to_do", ...). Any string is
	// served as is, so unknown types (e.g. "ai_block") can be tested.
	Type string
	// Payload is the JSON object Notion nests under the type key, without
	// "children", e.g. {"rich_text": RichText("hi"), "color": "default"}.
	Payload map[string]any
	// Children are the nested blocks; has_children is len(Children) > 0.
	Children []*Block
	// CreatedTime and LastEditedTime are rendered rounded down to the
	// minute; EditPage sets zero ones of new blocks to the edit's time.
	CreatedTime    time.Time
	LastEditedTime time.Time
}

// RichText returns a rich text array holding text as one plain text run, in
// the shape Notion returns.
func RichText(text string) []any {
	return []any{map[string]any{
		"type": "text",
		"text": map[string]any{"content": text, "link": nil},
		"annotations": map[string]any{
			"bold": false, "italic": false, "strikethrough": false,
			"underline": false, "code": false, "color": "default",
		},
		"plain_text": text,
		"href":       nil,
	}}
}

// TextBlock returns a block of a rich-text type (paragraph, heading_1..3,
// bulleted_list_item, numbered_list_item, quote, toggle, to_do, callout)
// holding text, with children.
func TextBlock(typ, text string, children ...*Block) *Block {
	p := map[string]any{"rich_text": RichText(text), "color": "default"}
	switch typ {
	case "to_do":
		p["checked"] = false
	case "heading_1", "heading_2", "heading_3":
		p["is_toggleable"] = false
	case "callout":
		p["icon"] = map[string]any{"type": "emoji", "emoji": "💡"}
	}
	return &Block{Type: typ, Payload: p, Children: children}
}

// NewBlock returns a block of any type with the given payload and children.
func NewBlock(typ string, payload map[string]any, children ...*Block) *Block {
	if payload == nil {
		payload = map[string]any{}
	}
	return &Block{Type: typ, Payload: payload, Children: children}
}

// propertySchema is one property of a database schema.
type propertySchema struct {
	id, name, typ string
	config        map[string]any // the object under the type key
}

// database is a Notion database; its rows are the pages whose parent is it.
type database struct {
	id       string
	parent   Parent
	title    string
	schema   []propertySchema // schema[0] is the title property
	archived bool
	// sources are the database's data sources (API 2025-09-03); sources[0]
	// is the one every database has, the one 2022-06-28 queries read. They
	// share schema: the fake models one schema per database.
	sources        []*dataSource
	createdTime    time.Time
	lastEditedTime time.Time
	seq            int64
	unshared       bool
	// icon and cover are the database's (and its data sources') icon and
	// cover, as FileObject builds them; nil: none.
	icon, cover any
}

// blockRef locates an indexed block: its owning page and its parent.
type blockRef struct {
	b      *Block
	page   *Page
	parent Parent
}

// wsData is one workspace's content.
type wsData struct {
	id     string
	owner  string // user id in created_by / last_edited_by / people
	pages  map[string]*Page
	dbs    map[string]*database
	blocks map[string]*blockRef
	seq    int64
	// users are the users AddUser and SeedSpec.Users added, besides the
	// owner and the integration's bot (data_users.go).
	users []User
}

// dataKey is the extLocked key of the data API's state.
type dataKey struct{}

// dataState is the data API's per-Server state, guarded by Server.mu.
type dataState struct {
	ws     map[string]*wsData
	faults []dataFault
	poison map[poisonKey]*Poisoned
	// hostileAncestors maps the made-up block of a page poisoned with
	// PoisonCycleAncestor to the page its children list.
	hostileAncestors map[poisonKey]string
	// invalidCursorNext counts the InvalidCursorNext answers to serve.
	invalidCursorNext int
	latency           time.Duration
	rateLimit         int // per connection per minute; 0: off
	windows           map[*connection]*rateWindow
	stats             DataStats
	imperfect         Imperfections
	// cursorIssued is when each cursor was last issued
	// (Imperfections.CursorExpiry).
	cursorIssued map[cursorKey]time.Time
}

// dataLocked returns the data API's state. The caller holds s.mu.
func (s *Server) dataLocked() *dataState {
	return s.extLocked(dataKey{}, func() any {
		return &dataState{
			ws:               make(map[string]*wsData),
			poison:           make(map[poisonKey]*Poisoned),
			hostileAncestors: make(map[poisonKey]string),
			windows:          make(map[*connection]*rateWindow),
			stats:            newDataStats(),
		}
	}).(*dataState)
}

// wsDataLocked returns the content of workspace id, creating the workspace
// (in the OAuth part too) and its empty content on first use. The caller
// holds s.mu.
func (s *Server) wsDataLocked(id string) *wsData {
	st := s.dataLocked()
	if d, ok := st.ws[id]; ok {
		return d
	}
	ws := s.workspaceLocked(id)
	d := &wsData{
		id:     ws.id,
		owner:  ws.ownerID,
		pages:  make(map[string]*Page),
		dbs:    make(map[string]*database),
		blocks: make(map[string]*blockRef),
	}
	st.ws[ws.id] = d
	return d
}

// lookupWSLocked returns the content of an existing workspace, or an error
// wrapping ErrObjectNotFound. The caller holds s.mu.
func (s *Server) lookupWSLocked(id string) (*wsData, error) {
	if _, ok := s.workspaces[id]; !ok {
		return nil, fmt.Errorf("%w: workspace %q", ErrObjectNotFound, id)
	}
	return s.wsDataLocked(id), nil
}

func (d *wsData) nextSeq() int64 {
	d.seq++
	return d.seq
}

// minute rounds t down to the minute, in UTC, as Notion's timestamps are.
func minute(t time.Time) time.Time { return t.UTC().Truncate(time.Minute) }

// EndpointKind names a data endpoint in DataStats.
type EndpointKind string

// Endpoint kinds.
const (
	EndpointSearch        EndpointKind = "search"
	EndpointGetPage       EndpointKind = "pages.retrieve"
	EndpointUpdatePage    EndpointKind = "pages.update"
	EndpointGetDatabase   EndpointKind = "databases.retrieve"
	EndpointQueryDatabase EndpointKind = "databases.query"
	EndpointGetBlock      EndpointKind = "blocks.retrieve"
	EndpointBlockChildren EndpointKind = "blocks.children"
	// Data source endpoints, API version 2025-09-03 and later only.
	EndpointGetDataSource   EndpointKind = "data_sources.retrieve"
	EndpointQueryDataSource EndpointKind = "data_sources.query"
	EndpointGetPageProperty EndpointKind = "pages.properties.retrieve"
	EndpointListUsers       EndpointKind = "users.list"
	EndpointGetUser         EndpointKind = "users.retrieve"
)

// apiError is a Notion error answer of a data endpoint.
type apiError struct {
	status        int
	code, message string
	additional    map[string]any
	// invalidCursor marks the refusal of a start_cursor (DataStats).
	invalidCursor bool
}

func validationError(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "validation_error", message: fmt.Sprintf(format, args...)}
}

func notFound(kind, id string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "object_not_found", message: fmt.Sprintf(
		"Could not find %s with ID: %s. Make sure the relevant pages and databases are shared with your integration.",
		kind, id)}
}

// dataRequest is what a data handler gets: the workspace content, the
// request, its body and its request id. Handlers run with s.mu held.
type dataRequest struct {
	ws   *wsData
	r    *http.Request
	body []byte
	id   string // x-notion-request-id
	now  time.Time
	// dataSources is true when the request's Notion-Version is 2025-09-03
	// or later: databases are containers of data sources (data_sources.go).
	dataSources bool
	// imperfect are the Imperfections in force.
	imperfect Imperfections
}

// renderOpts returns how req's pages are rendered.
func (req *dataRequest) renderOpts() renderOpts {
	return renderOpts{dataSources: req.dataSources, truncate: req.imperfect.TruncateReferences}
}

// dataFunc serves one data endpoint with s.mu held: it returns the success
// body (marshalled under the lock) or an error.
type dataFunc func(s *Server, req *dataRequest) (any, *apiError)

func (s *Server) registerDataRoutes() {
	s.mux.Handle("POST /v1/search", s.dataHandler(EndpointSearch, (*Server).search))
	s.mux.Handle("GET /v1/pages/{id}", s.dataHandler(EndpointGetPage, (*Server).getPage))
	s.mux.Handle("PATCH /v1/pages/{id}", s.dataHandler(EndpointUpdatePage, (*Server).updatePage))
	s.mux.Handle("GET /v1/databases/{id}", s.dataHandler(EndpointGetDatabase, (*Server).getDatabase))
	s.mux.Handle("POST /v1/databases/{id}/query", s.dataHandler(EndpointQueryDatabase, (*Server).queryDatabase))
	s.mux.Handle("GET /v1/blocks/{id}", s.dataHandler(EndpointGetBlock, (*Server).getBlock))
	s.mux.Handle("GET /v1/blocks/{id}/children", s.dataHandler(EndpointBlockChildren, (*Server).blockChildren))
	s.mux.Handle("GET /v1/pages/{id}/properties/{property_id}", s.dataHandler(EndpointGetPageProperty, (*Server).getPageProperty))
	s.mux.Handle("GET /v1/data_sources/{id}", s.dataHandler(EndpointGetDataSource, (*Server).getDataSource))
	s.mux.Handle("POST /v1/data_sources/{id}/query", s.dataHandler(EndpointQueryDataSource, (*Server).queryDataSource))
	s.mux.Handle("GET /v1/users", s.dataHandler(EndpointListUsers, (*Server).listUsers))
	s.mux.Handle("GET /v1/users/{id}", s.dataHandler(EndpointGetUser, (*Server).getUser))
	s.mux.HandleFunc("GET /_files/{ws}/{id}/{name}", s.serveFile)
}

// statusRecorder remembers the status Authenticate wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// dataHandler runs the pipeline every data request goes through (see the
// file comment) and then h.
func (s *Server) dataHandler(kind EndpointKind, h dataFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.dataDelay(r) {
			dropConnection(w) // the fake was closed while the request waited
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		wsID, ok := s.Authenticate(rec, r)
		if !ok {
			s.mu.Lock()
			s.dataLocked().stats.record(kind, "", rec.status)
			s.mu.Unlock()
			return
		}
		body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDataBody))
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")

		s.mu.Lock()
		req := &dataRequest{ws: s.wsDataLocked(wsID), r: r, body: body, id: newUUID(), now: s.now(),
			dataSources: speaksDataSources(r.Header.Get("Notion-Version")), imperfect: s.dataLocked().imperfect}
		a := s.answerLocked(kind, token, req, readErr, h)
		s.mu.Unlock()
		a.write(w)
	})
}

// dataAnswer is a data request's response, decided under s.mu and written
// after it is released.
type dataAnswer struct {
	status     int
	body       []byte // JSON, cut short for a MalformedNext answer
	requestID  string
	retryAfter string // Retry-After header; "" for none
	cloudflare bool   // an HTMLErrorNext answer instead of the above
}

// answerLocked decides the answer to an authenticated data request: the
// emulated rate limit, then a queued fault, then h. It counts the request.
// The caller holds s.mu.
func (s *Server) answerLocked(kind EndpointKind, token string, req *dataRequest, readErr error, h dataFunc) dataAnswer {
	st := s.dataLocked()
	var (
		result any
		aerr   *apiError
		fault  dataFault
	)
	var poisoned bool
	if aerr = s.rateLimitLocked(token, req.now); aerr != nil {
		st.stats.RateLimited++
	} else if fault, poisoned = s.poisonedLocked(kind, req); poisoned {
		st.stats.PoisonedAnswers++
		aerr = fault.apiError()
	} else if fault = st.takeFault(); fault.kind != dataFaultNone {
		st.stats.InjectedFaults++
		aerr = fault.apiError()
	} else if c := req.requestCursor(); st.invalidCursorNext > 0 && readErr == nil && c != "" {
		st.invalidCursorNext--
		st.stats.InjectedInvalidCursors++
		aerr = invalidCursor(c)
	} else if c, expired := st.cursorExpiredLocked(req); expired && readErr == nil {
		st.stats.ExpiredCursors++
		aerr = invalidCursor(c)
	}
	switch {
	case fault.kind == dataFaultHTML:
		st.stats.record(kind, req.ws.id, http.StatusForbidden)
		return dataAnswer{status: http.StatusForbidden, cloudflare: true} // Notion never sees the request
	case aerr != nil:
	case readErr != nil:
		aerr = &apiError{status: http.StatusBadRequest, code: "invalid_request", message: "Request body could not be read."}
	default:
		result, aerr = s.hostileLocked(kind, req, h)
	}
	a := dataAnswer{status: http.StatusOK, requestID: req.id}
	if aerr != nil && aerr.invalidCursor {
		st.stats.InvalidCursors++
	}
	if aerr != nil {
		a.status = aerr.status
		a.body = mustMarshal(notionError{Object: "error", Status: aerr.status, Code: aerr.code,
			Message: aerr.message, RequestID: req.id, AdditionalData: aerr.additional})
		if secs, ok := aerr.additional["retry_after"].(int64); ok {
			a.retryAfter = strconv.FormatInt(secs, 10)
		}
	} else {
		a.body = s.signFileURLs(mustMarshal(result), requestBase(req.r), req.now)
		st.noteCursorLocked(req.ws.id, result, req.now)
	}
	if fault.kind == dataFaultMalformed {
		a.status = http.StatusOK
		a.body = a.body[:len(a.body)/2] // cut mid-document: never valid JSON
	}
	st.stats.record(kind, req.ws.id, a.status)
	return a
}

func (a dataAnswer) write(w http.ResponseWriter) {
	if a.cloudflare {
		writeCloudflareBlock(w)
		return
	}
	w.Header().Set("x-notion-request-id", a.requestID)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// The fake marshals its own values; a failure is a bug (or a test
		// that put an unmarshalable value in a Payload).
		panic(fmt.Sprintf("notionfake: marshal response: %v", err))
	}
	return b
}

// writeCloudflareBlock answers like Cloudflare's WAF in front of Notion: a
// 403 text/html page, no Notion headers.
func writeCloudflareBlock(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.Header().Set("Server", "cloudflare")
	w.Header().Set("Cf-Ray", randomHex(8)+"-FRA")
	w.WriteHeader(http.StatusForbidden)
	_, _ = io.WriteString(w, `<!DOCTYPE html>
<html lang="en-US">
<head><title>Attention Required! | Cloudflare</title></head>
<body>
<div id="cf-wrapper"><h1>Sorry, you have been blocked</h1>
<h2>You are unable to access notion.com</h2>
<p>This website is using a security service to protect itself from online attacks.</p>
</div>
</body>
</html>
`)
}
