package sandbox

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/internal/notionfake"
)

const (
	// maxAdminBody bounds admin request bodies.
	maxAdminBody = 1 << 20
	// maxQueuedFaults bounds each count of a faults request.
	maxQueuedFaults = 10_000
	// maxRetryAfter bounds a faults request's retry_after.
	maxRetryAfter = time.Hour
)

// Targets of a faults request.
const (
	targetBoth  = ""
	targetData  = "data"
	targetToken = "token"
)

// AdminRoute is one route of the admin API, as GET /_sandbox/ and
// notion-sandbox -h list it.
type AdminRoute struct {
	Method  string `json:"method"`
	Path    string `json:"path"`
	Summary string `json:"summary"`
}

// adminRoute is an AdminRoute with its handler.
type adminRoute struct {
	AdminRoute
	handler func(*Sandbox, http.ResponseWriter, *http.Request)
}

// adminRoutes is the admin API: routes are registered from this table, so
// the index (GET /_sandbox/) and -h cannot miss one.
var adminRoutes = []adminRoute{
	{AdminRoute{"GET", "/_sandbox/", "this list of admin routes"}, nil}, // registerAdminRoutes serves it
	{AdminRoute{"GET", "/_sandbox/health", "{\"status\":\"ok\"}"}, (*Sandbox).handleHealth},
	{AdminRoute{"GET", "/_sandbox/stats", "token and data counters, fault settings"}, (*Sandbox).handleStats},
	{AdminRoute{"GET", "/_sandbox/workspace", "what the seed created: counts and ids"}, (*Sandbox).handleWorkspace},
	{AdminRoute{"GET", "/_sandbox/expected", "per live page, its block count (?workspace=ID)"}, (*Sandbox).handleExpected},
	{AdminRoute{"POST", "/_sandbox/pages", "add a page: {\"title\", \"text\"?, \"parent_id\"? | \"database_id\"? | \"data_source_id\"?}"}, (*Sandbox).handleAddPage},
	{AdminRoute{"POST", "/_sandbox/pages/{id}/touch", "edit the page's first paragraph: {\"text\"?}"}, (*Sandbox).handleTouch},
	{AdminRoute{"POST", "/_sandbox/pages/{id}/archive", "move the page to the trash (?workspace=; default the seeded one)"}, (*Sandbox).handleArchive},
	{AdminRoute{"POST", "/_sandbox/revoke", "revoke the connection (?workspace=; default the seeded one)"}, (*Sandbox).handleRevoke},
	{AdminRoute{"POST", "/_sandbox/workspaces", "seed many small workspaces, one auth code each"}, (*Sandbox).handleWorkspaces},
	{AdminRoute{"POST", "/_sandbox/workspaces/{id}/code", "a new auth code for a workspace: {\"redirect_uri\"}"}, (*Sandbox).handleWorkspaceCode},
	{AdminRoute{"GET", "/_sandbox/faults", "fault settings and pending faults"}, (*Sandbox).handleGetFaults},
	{AdminRoute{"POST", "/_sandbox/faults", "inject faults (see package internal/sandbox)"}, (*Sandbox).handleFaults},
	{AdminRoute{"GET", "/_sandbox/poison", "the poisoned objects and their request counts"}, (*Sandbox).handleGetPoison},
	{AdminRoute{"POST", "/_sandbox/poison", "poison objects"}, (*Sandbox).handlePoison},
	{AdminRoute{"DELETE", "/_sandbox/poison", "lift every poison, or one (?workspace=&id=&target=)"}, (*Sandbox).handleClearPoison},
	{AdminRoute{"POST", "/_sandbox/pages/{id}/unshare", "stop sharing the page with the integration (404 from then on; ?workspace=)"}, (*Sandbox).handleUnshare},
	{AdminRoute{"POST", "/_sandbox/pages/{id}/share", "share the page again, with its old last_edited_time (late sharing; ?workspace=)"}, (*Sandbox).handleShare},
	{AdminRoute{"POST", "/_sandbox/databases", "add a database: {\"title\", \"parent_id\"?, \"data_sources\": 1|2}"}, (*Sandbox).handleAddDatabase},
	{AdminRoute{"GET", "/_sandbox/ground-truth", "every object with its state and full property values (?workspace=ID)"}, (*Sandbox).handleGroundTruth},
	{AdminRoute{"GET", "/_sandbox/imperfections", "Notion's imperfections in force (all off by default)"}, (*Sandbox).handleGetImperfections},
	{AdminRoute{"POST", "/_sandbox/imperfections", "switch imperfections on or off (partial update)"}, (*Sandbox).handleImperfections},
}

