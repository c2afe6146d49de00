package record

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// parent is Notion's parent object.
type parent struct {
	Type         string `json:"type"`
	PageID       string `json:"page_id"`
	DatabaseID   string `json:"database_id"`
	DataSourceID string `json:"data_source_id"`
	BlockID      string `json:"block_id"`
}

func (p parent) id() string {
	switch p.Type {
	case "page_id":
		return p.PageID
	case "database_id":
		return p.DatabaseID
	case "data_source_id":
		return p.DataSourceID
	case "block_id":
		return p.BlockID
	}
	return ""
}

type plainText struct {
	PlainText string `json:"plain_text"`
}

func joinPlain(rt []plainText) string {
	var b strings.Builder
	for _, t := range rt {
		b.WriteString(t.PlainText)
	}
	return b.String()
}

// PageFromObject builds a Page from a page object as Notion returned it,
// extracting id, parent, database, last_edited_time, archived/in_trash and the
// title. blocks is the page's block tree (see BlockFromRaw). A zero syncedAt
// means "now" by the sink's clock.
func PageFromObject(connectionID string, object json.RawMessage, blocks []Block, syncedAt time.Time) (*Page, error) {
	var o struct {
		Object         string                     `json:"object"`
		ID             string                     `json:"id"`
		LastEditedTime time.Time                  `json:"last_edited_time"`
		Archived       bool                       `json:"archived"`
		InTrash        bool                       `json:"in_trash"`
		Parent         parent                     `json:"parent"`
		Properties     map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(object, &o); err != nil {
		return nil, fmt.Errorf("%w: page object: %v", ErrInvalidObject, err)
	}
	if o.Object != "" && o.Object != "page" {
		return nil, fmt.Errorf("%w: object is a %q, not a page", ErrInvalidObject, truncate(o.Object))
	}
	p := &Page{
		ConnectionID:   connectionID,
		ID:             o.ID,
		ParentType:     o.Parent.Type,
		ParentID:       o.Parent.id(),
		LastEditedTime: o.LastEditedTime,
		Archived:       o.Archived || o.InTrash,
		Object:         object,
		Blocks:         blocks,
		SyncedAt:       syncedAt,
	}
	if o.Parent.Type == "database_id" || o.Parent.Type == "data_source_id" {
		p.DatabaseID = o.Parent.DatabaseID
	}
	if o.Parent.Type == "data_source_id" {
		p.DataSourceID = o.Parent.DataSourceID
	}
	for _, raw := range o.Properties {
		var prop struct {
			Type  string      `json:"type"`
			Title []plainText `json:"title"`
		}
		if err := json.Unmarshal(raw, &prop); err != nil {
			return nil, fmt.Errorf("%w: page property: %v", ErrInvalidObject, err)
		}
		if prop.Type == "title" {
			p.Title = joinPlain(prop.Title)
			break
		}
	}
	return p, nil
}

// DatabaseFromObject builds a Database from a database object as Notion
// returned it.
func DatabaseFromObject(connectionID string, object json.RawMessage, syncedAt time.Time) (*Database, error) {
	var o struct {
		Object         string      `json:"object"`
		ID             string      `json:"id"`
		LastEditedTime time.Time   `json:"last_edited_time"`
		Archived       bool        `json:"archived"`
		InTrash        bool        `json:"in_trash"`
		Parent         parent      `json:"parent"`
		Title          []plainText `json:"title"`
	}
	if err := json.Unmarshal(object, &o); err != nil {
		return nil, fmt.Errorf("%w: database object: %v", ErrInvalidObject, err)
	}
	if o.Object != "" && o.Object != "database" {
		return nil, fmt.Errorf("%w: object is a %q, not a database", ErrInvalidObject, truncate(o.Object))
	}
	return &Database{
		ConnectionID:   connectionID,
		ID:             o.ID,
		ParentType:     o.Parent.Type,
		ParentID:       o.Parent.id(),
		Title:          joinPlain(o.Title),
		LastEditedTime: o.LastEditedTime,
		Archived:       o.Archived || o.InTrash,
		Object:         object,
		SyncedAt:       syncedAt,
	}, nil
}

// DataSourceFromObject builds a DataSource from a data source object as
// Notion returned it (GET /v1/data_sources/{id}, Notion-Version 2025-09-03
// and later): its parent is {"type":"database_id","database_id":...}.
func DataSourceFromObject(connectionID string, object json.RawMessage, syncedAt time.Time) (*DataSource, error) {
	var o struct {
		Object         string      `json:"object"`
		ID             string      `json:"id"`
		LastEditedTime time.Time   `json:"last_edited_time"`
		Archived       bool        `json:"archived"`
		InTrash        bool        `json:"in_trash"`
		Parent         parent      `json:"parent"`
		Title          []plainText `json:"title"`
	}
	if err := json.Unmarshal(object, &o); err != nil {
		return nil, fmt.Errorf("%w: data source object: %v", ErrInvalidObject, err)
	}
	if o.Object != "" && o.Object != "data_source" {
		return nil, fmt.Errorf("%w: object is a %q, not a data source", ErrInvalidObject, truncate(o.Object))
	}
	return &DataSource{
		ConnectionID:   connectionID,
		ID:             o.ID,
		DatabaseID:     o.Parent.DatabaseID,
		Title:          joinPlain(o.Title),
		LastEditedTime: o.LastEditedTime,
		Archived:       o.Archived || o.InTrash,
		Object:         object,
		SyncedAt:       syncedAt,
	}, nil
}

// BlockFromRaw builds a Block (without children) from a block object as
// Notion returned it. The caller attaches Children after fetching them.
func BlockFromRaw(raw json.RawMessage) (Block, error) {
	if !IsJSONObject(raw) {
		return Block{}, fmt.Errorf("%w: block is not a JSON object", ErrInvalidObject)
	}
	h, err := blockHeader(raw)
	if err != nil {
		return Block{}, err
	}
	return Block{ID: h.ID, Type: h.Type, HasChildren: h.HasChildren, Raw: raw}, nil
}
