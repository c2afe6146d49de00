package notionfake

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// This file exposes the fake's ground truth: what a perfect mirror of a
// workspace would hold, read from the fake's state rather than through the
// (imperfect) API, so that a checker (internal/fidelity) can compare a sink
// with it.

// Truth kinds.
const (
	TruthPage       = "page"
	TruthDatabase   = "database"
	TruthDataSource = "data_source"
)

// TruthObject is one object of a workspace as Notion holds it.
type TruthObject struct {
	// Kind is TruthPage (database rows included), TruthDatabase or
	// TruthDataSource.
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// DatabaseID is the database of a row or of a data source.
	DatabaseID string `json:"database_id,omitempty"`
	// DataSourceID is the data source of a row.
	DataSourceID string `json:"data_source_id,omitempty"`
	// LastEditedTime is the object's last_edited_time as the API shows it
	// (rounded down to the minute). A data source shows its database's.
	LastEditedTime time.Time `json:"last_edited_time"`
	// InTrash: archived or in the trash, as the object's GET shows it (the
	// fake, like AllPageIDs, does not trash a page's subtree with it).
	InTrash bool `json:"in_trash"`
	// Unshared: the integration cannot see the object, because it or an
	// ancestor is not shared with it (GET answers 404).
	Unshared bool `json:"unshared"`
	// Properties are a page's property values in full (never cut at
	// ReferenceLimit; rollups over the whole relation), keyed by name, each
	// as a page object nests it: {id, type, <type>: value}.
	Properties map[string]any `json:"properties,omitempty"`
	// OmittedFromSearch: search never returns the page under the
	// Imperfections in force (SearchOmitShare); only a walk or a query
	// finds it.
	OmittedFromSearch bool `json:"omitted_from_search,omitempty"`
	// Unfindable: no API path leads to the page. Search omits it, and its
	// parent cannot lead a walk to it either: it sits at the workspace's
	// top level, or under a page that is itself unfindable. A poller
	// cannot mirror it (only a webhook naming it could), so a checker
	// counts it apart from the objects a mirror misses.
	Unfindable bool `json:"unfindable,omitempty"`
	// Poisoned names the poison kinds (PoisonKind) that break the object's
	// sync (Poison: on the object, its children or a block of it), if any.
	Poisoned []PoisonKind `json:"poisoned,omitempty"`
	// Blocks is how many blocks a full walk of a page's children finds
	// (PageBlockCount).
	Blocks int `json:"blocks,omitempty"`
}

// Live reports whether a complete mirror holds the object live: visible to
// the integration and not in the trash.
func (o TruthObject) Live() bool { return !o.InTrash && !o.Unshared }

// GroundTruth is every object of one workspace, visible to the integration
// or not, each with its state.
type GroundTruth struct {
	WorkspaceID string        `json:"workspace_id"`
	Objects     []TruthObject `json:"objects"`
}

// GroundTruth returns workspace ws's ground truth: every page, row,
// database and data source, in creation order (a database's data sources
// after it). An unknown workspace is an error wrapping ErrObjectNotFound.
func (s *Server) GroundTruth(ws string) (GroundTruth, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.dataLocked().ws[ws]
	if !ok {
		return GroundTruth{}, fmt.Errorf("%w: workspace %q", ErrObjectNotFound, ws)
	}
	type entry struct {
		seq int64
		obj []TruthObject
	}
	var all []entry
	share := s.dataLocked().imperfect.SearchOmitShare
	poisons := map[string][]PoisonKind{}
	for k, p := range s.dataLocked().poison {
		if k.ws == ws {
			poisons[p.PageID] = append(poisons[p.PageID], p.Kind)
		}
	}
	for _, p := range d.pages {
		o := TruthObject{Kind: TruthPage, ID: p.ID, LastEditedTime: minute(p.LastEditedTime),
			InTrash: p.Archived, Unshared: !d.pageReadable(p),
			Properties: d.renderProperties(p, false), OmittedFromSearch: omittedFromSearch(p.ID, share),
			Unfindable: d.unfindable(p, share)}
		o.Poisoned = poisons[p.ID]
		if db, src := d.rowSource(p); db != nil {
			o.DatabaseID, o.DataSourceID = db.id, src.id
		}
		if o.Live() {
			o.Blocks = countVisible(d, p.Blocks)
		}
		all = append(all, entry{p.seq, []TruthObject{o}})
	}
	for _, db := range d.dbs {
		o := TruthObject{Kind: TruthDatabase, ID: db.id, LastEditedTime: minute(db.lastEditedTime),
			InTrash: db.archived, Unshared: !d.dbReadable(db)}
		o.Poisoned = poisons[db.id]
		objs := []TruthObject{o}
		for _, src := range db.sources {
			ds := o
			ds.Kind, ds.ID, ds.DatabaseID = TruthDataSource, src.id, db.id
			objs = append(objs, ds)
		}
		all = append(all, entry{db.seq, objs})
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	out := GroundTruth{WorkspaceID: ws}
	for _, e := range all {
		out.Objects = append(out.Objects, e.obj...)
	}
	return out, nil
}

// unfindable reports whether no API path leads to page p under the search
// omission share (see TruthObject.Unfindable). A row is found by its
// database's query, a page under a block by the walk of the block's page;
// both count as findable, as does a page under a page search returns or
// a walk reaches.
func (d *wsData) unfindable(p *Page, share float64) bool {
	for range 1000 { // a parent chain longer than this is a cycle
		if !omittedFromSearch(p.ID, share) {
			return false
		}
		switch p.Parent.Type {
		case ParentWorkspace:
			return true
		case ParentPage:
			parent, ok := d.pages[p.Parent.ID]
			if !ok {
				return true
			}
			p = parent
		default:
			return false
		}
	}
	return true
}