// AdminRoutes returns the admin API's routes, in the order the index lists
// them.
func AdminRoutes() []AdminRoute {
	out := make([]AdminRoute, len(adminRoutes))
	for i, r := range adminRoutes {
		out[i] = r.AdminRoute
	}
	return out
}

func (s *Sandbox) registerAdminRoutes(mux *http.ServeMux) {
	for _, rt := range adminRoutes {
		pattern := rt.Path
		if pattern == "/_sandbox/" {
			pattern += "{$}" // the index only, not the whole subtree
		}
		h := rt.handler
		if h == nil {
			h = (*Sandbox).handleIndex
		}
		mux.HandleFunc(rt.Method+" "+pattern, func(w http.ResponseWriter, r *http.Request) { h(s, w, r) })
	}
	mux.HandleFunc("/_sandbox/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found",
			fmt.Sprintf("no admin route %s %s; GET /_sandbox/ lists them", r.Method, r.URL.Path))
	})
}

// IndexResponse is the body of GET /_sandbox/.
type IndexResponse struct {
	Routes []AdminRoute `json:"routes"`
}

func (s *Sandbox) handleIndex(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, IndexResponse{Routes: AdminRoutes()})
}

// adminError is the admin API's error body.
type adminError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, adminError{Error: code, Message: msg})
}

// writeFakeError maps an error of a notionfake control method.
func writeFakeError(w http.ResponseWriter, err error) {
	if errors.Is(err, notionfake.ErrObjectNotFound) {
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		// Only this file's fixed types are marshalled: a bug.
		panic(fmt.Sprintf("sandbox: marshal admin response: %v", err))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeJSON decodes r's body into v, rejecting unknown fields and trailing
// data. An empty body leaves v as it is.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("request body: %w", err)
	}
	if dec.More() {
		return errors.New("request body: data after the JSON object")
	}
	return nil
}

func (s *Sandbox) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

func (s *Sandbox) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// StatsResponse is the body of GET /_sandbox/stats.
type StatsResponse struct {
	WorkspaceID string `json:"workspace_id"`
	// Connected reports whether the seeded workspace has a live connection.
	Connected bool       `json:"connected"`
	Tokens    TokenStats `json:"tokens"`
	Data      DataStats  `json:"data"`
	Faults    FaultState `json:"faults"`
}

// TokenStats are the token endpoint's counters (notionfake.Stats).
type TokenStats struct {
	TokenRequests int `json:"token_requests"`
	Exchanges     int `json:"exchanges"`
	RefreshGrants int `json:"refresh_grants"`
	// WorkspaceRefreshGrants counts the seeded workspace's rotations.
	WorkspaceRefreshGrants int `json:"workspace_refresh_grants"`
	InvalidGrants          int `json:"invalid_grants"`
	InvalidClients         int `json:"invalid_clients"`
	RateLimited            int `json:"rate_limited"`
	InjectedFailures       int `json:"injected_failures"`
	Dropped                int `json:"dropped"`
	Revocations            int `json:"revocations"`
	Introspections         int `json:"introspections"`
}

// DataStats are the data API's counters (notionfake.DataStats).
type DataStats struct {
	Requests int `json:"requests"`
	// ByStatus and ByEndpoint count requests by the status answered.
	ByStatus   map[int]int            `json:"by_status"`
	ByEndpoint map[string]map[int]int `json:"by_endpoint"`
	Workspaces map[string]int         `json:"workspaces"`
	// InjectedFaults counts requests answered by a queued fault (fail_next,
	// the fail rate, rate_limit_next, unauthorized_next, malformed_next,
	// html_error_next).
	InjectedFaults int `json:"injected_faults"`
	// PoisonedAnswers counts requests answered by a poisoned object
	// (/_sandbox/poison).
	PoisonedAnswers int `json:"poisoned_answers"`
	// InvalidCursors counts requests refused for their start_cursor
	// (unknown or malformed, or invalid_cursor_next);
	// InjectedInvalidCursors counts the invalid_cursor_next ones.
	InvalidCursors         int `json:"invalid_cursors"`
	InjectedInvalidCursors int `json:"injected_invalid_cursors"`
	// RateLimited counts 429s of the emulated per-minute rate limit.
	RateLimited int `json:"rate_limited"`
}

