package sandbox

import (
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/internal/notionfake"
)

// maxPoisonPages bounds a poison request's pages.
const maxPoisonPages = 10_000

// PoisonRequest is the body of POST /_sandbox/poison: which objects to
// poison, and how. Give IDs, or Pages; Target and Kind are required.
//
//	{"target":"page","kind":"malformed","ids":["<page id>"],"workspace":"fleet-3"}
//	{"target":"children","kind":"html","pages":2,"workspace":"fleet-3"}    its first 2 pages
//	{"target":"page","kind":"server_error","pages":5,"workspaces":["fleet-1","fleet-2"],"seed":9}
//	{"target":"page","kind":"server_error","pages":5,"random":true}        5 random pages of any workspace
//	{"target":"children","kind":"cycle_self","pages":1,"workspace":"fleet-3"}  a hostile kind
//	{"target":"search","kind":"bad_id","workspace":"fleet-3"}             the workspace's search
//	{"target":"query","kind":"bad_id","ids":["<database id>"]}
type PoisonRequest struct {
	// Target is "page" (GET /v1/pages/{id}), "children" (GET
	// /v1/blocks/{id}/children, every page of the listing), "database" (GET
	// /v1/databases/{id}; ids are databases), "search" (POST
	// /v1/search of Workspace; no ids or pages) or "query" (POST
	// /v1/databases/{id}/query; ids are databases).
	Target notionfake.PoisonTarget `json:"target"`
	// Kind is "malformed" (200 with truncated JSON), "html" (Cloudflare's
	// 403 HTML page) or "server_error" (500 internal_server_error), for
	// "page" and "children"; a permanent kind, "restricted_resource" (403),
	// "object_not_found" (404) or "validation_error" (400), for "page",
	// "children", "database" (GET /v1/databases/{id}) and "query"; or a
	// hostile kind (see notionfake's
	// data_hostile.go): for "children" "cycle_self", "cycle_ancestor",
	// "endless_same", "endless_new", "huge", "wrong_types"; for "search"
	// and "query" "bad_id".
	Kind notionfake.PoisonKind `json:"kind"`
	// Workspace is the workspace of IDs, or whose first Pages live pages
	// are poisoned. Default: the seeded workspace.
	Workspace string `json:"workspace"`
	// IDs are pages (or, for "children", blocks) to poison.
	IDs []string `json:"ids"`
	// Pages poisons that many pages not poisoned yet: the first ones of
	// Workspace (creation order), or, with Workspaces or Random, pages
	// drawn at random from Seed among Workspaces (all workspaces when
	// empty).
	Pages      int      `json:"pages"`
	Workspaces []string `json:"workspaces"`
	Random     bool     `json:"random"`
	Seed       uint64   `json:"seed"`
}

// PoisonResponse is the answer of POST and GET /_sandbox/poison: the
// objects the request poisoned (POST) or every poisoned object with the
// number of requests it answered (GET).
type PoisonResponse struct {
	Poisoned []notionfake.Poisoned `json:"poisoned"`
}

// ClearPoisonResponse is the answer of DELETE /_sandbox/poison.
type ClearPoisonResponse struct {
	Cleared int `json:"cleared"`
}

