package sandbox

import (
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

// Imperfections is the admin API's view of notionfake.Imperfections.
type Imperfections struct {
	MultiSourceReadFails bool    `json:"multi_source_read_fails"`
	TruncateReferences   bool    `json:"truncate_references"`
	ResultLimit          bool    `json:"result_limit"`
	ResultLimitSize      int     `json:"result_limit_size"`
	SearchOmitShare      float64 `json:"search_omit_share"`
	SearchLag            string  `json:"search_lag"`
}

func imperfectionsJSON(im notionfake.Imperfections) Imperfections {
	return Imperfections{
		MultiSourceReadFails: im.MultiSourceReadFails, TruncateReferences: im.TruncateReferences,
		ResultLimit: im.ResultLimit, ResultLimitSize: im.ResultLimitSize,
		SearchOmitShare: im.SearchOmitShare, SearchLag: im.SearchLag.String(),
	}
}

// ImperfectionsRequest is the body of POST /_sandbox/imperfections: every
// field is optional and changes only its imperfection. search_lag is a Go
// duration ("5m"; "0s" switches it off); result_limit_size 0 means
// notionfake.DefaultResultLimit (10,000).
type ImperfectionsRequest struct {
	MultiSourceReadFails *bool    `json:"multi_source_read_fails"`
	TruncateReferences   *bool    `json:"truncate_references"`
	ResultLimit          *bool    `json:"result_limit"`
	ResultLimitSize      *int     `json:"result_limit_size"`
	SearchOmitShare      *float64 `json:"search_omit_share"`
	SearchLag            *string  `json:"search_lag"`
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
	if err := s.fake.SetImperfections(im); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	s.log.Info("admin: imperfections", zap.Any("imperfections", imperfectionsJSON(im)))
	writeJSON(w, http.StatusOK, imperfectionsJSON(im))
}

func (s *Sandbox) handleUnshare(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.fake.UnsharePage(s.cfg.WorkspaceID, id); err != nil {
		writeFakeError(w, err)
		return
	}
	s.log.Info("admin: unshared", zap.String("id", id))
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "shared": false})
}

func (s *Sandbox) handleShare(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.fake.SharePage(s.cfg.WorkspaceID, id); err != nil {
		writeFakeError(w, err)
		return
	}
	s.log.Info("admin: shared", zap.String("id", id))
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "shared": true})
}
