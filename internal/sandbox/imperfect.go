package sandbox

import (
	"cmp"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/internal/notionfake"
)

// This file exposes notionfake's Imperfections (Notion's documented
// imperfections, all off by default) and late sharing through the admin API:
//
//	GET  /_sandbox/imperfections     the imperfections in force (Imperfections)
//	POST /_sandbox/imperfections     change some (ImperfectionsRequest); answers the new state
//	POST /_sandbox/pages/{id}/unshare  stop sharing a page or database (404 afterwards)
//	POST /_sandbox/pages/{id}/share    share it again, last_edited_time untouched (late sharing)
//	POST /_sandbox/databases           {"title", "parent_id"?, "data_sources"?: 1|2} add a database
//	                                   (201 {"id", "data_source_ids"})

// Imperfections is the admin API's view of notionfake.Imperfections.
type Imperfections struct {
	MultiSourceReadFails bool    `json:"multi_source_read_fails"`
	TruncateReferences   bool    `json:"truncate_references"`
	ResultLimit          bool    `json:"result_limit"`
	ResultLimitSize      int     `json:"result_limit_size"`
	SearchOmitShare      float64 `json:"search_omit_share"`
	// SearchOmitsDataSources: search_omit_share applies to data sources.
	SearchOmitsDataSources bool   `json:"search_omits_data_sources"`
	SearchLag              string `json:"search_lag"`
	CursorExpiry           string `json:"cursor_expiry"`
}

func imperfectionsJSON(im notionfake.Imperfections) Imperfections {
	return Imperfections{
		MultiSourceReadFails: im.MultiSourceReadFails, TruncateReferences: im.TruncateReferences,
		ResultLimit: im.ResultLimit, ResultLimitSize: im.ResultLimitSize,
		SearchOmitShare: im.SearchOmitShare, SearchOmitsDataSources: im.SearchOmitsDataSources, SearchLag: im.SearchLag.String(),
		CursorExpiry: im.CursorExpiry.String(),
	}
}

// ImperfectionsRequest is the body of POST /_sandbox/imperfections: every
// field is optional and changes only its imperfection. search_lag and
// cursor_expiry are Go durations ("5m"; "0s" switches them off);
// result_limit_size 0 means
// notionfake.DefaultResultLimit (10,000).
type ImperfectionsRequest struct {
	MultiSourceReadFails   *bool    `json:"multi_source_read_fails"`
	TruncateReferences     *bool    `json:"truncate_references"`
	ResultLimit            *bool    `json:"result_limit"`
	ResultLimitSize        *int     `json:"result_limit_size"`
	SearchOmitShare        *float64 `json:"search_omit_share"`
	SearchOmitsDataSources *bool    `json:"search_omits_data_sources"`
	SearchLag              *string  `json:"search_lag"`
	CursorExpiry           *string  `json:"cursor_expiry"`
}

func (s *Sandbox) handleGetImperfections(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, imperfectionsJSON(s.fake.Imperfections()))
}

func (s *Sandbox) handleImperfections(w http.ResponseWriter, r *http.Request) {
	var req ImperfectionsRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	// Read, change and write under the sandbox's lock, so two admin
	// requests do not lose each other's changes.
	s.mu.Lock()
	defer s.mu.Unlock()
	im := s.fake.Imperfections()
	set := func(dst *bool, src *bool) {
		if src != nil {
			*dst = *src
		}
	}
	set(&im.MultiSourceReadFails, req.MultiSourceReadFails)
	set(&im.TruncateReferences, req.TruncateReferences)
	set(&im.ResultLimit, req.ResultLimit)
	set(&im.SearchOmitsDataSources, req.SearchOmitsDataSources)
	if req.ResultLimitSize != nil {
		im.ResultLimitSize = *req.ResultLimitSize
	}
	if req.SearchOmitShare != nil {
		im.SearchOmitShare = *req.SearchOmitShare
	}
	if req.SearchLag != nil {
		d, err := time.ParseDuration(*req.SearchLag)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "search_lag: "+err.Error())
			return
		}
		im.SearchLag = d
	}
	if req.CursorExpiry != nil {
		d, err := time.ParseDuration(*req.CursorExpiry)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "cursor_expiry: "+err.Error())
			return
		}
		im.CursorExpiry = d
	}
	if err := s.fake.SetImperfections(im); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	s.log.Info("admin: imperfections", zap.Any("imperfections", imperfectionsJSON(im)))
	writeJSON(w, http.StatusOK, imperfectionsJSON(im))
}

func (s *Sandbox) handleUnshare(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.fake.UnsharePage(cmp.Or(r.URL.Query().Get("workspace"), s.cfg.WorkspaceID), id); err != nil {
		writeFakeError(w, err)
		return
	}
	s.log.Info("admin: unshared", zap.String("id", id))
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "shared": false})
}

func (s *Sandbox) handleShare(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.fake.SharePage(cmp.Or(r.URL.Query().Get("workspace"), s.cfg.WorkspaceID), id); err != nil {
		writeFakeError(w, err)
		return
	}
	s.log.Info("admin: shared", zap.String("id", id))
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "shared": true})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// addDatabaseRequest is the body of POST /_sandbox/databases.
type addDatabaseRequest struct {
	Title string `json:"title"`
	// ParentID is the page holding the database; default: the top level.
	ParentID string `json:"parent_id"`
	// DataSources is 1 (default) or 2: a database 2022-06-28 cannot query.
	DataSources int `json:"data_sources"`
}

func (s *Sandbox) handleAddDatabase(w http.ResponseWriter, r *http.Request) {
	var req addDatabaseRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if req.Title == "" || req.DataSources < 0 || req.DataSources > 2 {
		writeError(w, http.StatusBadRequest, "invalid_request", "title is required; data_sources is 1 or 2")
		return
	}
	parent := notionfake.WorkspaceParent()
	if req.ParentID != "" {
		parent = notionfake.PageParent(req.ParentID)
	}
	add := s.fake.AddDatabase
	if req.DataSources == 2 {
		add = s.fake.AddMultiSourceDatabase
	}
	id, err := add(s.cfg.WorkspaceID, parent, req.Title)
	if err != nil {
		writeFakeError(w, err)
		return
	}
	srcs, err := s.fake.DataSourceIDs(s.cfg.WorkspaceID, id)
	if err != nil {
		writeFakeError(w, err)
		return
	}
	s.log.Info("admin: database added", zap.String("database_id", id), zap.Int("data_sources", len(srcs)))
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "data_source_ids": srcs, "workspace_id": s.cfg.WorkspaceID})
}