func (req PoisonRequest) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch req.Target {
	case notionfake.PoisonPageGet, notionfake.PoisonChildren, notionfake.PoisonSearch, notionfake.PoisonQuery:
		if !req.Target.Takes(req.Kind) {
			bad("kind %q: not one target %q takes", req.Kind, req.Target)
		}
	default:
		bad("target %q: want %q, %q, %q or %q", req.Target, notionfake.PoisonPageGet, notionfake.PoisonChildren,
			notionfake.PoisonSearch, notionfake.PoisonQuery)
	}
	if req.Target == notionfake.PoisonSearch {
		if len(req.IDs) > 0 || req.Pages != 0 || req.Random || len(req.Workspaces) > 0 || req.Seed != 0 {
			bad("target %q poisons Workspace's search: give no ids, pages, random, workspaces or seed", req.Target)
		}
		return errors.Join(errs...)
	}
	if req.Target == notionfake.PoisonQuery && (req.Pages != 0 || req.Random || len(req.Workspaces) > 0) {
		bad("target %q takes database ids, not pages", req.Target)
	}
	random := req.Random || len(req.Workspaces) > 0
	switch {
	case len(req.IDs) > 0 && req.Pages != 0:
		bad("give ids or pages, not both")
	case len(req.IDs) == 0 && req.Pages == 0:
		bad("give ids or pages")
	case req.Pages < 0 || req.Pages > maxPoisonPages:
		bad("pages %d outside 1..%d", req.Pages, maxPoisonPages)
	case len(req.IDs) > maxPoisonPages:
		bad("more than %d ids", maxPoisonPages)
	}
	if random && req.Workspace != "" {
		bad("workspace names the workspace of ids or of the first pages; with random or workspaces, use workspaces")
	}
	if random && len(req.IDs) > 0 {
		bad("random and workspaces apply to pages, not ids")
	}
	if !random && req.Seed != 0 {
		bad("seed needs random or workspaces")
	}
	return errors.Join(errs...)
}

func (s *Sandbox) handlePoison(w http.ResponseWriter, r *http.Request) {
	var req PoisonRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if err := req.validate(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	ws := req.Workspace
	if ws == "" {
		ws = s.cfg.WorkspaceID
	}
	var (
		out []notionfake.Poisoned
		err error
	)
	switch {
	case req.Target == notionfake.PoisonSearch:
		var p notionfake.Poisoned
		if p, err = s.fake.PoisonSearchResults(ws, req.Kind); err == nil {
			out = []notionfake.Poisoned{p}
		}
	case len(req.IDs) > 0:
		out, err = s.fake.PoisonObjects(ws, req.IDs, req.Target, req.Kind)
	case req.Random || len(req.Workspaces) > 0:
		out, err = s.fake.PoisonRandomPages(req.Workspaces, req.Pages, req.Target, req.Kind, req.Seed)
	default:
		out, err = s.fake.PoisonPages(ws, req.Pages, req.Target, req.Kind)
	}
	if err != nil {
		writeFakeError(w, err)
		return
	}
	s.log.Info("admin: poisoned", zap.Int("objects", len(out)), zap.String("target", string(req.Target)),
		zap.String("kind", string(req.Kind)))
	writeJSON(w, http.StatusOK, PoisonResponse{Poisoned: nonNilPoisoned(out)})
}

func (s *Sandbox) handleGetPoison(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, PoisonResponse{Poisoned: nonNilPoisoned(s.fake.PoisonedObjects())})
}

// handleClearPoison lifts every poison, or, with the query parameters
// workspace (default: the seeded workspace), id and target, one.
func (s *Sandbox) handleClearPoison(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id, target := q.Get("id"), notionfake.PoisonTarget(q.Get("target"))
	if id == "" && target == "" && q.Get("workspace") == "" {
		n := s.fake.ClearPoison()
		s.log.Info("admin: poison cleared", zap.Int("objects", n))
		writeJSON(w, http.StatusOK, ClearPoisonResponse{Cleared: n})
		return
	}
	if id == "" || (target != notionfake.PoisonPageGet && target != notionfake.PoisonChildren && target != notionfake.PoisonQuery &&
		target != notionfake.PoisonDatabaseGet) {
		writeError(w, http.StatusBadRequest, "invalid_request", "to lift one poison give id and target (page, children, database or query), and optionally workspace")
		return
	}
	ws := q.Get("workspace")
	if ws == "" {
		ws = s.cfg.WorkspaceID
	}
	if !s.fake.Unpoison(ws, id, target) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s of %s in workspace %s is not poisoned", target, id, ws))
		return
	}
	writeJSON(w, http.StatusOK, ClearPoisonResponse{Cleared: 1})
}

func nonNilPoisoned(ps []notionfake.Poisoned) []notionfake.Poisoned {
	if ps == nil {
		return []notionfake.Poisoned{}
	}
	return ps
}
