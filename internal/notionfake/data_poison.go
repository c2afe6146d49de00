package notionfake

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
)

// This file holds the bad-input faults that stay until cleared: poisoned
// objects (every request for one page or one block's children fails the
// same way) and invalid-cursor answers. Every method is safe for concurrent
// use, also while requests are served.

// PoisonTarget is the request a poisoned object fails.
type PoisonTarget string

// Poison targets.
const (
	// PoisonPageGet poisons GET /v1/pages/{id} of a page.
	PoisonPageGet PoisonTarget = "page"
	// PoisonChildren poisons GET /v1/blocks/{id}/children of a page or a
	// block: every request of the listing, whatever its cursor.
	PoisonChildren PoisonTarget = "children"
	// PoisonDatabaseGet poisons GET /v1/databases/{id} of a database
	// (plain and permanent kinds).
	PoisonDatabaseGet PoisonTarget = "database"
)

// PoisonKind is how a poisoned object answers.
type PoisonKind string

// Poison kinds.
const (
	// PoisonMalformed answers 200 with the first half of the JSON body the
	// request would have had: a truncated document.
	PoisonMalformed PoisonKind = "malformed"
	// PoisonHTML answers like Cloudflare's WAF: 403 with a text/html body
	// and no x-notion-request-id.
	PoisonHTML PoisonKind = "html"
	// PoisonServerError answers 500 internal_server_error with Notion's
	// error body.
	PoisonServerError PoisonKind = "server_error"

	// The permanent kinds answer as Notion does for an object the
	// integration can never read as it is: the same request fails the same
	// way until the object (or its sharing) changes. They apply to
	// PoisonPageGet, PoisonChildren and PoisonQuery.

	// PoisonRestricted answers 403 restricted_resource with Notion's error
	// body (the integration lacks the capability for this object). The
	// permanent kinds also apply to PoisonDatabaseGet.
	PoisonRestricted PoisonKind = "restricted_resource"
	// PoisonNotFound answers 404 object_not_found with Notion's error body
	// (for children: a block Notion will not list to this integration).
	PoisonNotFound PoisonKind = "object_not_found"
	// PoisonValidation answers 400 validation_error with Notion's error
	// body, for a request that carries no cursor Notion could refuse.
	PoisonValidation PoisonKind = "validation_error"
)

// ErrInvalidPoison is returned (wrapped) for an unknown PoisonTarget or
// PoisonKind, or an object the target does not apply to (a block for
// PoisonPageGet, a database for PoisonChildren).
var ErrInvalidPoison = errors.New("notionfake: invalid poison")

// ErrNotEnoughPages is returned (wrapped) by PoisonPages and
// PoisonRandomPages when fewer pages than asked can be poisoned; nothing is
// poisoned then.
var ErrNotEnoughPages = errors.New("notionfake: not enough pages to poison")

// Poisoned is one poisoned object. A snapshot (PoisonedObjects) does not
// change afterwards.
type Poisoned struct {
	WorkspaceID string `json:"workspace_id"`
	// ID is the poisoned page or block, dashed and lower case.
	ID     string       `json:"id"`
	Target PoisonTarget `json:"target"`
	Kind   PoisonKind   `json:"kind"`
	// PageID is the page whose sync the poison breaks: ID itself for a
	// page, the page holding the block for a block.
	PageID string `json:"page_id"`
	// Served counts the requests the poison answered.
	Served int `json:"served"`
}

// poisonKey identifies a poisoned object.
type poisonKey struct {
	ws, id string
	target PoisonTarget
}

func (t PoisonTarget) valid() bool {
	return t == PoisonPageGet || t == PoisonChildren || t == PoisonSearch || t == PoisonQuery || t == PoisonDatabaseGet
}

// plain reports whether k is one of the fault kinds (which any page or
// children target takes).
func (k PoisonKind) plain() bool {
	return k == PoisonMalformed || k == PoisonHTML || k == PoisonServerError
}

// Permanent reports whether k is one of the permanent kinds
// (PoisonRestricted, PoisonNotFound, PoisonValidation).
func (k PoisonKind) Permanent() bool {
	return k == PoisonRestricted || k == PoisonNotFound || k == PoisonValidation
}

func (k PoisonKind) valid() bool { return k.plain() || k.Permanent() || k.Hostile() }

// Takes reports whether target t takes poison kind k.
func (t PoisonTarget) Takes(k PoisonKind) bool { return t.valid() && t.fits(k) }