// FaultState is the fault settings in force and the faults not yet served.
type FaultState struct {
	FailRate     float64 `json:"fail_rate"`
	RateLimit    int     `json:"rate_limit_per_minute"`
	DataLatency  string  `json:"data_latency"`
	TokenLatency string  `json:"token_latency"`
	// PendingDataFaults is the number of queued data faults not yet served.
	PendingDataFaults int `json:"pending_data_faults"`
	// PendingInvalidCursors is the number of invalid_cursor_next answers
	// not yet served.
	PendingInvalidCursors int `json:"pending_invalid_cursors"`
	// PoisonedObjects is the number of poisoned objects (/_sandbox/poison).
	PoisonedObjects int `json:"poisoned_objects"`
	// RandomFailuresQueued counts the 503s the fail rate has queued.
	RandomFailuresQueued int64 `json:"random_failures_queued"`
}

// Stats returns what GET /_sandbox/stats shows.
func (s *Sandbox) Stats() StatsResponse {
	ws := s.cfg.WorkspaceID
	ts := s.fake.Stats()
	ds := s.fake.DataStats()
	_, connected := s.fake.CurrentPair(ws)
	out := StatsResponse{
		WorkspaceID: ws,
		Connected:   connected,
		Tokens: TokenStats{
			TokenRequests:          ts.TokenRequests,
			Exchanges:              ts.Exchanges,
			RefreshGrants:          ts.RefreshGrants,
			WorkspaceRefreshGrants: s.fake.RefreshGrantsFor(ws),
			InvalidGrants:          ts.InvalidGrants,
			InvalidClients:         ts.InvalidClients,
			RateLimited:            ts.RateLimited,
			InjectedFailures:       ts.InjectedFailures,
			Dropped:                ts.Dropped,
			Revocations:            ts.Revocations,
			Introspections:         ts.Introspections,
		},
		Data: DataStats{
			Requests:       ds.Total(),
			ByStatus:       map[int]int{},
			ByEndpoint:     map[string]map[int]int{},
			Workspaces:     ds.Workspaces,
			InjectedFaults: ds.InjectedFaults,
			RateLimited:    ds.RateLimited,

			PoisonedAnswers:        ds.PoisonedAnswers,
			InvalidCursors:         ds.InvalidCursors,
			InjectedInvalidCursors: ds.InjectedInvalidCursors,
		},
		Faults: s.FaultState(),
	}
	for kind, byStatus := range ds.Requests {
		out.Data.ByEndpoint[string(kind)] = byStatus
		for status, n := range byStatus {
			out.Data.ByStatus[status] += n
		}
	}
	return out
}

// FaultState returns the fault settings in force.
func (s *Sandbox) FaultState() FaultState {
	s.mu.Lock()
	st := s.settings
	s.mu.Unlock()
	return FaultState{
		FailRate:              st.FailRate,
		RateLimit:             st.RateLimit,
		DataLatency:           st.DataLatency,
		TokenLatency:          st.TokenLatency,
		PendingDataFaults:     s.fake.PendingDataFaults(),
		PendingInvalidCursors: s.fake.PendingInvalidCursors(),
		PoisonedObjects:       len(s.fake.PoisonedObjects()),
		RandomFailuresQueued:  s.randomFailures.Load(),
	}
}

func (s *Sandbox) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

// WorkspaceResponse is the body of GET /_sandbox/workspace: what the seed
// created (pages added later through the admin API are not in it; see
// LivePages and /_sandbox/expected).
type WorkspaceResponse struct {
	WorkspaceID string   `json:"workspace_id"`
	Seed        SeedJSON `json:"seed"`
	Counts      struct {
		Pages     int `json:"pages"`
		Databases int `json:"databases"`
		Rows      int `json:"rows"`
		Blocks    int `json:"blocks"`
	} `json:"counts"`
	PageIDs        []string            `json:"page_ids"`
	DatabaseIDs    []string            `json:"database_ids"`
	RowIDs         []string            `json:"row_ids"`
	RowsByDatabase map[string][]string `json:"rows_by_database"`
	// DataSourceIDs lists each database's data sources (API 2025-09-03),
	// its first one first; RowsByDataSource groups the rows by them.
	DataSourceIDs    map[string][]string `json:"data_source_ids"`
	RowsByDataSource map[string][]string `json:"rows_by_data_source"`
	// LivePages is the number of pages and rows a complete sync holds now.
	LivePages int `json:"live_pages"`
}

