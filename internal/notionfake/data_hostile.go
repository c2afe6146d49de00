package notionfake

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

// This file holds the hostile poison kinds: answers that are valid HTTP and
// (mostly) valid JSON but that a client must not trust: block trees with
// cycles, listings whose has_more never ends, huge bodies, fields of the
// wrong JSON type, and search results or database rows whose id is not a
// Notion id. They are poisons like the others (Poison, PoisonPages, the
// sandbox's /_sandbox/poison): they stay until lifted, and Served counts
// their answers.

// Hostile poison kinds, for PoisonChildren unless said otherwise.
const (
	// PoisonCycleSelf adds to every answer of the listing a block with
	// has_children whose id is the listed page or block itself.
	PoisonCycleSelf PoisonKind = "cycle_self"
	// PoisonCycleAncestor adds a block that points back up: for a poisoned
	// block, a child whose id is its page; for a poisoned page, a child
	// block whose own children list the page.
	PoisonCycleAncestor PoisonKind = "cycle_ancestor"
	// PoisonEndlessSame answers every request of the listing with the same
	// block, has_more true and the same next_cursor.
	PoisonEndlessSame PoisonKind = "endless_same"
	// PoisonEndlessNew answers every request with 100 new blocks, has_more
	// true and a new next_cursor: a listing that never ends.
	PoisonEndlessNew PoisonKind = "endless_new"
	// PoisonHuge is PoisonEndlessNew with HostileHugeBlockBytes of text in
	// each block (a few MB per answer).
	PoisonHuge PoisonKind = "huge"
	// PoisonWrongTypes answers a list whose fields have the wrong JSON
	// types (results an object, has_more a string, next_cursor a number).
	PoisonWrongTypes PoisonKind = "wrong_types"
	// PoisonBadID, for PoisonSearch and PoisonQuery, adds to the first
	// answer of the listing a result whose id is not a Notion id and one
	// whose id is a number.
	PoisonBadID PoisonKind = "bad_id"
)

// Hostile poison targets.
const (
	// PoisonSearch poisons POST /v1/search of a workspace (Poison's id is
	// ignored: give "").
	PoisonSearch PoisonTarget = "search"
	// PoisonQuery poisons POST /v1/databases/{id}/query of a database,
	// and POST /v1/data_sources/{id}/query of each of its data sources.
	PoisonQuery PoisonTarget = "query"
)

// HostileHugeBlockBytes is the text in each block of a PoisonHuge answer.
const HostileHugeBlockBytes = 40_000

// HostileBadID is the id of PoisonBadID's first extra result.
const HostileBadID = "../../not-a-notion-id"

// hostileKinds are the kinds each target takes besides the plain poisons.
var hostileKinds = map[PoisonTarget][]PoisonKind{
	PoisonChildren: {PoisonCycleSelf, PoisonCycleAncestor, PoisonEndlessSame, PoisonEndlessNew, PoisonHuge, PoisonWrongTypes},
	PoisonSearch:   {PoisonBadID},
	PoisonQuery:    {PoisonBadID},
}

// Hostile reports whether kind is one of the hostile kinds (which answer
// 200 with a body built by the fake, not a fault).
func (k PoisonKind) Hostile() bool {
	for _, ks := range hostileKinds {
		for _, h := range ks {
			if h == k {
				return true
			}
		}
	}
	return false
}

// syntheticID is a stable Notion-shaped id for a block the fake makes up.
func syntheticID(parts ...any) string {
	sum := sha256.Sum256([]byte(fmt.Sprint(parts...)))
	id, _ := normalizeID(fmt.Sprintf("%x", sum[:16]))
	return id
}

// ancestorBlockID is the block a page poisoned with PoisonCycleAncestor
// lists, whose own children list the page again.
func ancestorBlockID(ws, page string) string { return syntheticID("ancestor", ws, page) }