// fits reports whether target takes kind.
func (t PoisonTarget) fits(k PoisonKind) bool {
	if k.plain() {
		return t == PoisonPageGet || t == PoisonChildren || t == PoisonDatabaseGet
	}
	if k.Permanent() {
		return t == PoisonPageGet || t == PoisonChildren || t == PoisonQuery || t == PoisonDatabaseGet
	}
	for _, h := range hostileKinds[t] {
		if h == k {
			return true
		}
	}
	return false
}

// fault is the answer of a poisoned object.
func (k PoisonKind) fault() dataFault {
	switch k {
	case PoisonMalformed:
		return dataFault{kind: dataFaultMalformed}
	case PoisonHTML:
		return dataFault{kind: dataFaultHTML}
	case PoisonRestricted:
		return dataFault{kind: dataFaultStatus, status: http.StatusForbidden, code: string(PoisonRestricted),
			message: "API token does not have access to this resource."}
	case PoisonNotFound:
		return dataFault{kind: dataFaultStatus, status: http.StatusNotFound, code: string(PoisonNotFound),
			message: "Could not find block with the requested ID. Make sure the relevant pages and databases are shared with your integration."}
	case PoisonValidation:
		return dataFault{kind: dataFaultStatus, status: http.StatusBadRequest, code: string(PoisonValidation),
			message: "body failed validation: the object cannot be read with this request."}
	}
	return dataFault{kind: dataFaultStatus, status: http.StatusInternalServerError}
}

func checkPoison(target PoisonTarget, kind PoisonKind) error {
	if !target.valid() {
		return fmt.Errorf("%w: target %q (want %q, %q, %q, %q or %q)", ErrInvalidPoison, target, PoisonPageGet, PoisonChildren, PoisonDatabaseGet, PoisonSearch, PoisonQuery)
	}
	if !kind.valid() {
		return fmt.Errorf("%w: kind %q (want %q, %q, %q, %q, %q or %q, or a hostile kind)", ErrInvalidPoison, kind,
			PoisonMalformed, PoisonHTML, PoisonServerError, PoisonRestricted, PoisonNotFound, PoisonValidation)
	}
	if !target.fits(kind) {
		return fmt.Errorf("%w: kind %q does not apply to target %q", ErrInvalidPoison, kind, target)
	}
	return nil
}

// Poison makes every request of target for object id of workspace ws answer
// as kind says, until Unpoison or ClearPoison: GET /v1/pages/{id} of a page
// (PoisonPageGet), or GET /v1/blocks/{id}/children of a page or a block
// (PoisonChildren). The request is authenticated, counted and rate limited
// first, as every data request is, and takes no queued fault. Poisoning an
// object again changes its kind and keeps its count. It returns the poisoned
// object, or an error wrapping ErrObjectNotFound (unknown workspace or
// object) or ErrInvalidPoison.
func (s *Server) Poison(ws, id string, target PoisonTarget, kind PoisonKind) (Poisoned, error) {
	ps, err := s.PoisonObjects(ws, []string{id}, target, kind)
	if err != nil {
		return Poisoned{}, err
	}
	return ps[0], nil
}

// PoisonObjects poisons target of every object of ids in workspace ws, as
// Poison does, all or none: when one id cannot be poisoned, none is, and
// the error names it.
func (s *Server) PoisonObjects(ws string, ids []string, target PoisonTarget, kind PoisonKind) ([]Poisoned, error) {
	if err := checkPoison(target, kind); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookupWSLocked(ws)
	if err != nil {
		return nil, err
	}
	out := make([]Poisoned, 0, len(ids))
	for _, id := range ids {
		p, err := d.poisonable(id, target)
		if err != nil {
			return nil, err
		}
		p.Kind = kind
		out = append(out, p)
	}
	for i, p := range out {
		out[i] = s.poisonLocked(p)
	}
	return out, nil
}

// poisonable returns the poison of target for object id of d, without its
// kind, or why id cannot be poisoned.
func (d *wsData) poisonable(id string, target PoisonTarget) (Poisoned, error) {
	nid, _ := normalizeID(id)
	p := Poisoned{WorkspaceID: d.id, ID: nid, Target: target}
	if target == PoisonQuery || target == PoisonSearch || target == PoisonDatabaseGet {
		if _, ok := d.dbs[nid]; ok && target != PoisonSearch {
			return p, nil
		}
		return p, fmt.Errorf("%w: target %q takes a database id (%q: use PoisonSearchResults)", ErrInvalidPoison, target, PoisonSearch)
	}
	if pg, ok := d.pages[nid]; ok {
		p.PageID = pg.ID
		return p, nil
	}
	if ref, ok := d.blocks[nid]; ok {
		if target != PoisonChildren {
			return p, fmt.Errorf("%w: %s is a block; only its children can be poisoned", ErrInvalidPoison, id)
		}
		p.PageID = ref.page.ID
		return p, nil
	}
	if _, ok := d.dbs[nid]; ok {
		return p, fmt.Errorf("%w: %s is a database", ErrInvalidPoison, id)
	}
	return p, fmt.Errorf("%w: page or block %q in workspace %q", ErrObjectNotFound, id, d.id)
}