// SeedJSON is the seed specification in the admin API.
type SeedJSON struct {
	Seed          int64  `json:"seed"`
	Pages         int    `json:"pages"`
	NestedPages   int    `json:"nested_pages"`
	BlocksPerPage int    `json:"blocks_per_page"`
	BlockDepth    int    `json:"block_depth"`
	Databases     int    `json:"databases"`
	Rows          int    `json:"rows"`
	BlocksPerRow  int    `json:"blocks_per_row"`
	UnknownBlocks bool   `json:"unknown_blocks"`
	History       string `json:"history"`
	// MultiSourceDatabases and ManyReferenceRows are notionfake's seed
	// options of the same names.
	MultiSourceDatabases int `json:"multi_source_databases"`
	ManyReferenceRows    int `json:"many_reference_rows"`
	// Users and EveryType are notionfake's SeedSpec options of the same
	// names.
	Users     int  `json:"users"`
	EveryType bool `json:"every_type"`
	// Files is notionfake's SeedSpec.Files: Notion-hosted files behind
	// signed, expiring URLs.
	Files bool `json:"files"`
}

func (s *Sandbox) handleWorkspace(w http.ResponseWriter, _ *http.Request) {
	sp, res := s.cfg.Seed, s.seed
	out := WorkspaceResponse{
		WorkspaceID: s.cfg.WorkspaceID,
		Seed: SeedJSON{
			Seed: sp.Seed, Pages: sp.Pages, NestedPages: sp.NestedPages, BlocksPerPage: sp.BlocksPerPage,
			BlockDepth: sp.BlockDepth, Databases: sp.Databases, Rows: sp.RowsPerDatabase,
			BlocksPerRow: sp.BlocksPerRow, UnknownBlocks: sp.UnknownBlocks, History: sp.History.String(),
			MultiSourceDatabases: sp.MultiSourceDatabases, ManyReferenceRows: sp.ManyReferenceRows,
			Users: sp.Users, EveryType: sp.EveryType,
			Files: sp.Files,
		},
		PageIDs:        nonNil(res.PageIDs),
		DatabaseIDs:    nonNil(res.DatabaseIDs),
		RowIDs:         nonNil(res.RowIDs),
		RowsByDatabase: res.RowsByDatabase,
		DataSourceIDs:  res.DataSourceIDs, RowsByDataSource: res.RowsByDataSource,
		LivePages: len(s.fake.AllPageIDs(s.cfg.WorkspaceID)),
	}
	out.Counts.Pages, out.Counts.Databases = len(res.PageIDs), len(res.DatabaseIDs)
	out.Counts.Rows, out.Counts.Blocks = len(res.RowIDs), res.BlockCount
	writeJSON(w, http.StatusOK, out)
}

func nonNil(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}

// ExpectedResponse is the body of GET /_sandbox/expected: what a complete
// sync of the workspace holds now.
type ExpectedResponse struct {
	WorkspaceID string `json:"workspace_id"`
	// PageCount counts the live pages, database rows included.
	PageCount int `json:"page_count"`
	// BlockCount is the sum of Pages[].Blocks.
	BlockCount int            `json:"block_count"`
	Pages      []ExpectedPage `json:"pages"`
}

// ExpectedPage is one live page (or row) and the number of blocks a full walk
// of its block children finds: nested blocks and table rows included,
// child_page and child_database blocks once each, their content not.
type ExpectedPage struct {
	ID     string `json:"id"`
	Blocks int    `json:"blocks"`
}

// Expected returns what GET /_sandbox/expected shows for the seeded
// workspace. Each page's count is a snapshot of that page; a page edited
// meanwhile may be counted before or after the edit.
func (s *Sandbox) Expected() (ExpectedResponse, error) {
	return s.ExpectedFor(s.cfg.WorkspaceID)
}