// hostileLocked answers a request of a hostile poison, or calls h. The
// caller holds s.mu.
func (s *Server) hostileLocked(kind EndpointKind, req *dataRequest, h dataFunc) (any, *apiError) {
	st := s.dataLocked()
	if len(st.poison) == 0 {
		return h(s, req)
	}
	d := req.ws
	switch kind {
	case EndpointBlockChildren:
		id, ok := normalizeID(req.r.PathValue("id"))
		if !ok {
			return h(s, req)
		}
		if page, ok := st.hostileAncestors[poisonKey{d.id, id, PoisonChildren}]; ok {
			if _, live := st.poison[poisonKey{d.id, page, PoisonChildren}]; live {
				back := d.blockJSON(page, "toggle", toggleText("back to the page"), Parent{Type: ParentBlock, ID: id}, true, false, req.now, req.now)
				return newList("block", req.id, []any{back}, ""), nil
			}
		}
		p, ok := st.poison[poisonKey{d.id, id, PoisonChildren}]
		if !ok || !p.Kind.Hostile() {
			return h(s, req)
		}
		p.Served++
		st.stats.PoisonedAnswers++
		parent := Parent{Type: ParentBlock, ID: id}
		switch p.Kind {
		case PoisonCycleSelf, PoisonCycleAncestor:
			res, aerr := h(s, req)
			if aerr != nil {
				return nil, aerr
			}
			l, ok := res.(listJSON)
			if !ok {
				return res, nil
			}
			extra := id // a block listing itself
			if p.Kind == PoisonCycleAncestor {
				if p.PageID != id {
					extra = p.PageID
				} else {
					extra = ancestorBlockID(d.id, id)
					st.hostileAncestors[poisonKey{d.id, extra, PoisonChildren}] = id
				}
			}
			l.Results = append(l.Results, d.blockJSON(extra, "toggle", toggleText("cycle"), parent, true, false, req.now, req.now))
			return l, nil
		case PoisonEndlessSame:
			b := d.blockJSON(syntheticID("same", d.id, id), "paragraph", toggleText("again"), parent, false, false, req.now, req.now)
			return newList("block", req.id, []any{b}, syntheticID("cursor", d.id, id)), nil
		case PoisonEndlessNew, PoisonHuge:
			text := "more"
			if p.Kind == PoisonHuge {
				text = strings.Repeat("x", HostileHugeBlockBytes)
			}
			results := make([]any, 100)
			for i := range results {
				results[i] = d.blockJSON(syntheticID("new", d.id, id, p.Served, i), "paragraph", toggleText(text), parent, false, false, req.now, req.now)
			}
			return newList("block", req.id, results, syntheticID("cursor", d.id, id, p.Served)), nil
		case PoisonWrongTypes:
			return map[string]any{"object": "list", "results": map[string]any{"id": 42}, "has_more": "yes", "next_cursor": 7, "request_id": req.id}, nil
		}
	case EndpointSearch, EndpointQueryDatabase, EndpointQueryDataSource:
		key := poisonKey{d.id, "", PoisonSearch}
		if kind != EndpointSearch {
			id, _ := poisonPathID(kind, req)
			key = poisonKey{d.id, id, PoisonQuery}
		}
		p, ok := st.poison[key]
		if !ok || p.Kind != PoisonBadID {
			return h(s, req)
		}
		res, aerr := h(s, req)
		if aerr != nil || req.requestCursor() != "" {
			return res, aerr
		}
		l, ok := res.(listJSON)
		if !ok {
			return res, nil
		}
		p.Served++
		st.stats.PoisonedAnswers++
		edited := minute(req.now).Format("2006-01-02T15:04:05.000Z")
		bad := func(id any) map[string]any {
			return map[string]any{"object": "page", "id": id, "created_time": edited, "last_edited_time": edited,
				"archived": false, "in_trash": false, "parent": map[string]any{"type": "workspace", "workspace": true}, "properties": map[string]any{}}
		}
		l.Results = append([]any{bad(HostileBadID), bad(12345)}, l.Results...)
		return l, nil
	}
	return h(s, req)
}

func toggleText(s string) map[string]any {
	return map[string]any{"rich_text": []any{map[string]any{"type": "text", "text": map[string]any{"content": s}, "plain_text": s}}, "color": "default"}
}

// PoisonSearchResults makes the search of workspace ws answer kind (only
// PoisonBadID) until lifted (Unpoison(ws, "", PoisonSearch) or
// ClearPoison).
func (s *Server) PoisonSearchResults(ws string, kind PoisonKind) (Poisoned, error) {
	if kind != PoisonBadID {
		return Poisoned{}, fmt.Errorf("%w: kind %q for target %q (want %q)", ErrInvalidPoison, kind, PoisonSearch, PoisonBadID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookupWSLocked(ws)
	if err != nil {
		return Poisoned{}, err
	}
	return s.poisonLocked(Poisoned{WorkspaceID: d.id, Target: PoisonSearch, Kind: kind}), nil
}