// poisonLocked records p and returns it with its count. The caller holds
// s.mu.
func (s *Server) poisonLocked(p Poisoned) Poisoned {
	st := s.dataLocked()
	key := poisonKey{p.WorkspaceID, p.ID, p.Target}
	if old, ok := st.poison[key]; ok {
		p.Served = old.Served
	}
	cp := p
	st.poison[key] = &cp
	return p
}

// PoisonPages poisons target of the first n live pages of workspace ws (in
// creation order, database rows included, as AllPageIDs lists them) that
// are not poisoned yet, for any target. It returns them in that order. When
// fewer than n such pages exist it poisons nothing and returns an error
// wrapping ErrNotEnoughPages.
func (s *Server) PoisonPages(ws string, n int, target PoisonTarget, kind PoisonKind) ([]Poisoned, error) {
	if err := checkPoison(target, kind); err != nil {
		return nil, err
	}
	if target != PoisonPageGet && target != PoisonChildren {
		return nil, fmt.Errorf("%w: target %q names no page", ErrInvalidPoison, target)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookupWSLocked(ws)
	if err != nil {
		return nil, err
	}
	cands := s.poisonCandidatesLocked(d)
	if len(cands) < n {
		return nil, fmt.Errorf("%w: %d asked, %d unpoisoned live pages in workspace %q", ErrNotEnoughPages, n, len(cands), ws)
	}
	return s.poisonAllLocked(d.id, cands[:max(n, 0)], target, kind), nil
}

// PoisonRandomPages poisons target of n live pages drawn at random (from
// seed: the same content, seed and poison give the same pages) among the
// unpoisoned pages of workspaces, every workspace with content when
// workspaces is empty. It returns them sorted by workspace, then creation
// order. When fewer than n such pages exist it poisons nothing and returns
// an error wrapping ErrNotEnoughPages; an unknown workspace is an error
// wrapping ErrObjectNotFound.
func (s *Server) PoisonRandomPages(workspaces []string, n int, target PoisonTarget, kind PoisonKind, seed uint64) ([]Poisoned, error) {
	if err := checkPoison(target, kind); err != nil {
		return nil, err
	}
	if target != PoisonPageGet && target != PoisonChildren {
		return nil, fmt.Errorf("%w: target %q names no page", ErrInvalidPoison, target)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dataLocked()
	var wss []*wsData
	if len(workspaces) == 0 {
		for _, d := range st.ws {
			wss = append(wss, d)
		}
	} else {
		for _, id := range workspaces {
			d, err := s.lookupWSLocked(id)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(wss, d) {
				wss = append(wss, d)
			}
		}
	}
	slices.SortFunc(wss, func(a, b *wsData) int { return cmp.Compare(a.id, b.id) })
	type cand struct {
		ws  *wsData
		idx int // position in the workspace's candidates
		p   *Page
	}
	var all []cand
	for _, d := range wss {
		for i, p := range s.poisonCandidatesLocked(d) {
			all = append(all, cand{d, i, p})
		}
	}
	if len(all) < n {
		return nil, fmt.Errorf("%w: %d asked, %d unpoisoned live pages in %d workspaces", ErrNotEnoughPages, n, len(all), len(wss))
	}
	rng := rand.New(rand.NewPCG(seed, uint64(len(all))))
	for i := range max(n, 0) { // partial Fisher-Yates
		j := i + rng.IntN(len(all)-i)
		all[i], all[j] = all[j], all[i]
	}
	chosen := all[:max(n, 0)]
	slices.SortFunc(chosen, func(a, b cand) int { return cmp.Or(cmp.Compare(a.ws.id, b.ws.id), cmp.Compare(a.idx, b.idx)) })
	out := make([]Poisoned, len(chosen))
	for i, c := range chosen {
		out[i] = s.poisonLocked(Poisoned{WorkspaceID: c.ws.id, ID: c.p.ID, Target: target, Kind: kind, PageID: c.p.ID})
	}
	return out, nil
}

// poisonCandidatesLocked returns d's live pages, in creation order, that
// are poisoned for no target. The caller holds s.mu.
func (s *Server) poisonCandidatesLocked(d *wsData) []*Page {
	st := s.dataLocked()
	poisoned := map[string]bool{}
	for k := range st.poison {
		if k.ws == d.id {
			poisoned[k.id] = true
		}
	}
	var out []*Page
	for _, p := range d.pages {
		if !p.Archived && d.pageReadable(p) && !poisoned[p.ID] {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *Page) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

func (s *Server) poisonAllLocked(ws string, pages []*Page, target PoisonTarget, kind PoisonKind) []Poisoned {
	out := make([]Poisoned, len(pages))
	for i, p := range pages {
		out[i] = s.poisonLocked(Poisoned{WorkspaceID: ws, ID: p.ID, Target: target, Kind: kind, PageID: p.ID})
	}
	return out
}

// Unpoison lifts the poison of target for object id of workspace ws and
// reports whether it was poisoned.
func (s *Server) Unpoison(ws, id string, target PoisonTarget) bool {
	nid, _ := normalizeID(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dataLocked()
	key := poisonKey{ws, nid, target}
	_, ok := st.poison[key]
	delete(st.poison, key)
	return ok
}

// ClearPoison lifts every poison and returns how many objects were
// poisoned.
func (s *Server) ClearPoison() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dataLocked()
	n := len(st.poison)
	clear(st.poison)
	clear(st.hostileAncestors)
	return n
}

// PoisonedObjects returns the poisoned objects, with their counts, sorted by
// workspace, id and target.
func (s *Server) PoisonedObjects() []Poisoned {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dataLocked()
	out := make([]Poisoned, 0, len(st.poison))
	for _, p := range st.poison {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Poisoned) int {
		return cmp.Or(cmp.Compare(a.WorkspaceID, b.WorkspaceID), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Target, b.Target))
	})
	return out
}

// poisonedLocked returns the answer of a poisoned request, counting it, or
// false. The caller holds s.mu.
func (s *Server) poisonedLocked(kind EndpointKind, req *dataRequest) (dataFault, bool) {
	st := s.dataLocked()
	if len(st.poison) == 0 {
		return dataFault{}, false
	}
	var target PoisonTarget
	switch kind {
	case EndpointGetPage:
		target = PoisonPageGet
	case EndpointBlockChildren:
		target = PoisonChildren
	case EndpointQueryDatabase, EndpointQueryDataSource:
		target = PoisonQuery
	case EndpointGetDatabase:
		target = PoisonDatabaseGet
	default:
		return dataFault{}, false
	}
	id, ok := poisonPathID(kind, req)
	if !ok {
		return dataFault{}, false
	}
	p, ok := st.poison[poisonKey{req.ws.id, id, target}]
	if !ok || !p.Kind.plain() && !p.Kind.Permanent() {
		return dataFault{}, false // hostile kinds answer in hostileLocked
	}
	p.Served++
	return p.Kind.fault(), true
}

// poisonPathID is the id a poison of the request's path object is keyed
// by: the path's id, except for a data source query, whose poison is its
// database's PoisonQuery (the same rows, read with Notion-Version
// 2025-09-03).
func poisonPathID(kind EndpointKind, req *dataRequest) (string, bool) {
	id, ok := normalizeID(req.r.PathValue("id"))
	if !ok || kind != EndpointQueryDataSource {
		return id, ok
	}
	db, _ := req.ws.dataSourceByID(id)
	if db == nil {
		return "", false
	}
	return db.id, true
}

// invalidCursor is Notion's answer to a start_cursor it refuses.
func invalidCursor(cursor string) *apiError {
	e := validationError("The start_cursor provided is invalid: %s", cursor)
	e.invalidCursor = true
	return e
}

// InvalidCursorNext makes the next n data requests that carry a start_cursor
// (GET ?start_cursor=, or start_cursor in a search or query body) answer
// 400 validation_error "The start_cursor provided is invalid: <cursor>", as
// Notion does for a cursor that expired or that it does not know. Requests
// answered by the rate limit, a poison or a queued fault do not take one;
// requests without a cursor never do. The fake refuses unknown and
// malformed cursors by itself too; this makes it refuse valid ones.
func (s *Server) InvalidCursorNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dataLocked()
	st.invalidCursorNext += max(n, 0)
}

// PendingInvalidCursors returns how many InvalidCursorNext answers are not
// yet served.
func (s *Server) PendingInvalidCursors() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dataLocked().invalidCursorNext
}

// requestCursor returns the start_cursor a data request carries, or "".
func (req *dataRequest) requestCursor() string {
	if c := req.r.URL.Query().Get("start_cursor"); c != "" {
		return c
	}
	if req.r.Method != http.MethodPost || len(req.body) == 0 {
		return ""
	}
	var b struct {
		StartCursor any `json:"start_cursor"`
	}
	if json.Unmarshal(req.body, &b) != nil {
		return ""
	}
	if c, ok := b.StartCursor.(string); ok {
		return c
	}
	return ""
}