// ExpectedFor is Expected for workspace ws (GET
// /_sandbox/expected?workspace=ws); an unknown workspace is an error
// wrapping notionfake.ErrObjectNotFound.
func (s *Sandbox) ExpectedFor(ws string) (ExpectedResponse, error) {
	if !s.fake.HasWorkspace(ws) {
		return ExpectedResponse{}, fmt.Errorf("sandbox: %w: workspace %q", notionfake.ErrObjectNotFound, ws)
	}
	ids := s.fake.AllPageIDs(ws)
	out := ExpectedResponse{WorkspaceID: ws, PageCount: len(ids), Pages: make([]ExpectedPage, 0, len(ids))}
	for _, id := range ids {
		n, err := s.fake.PageBlockCount(ws, id)
		if err != nil {
			return ExpectedResponse{}, fmt.Errorf("sandbox: count blocks of %s: %w", id, err)
		}
		out.Pages = append(out.Pages, ExpectedPage{ID: id, Blocks: n})
		out.BlockCount += n
	}
	return out, nil
}

func (s *Sandbox) handleExpected(w http.ResponseWriter, r *http.Request) {
	ws := r.URL.Query().Get("workspace")
	if ws == "" {
		ws = s.cfg.WorkspaceID
	}
	out, err := s.ExpectedFor(ws)
	if errors.Is(err, notionfake.ErrObjectNotFound) && !s.fake.HasWorkspace(ws) {
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// addPageRequest is the body of POST /_sandbox/pages.
type addPageRequest struct {
	Title string `json:"title"`
	// Text, when set, is the content: one paragraph.
	Text string `json:"text"`
	// ParentID makes the page a child page of that page; DatabaseID a row of
	// that database (of its first data source); DataSourceID a row of that
	// data source. None: a top-level page.
	ParentID     string `json:"parent_id"`
	DatabaseID   string `json:"database_id"`
	DataSourceID string `json:"data_source_id"`
}

func (s *Sandbox) handleAddPage(w http.ResponseWriter, r *http.Request) {
	var req addPageRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if req.Title == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "title is required")
		return
	}
	if n := btoi(req.ParentID != "") + btoi(req.DatabaseID != "") + btoi(req.DataSourceID != ""); n > 1 {
		writeError(w, http.StatusBadRequest, "invalid_request", "give one of parent_id, database_id and data_source_id")
		return
	}
	parent := notionfake.WorkspaceParent()
	switch {
	case req.ParentID != "":
		parent = notionfake.PageParent(req.ParentID)
	case req.DatabaseID != "":
		parent = notionfake.DatabaseParent(req.DatabaseID)
	}
	var blocks []*notionfake.Block
	if req.Text != "" {
		blocks = append(blocks, notionfake.TextBlock("paragraph", req.Text))
	}
	var (
		id  string
		err error
	)
	if req.DataSourceID != "" {
		id, err = s.fake.AddRowToDataSource(s.cfg.WorkspaceID, req.DataSourceID, req.Title, blocks...)
	} else {
		id, err = s.fake.AddPage(s.cfg.WorkspaceID, parent, req.Title, blocks...)
	}
	if err != nil {
		writeFakeError(w, err)
		return
	}
	s.log.Info("admin: page added", zap.String("page_id", id), zap.String("parent_type", string(parent.Type)))
	writeJSON(w, http.StatusCreated, map[string]string{"id": id, "workspace_id": s.cfg.WorkspaceID})
}

// touchRequest is the body of POST /_sandbox/pages/{id}/touch (optional).
type touchRequest struct {
	Text string `json:"text"`
	// Workspace holds the page (default: the seeded workspace).
	Workspace string `json:"workspace"`
}

func (s *Sandbox) handleTouch(w http.ResponseWriter, r *http.Request) {
	var req touchRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if req.Text == "" {
		req.Text = "Edited through the sandbox admin API at " + s.now().UTC().Format(time.RFC3339)
	}
	id := r.PathValue("id")
	if err := s.fake.TouchPage(cmp.Or(req.Workspace, s.cfg.WorkspaceID), id, req.Text); err != nil {
		writeFakeError(w, err)
		return
	}
	s.log.Info("admin: page touched", zap.String("page_id", id))
	writeJSON(w, http.StatusOK, map[string]string{"id": id, "text": req.Text})
}

func (s *Sandbox) handleArchive(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.fake.ArchivePage(cmp.Or(r.URL.Query().Get("workspace"), s.cfg.WorkspaceID), id); err != nil {
		writeFakeError(w, err)
		return
	}
	s.log.Info("admin: page archived", zap.String("page_id", id))
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "archived": true})
}

func (s *Sandbox) handleRevoke(w http.ResponseWriter, r *http.Request) {
	ws := r.URL.Query().Get("workspace")
	if ws == "" {
		ws = s.cfg.WorkspaceID
	}
	revoked := s.fake.Revoke(ws)
	s.log.Info("admin: revoke", zap.String("workspace", ws), zap.Bool("revoked", revoked))
	writeJSON(w, http.StatusOK, map[string]any{"workspace_id": ws, "revoked": revoked})
}

func (s *Sandbox) handleGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.FaultState())
}

// faultsRequest is the body of POST /_sandbox/faults. Every field is
// optional; at least one besides target must be given. Counts queue faults
// for the next requests (served in order, one per request); settings
// (latency, fail_rate, rate_limit) stay until changed.
type faultsRequest struct {
	// Target is "data" or "token": which endpoints fail_next,
	// rate_limit_next and latency apply to. Default: data for the counts,
	// both for latency.
	Target string `json:"target"`
	// FailNext answers the next N requests Status (default 503), processing
	// nothing.
	FailNext *int `json:"fail_next"`
	Status   *int `json:"status"`
	// RateLimitNext answers the next N requests 429 with Retry-After
	// RetryAfter (a Go duration, default "1s", rounded up to seconds).
	RateLimitNext *int    `json:"rate_limit_next"`
	RetryAfter    *string `json:"retry_after"`
	// UnauthorizedNext answers the next N data requests 401 although their
	// token is valid.
	UnauthorizedNext *int `json:"unauthorized_next"`
	// RotateThenDropNext makes the next N successful refreshes commit the
	// rotation and close the connection without a response.
	RotateThenDropNext *int `json:"rotate_then_drop_next"`
	// MalformedNext answers the next N data requests 200 with a truncated
	// JSON body.
	MalformedNext *int `json:"malformed_next"`
	// HTMLErrorNext answers the next N data requests 403 with an HTML body,
	// as Cloudflare does.
	HTMLErrorNext *int `json:"html_error_next"`
	// InvalidCursorNext answers the next N data requests that carry a
	// start_cursor 400 validation_error "The start_cursor provided is
	// invalid: <cursor>", however valid the cursor.
	InvalidCursorNext *int `json:"invalid_cursor_next"`
	// Latency delays every later response (a Go duration; "0s" removes it).
	Latency *string `json:"latency"`
	// FailRate sets the fraction 0..1 of data requests answered 503.
	FailRate *float64 `json:"fail_rate"`
	// RateLimit sets the per-connection data requests per minute (0: off);
	// setting it starts fresh windows.
	RateLimit *int `json:"rate_limit"`
}

// faultPlan is a validated faultsRequest.
type faultPlan struct {
	req        faultsRequest
	status     int
	retryAfter time.Duration
	latency    time.Duration
}

func (req faultsRequest) validate() (faultPlan, error) {
	p := faultPlan{req: req, status: http.StatusServiceUnavailable, retryAfter: time.Second}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch req.Target {
	case targetBoth, targetData, targetToken:
	default:
		bad("target %q: want \"data\" or \"token\"", req.Target)
	}
	count := func(name string, n *int) {
		if n != nil && (*n < 0 || *n > maxQueuedFaults) {
			bad("%s %d outside 0..%d", name, *n, maxQueuedFaults)
		}
	}
	count("fail_next", req.FailNext)
	count("rate_limit_next", req.RateLimitNext)
	count("unauthorized_next", req.UnauthorizedNext)
	count("rotate_then_drop_next", req.RotateThenDropNext)
	count("malformed_next", req.MalformedNext)
	count("html_error_next", req.HTMLErrorNext)
	count("invalid_cursor_next", req.InvalidCursorNext)
	if (req.MalformedNext != nil || req.HTMLErrorNext != nil || req.InvalidCursorNext != nil) && req.Target == targetToken {
		bad("malformed_next, html_error_next and invalid_cursor_next apply to data requests only")
	}
	if req.Status != nil {
		if req.FailNext == nil {
			bad("status needs fail_next")
		} else if *req.Status < 400 || *req.Status > 599 {
			bad("status %d outside 400..599", *req.Status)
		}
		p.status = *req.Status
	}
	if req.RetryAfter != nil {
		d, err := time.ParseDuration(*req.RetryAfter)
		switch {
		case req.RateLimitNext == nil:
			bad("retry_after needs rate_limit_next")
		case err != nil:
			bad("retry_after: %v", err)
		case d < 0 || d > maxRetryAfter:
			bad("retry_after %v outside 0..%v", d, maxRetryAfter)
		}
		p.retryAfter = d
	}
	if req.UnauthorizedNext != nil && req.Target == targetToken {
		bad("unauthorized_next applies to data requests only")
	}
	if req.RotateThenDropNext != nil && req.Target == targetData {
		bad("rotate_then_drop_next applies to the token endpoint only")
	}
	if req.Latency != nil {
		d, err := time.ParseDuration(*req.Latency)
		if err != nil {
			bad("latency: %v", err)
		} else if d < 0 || d > maxLatency {
			bad("latency %v outside 0..%v", d, maxLatency)
		}
		p.latency = d
	}
	if req.FailRate != nil && !(*req.FailRate >= 0 && *req.FailRate <= 1) {
		bad("fail_rate %v outside 0..1", *req.FailRate)
	}
	if req.RateLimit != nil && *req.RateLimit < 0 {
		bad("rate_limit %d is negative", *req.RateLimit)
	}
	if req.FailNext == nil && req.RateLimitNext == nil && req.UnauthorizedNext == nil &&
		req.RotateThenDropNext == nil && req.Latency == nil && req.FailRate == nil && req.RateLimit == nil &&
		req.MalformedNext == nil && req.HTMLErrorNext == nil && req.InvalidCursorNext == nil {
		bad("no fault given")
	}
	return p, errors.Join(errs...)
}

// applyFaults applies a validated plan: all of it, under s.mu.
func (s *Sandbox) applyFaults(p faultPlan) {
	req := p.req
	toToken := req.Target == targetToken
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.FailNext != nil {
		if toToken {
			s.fake.FailNext(*req.FailNext, p.status)
		} else {
			s.fake.FailDataNext(*req.FailNext, p.status)
		}
	}
	if req.RateLimitNext != nil {
		if toToken {
			s.fake.RateLimitNext(*req.RateLimitNext, p.retryAfter)
		} else {
			s.fake.RateLimitDataNext(*req.RateLimitNext, p.retryAfter, "")
		}
	}
	if req.UnauthorizedNext != nil {
		s.fake.UnauthorizedNext(*req.UnauthorizedNext)
	}
	if req.RotateThenDropNext != nil {
		s.fake.RotateThenDropNext(*req.RotateThenDropNext)
	}
	if req.MalformedNext != nil {
		s.fake.MalformedNext(*req.MalformedNext)
	}
	if req.HTMLErrorNext != nil {
		s.fake.HTMLErrorNext(*req.HTMLErrorNext)
	}
	if req.InvalidCursorNext != nil {
		s.fake.InvalidCursorNext(*req.InvalidCursorNext)
	}
	if req.Latency != nil {
		if req.Target != targetToken {
			s.fake.SetDataLatency(p.latency)
			s.settings.DataLatency = p.latency.String()
		}
		if req.Target != targetData {
			s.fake.SetLatency(p.latency)
			s.settings.TokenLatency = p.latency.String()
		}
	}
	if req.FailRate != nil {
		s.settings.FailRate = *req.FailRate
	}
	if req.RateLimit != nil {
		s.fake.SetRateLimit(*req.RateLimit)
		s.settings.RateLimit = *req.RateLimit
	}
}

func (s *Sandbox) handleFaults(w http.ResponseWriter, r *http.Request) {
	var req faultsRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	plan, err := req.validate()
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	s.applyFaults(plan)
	st := s.FaultState()
	s.log.Info("admin: faults", zap.Any("request", req), zap.Any("state", st))
	writeJSON(w, http.StatusOK, st)
}
