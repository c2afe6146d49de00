package notionfake

import (
	"strings"
	"time"
	"unicode"
)

// This file renders the fake's content as Notion's JSON objects (API version
// 2022-06-28). Everything here runs with s.mu held.

// notionTime formats t the way Notion does: UTC, milliseconds, minute
// precision ("2024-05-06T07:08:00.000Z").
func notionTime(t time.Time) string {
	return minute(t).Format("2006-01-02T15:04:05.000Z07:00")
}

type userRef struct {
	Object string `json:"object"`
	ID     string `json:"id"`
}

func parentJSON(p Parent) map[string]any {
	switch p.Type {
	case ParentPage, ParentDatabase, ParentBlock:
		return map[string]any{"type": string(p.Type), string(p.Type): p.ID}
	}
	return map[string]any{"type": "workspace", "workspace": true}
}

// notionURL is the page or database URL Notion shows: slug of the title, then
// the id without dashes.
func notionURL(title, id string) string {
	var b strings.Builder
	b.WriteString("https://www.notion.so/")
	dash := false
	for _, r := range title {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if dash && b.Len() > len("https://www.notion.so/") {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		} else {
			dash = true
		}
	}
	if b.Len() > len("https://www.notion.so/") {
		b.WriteByte('-')
	}
	b.WriteString(strings.ReplaceAll(id, "-", ""))
	return b.String()
}

// pageJSON is Notion's page object.
type pageJSON struct {
	Object         string         `json:"object"`
	ID             string         `json:"id"`
	CreatedTime    string         `json:"created_time"`
	LastEditedTime string         `json:"last_edited_time"`
	CreatedBy      userRef        `json:"created_by"`
	LastEditedBy   userRef        `json:"last_edited_by"`
	Cover          any            `json:"cover"`
	Icon           any            `json:"icon"`
	Parent         map[string]any `json:"parent"`
	Archived       bool           `json:"archived"`
	InTrash        bool           `json:"in_trash"`
	Properties     map[string]any `json:"properties"`
	URL            string         `json:"url"`
	PublicURL      *string        `json:"public_url"`
	// IsArchived and IsLocked are in the page object from 2025-09-03 on
	// (@notionhq/client 5.x lists both as required; 4.x, for 2022-06-28,
	// has neither). The fake has no archive apart from trash and no locked
	// pages: both are false.
	IsArchived *bool `json:"is_archived,omitempty"`
	IsLocked   *bool `json:"is_locked,omitempty"`
}

// renderOpts says how a request's pages are rendered.
type renderOpts struct {
	// dataSources selects the data-source API's parent of rows
	// (data_sources.go).
	dataSources bool
	// truncate cuts reference lists (Imperfections.TruncateReferences).
	truncate bool
}

func (d *wsData) renderPage(p *Page, ro renderOpts) pageJSON {
	var no *bool
	if ro.dataSources {
		no = new(false)
	}
	return pageJSON{
		IsArchived:     no,
		IsLocked:       no,
		Object:         "page",
		ID:             p.ID,
		CreatedTime:    notionTime(p.CreatedTime),
		LastEditedTime: notionTime(p.LastEditedTime),
		CreatedBy:      d.userRefFor(p.CreatedBy),
		LastEditedBy:   d.userRefFor(p.LastEditedBy),
		Icon:           p.Icon,
		Cover:          p.Cover,
		Parent:         d.pageParentJSON(p, ro.dataSources),
		Archived:       p.Archived,
		InTrash:        p.Archived,
		Properties:     d.renderProperties(p, ro.truncate),
		URL:            notionURL(p.Title, p.ID),
	}
}

// renderProperties renders a page's property values: "title" alone for a
// page, every schema property for a row. truncate cuts reference lists at
// ReferenceLimit items (Imperfections.TruncateReferences).
func (d *wsData) renderProperties(p *Page, truncate bool) map[string]any {
	schema := d.pageSchema(p)
	out := make(map[string]any, len(schema))
	for _, ps := range schema {
		v := d.propertyValue(p, ps)
		prop := map[string]any{"id": ps.id, "type": ps.typ}
		if ps.typ == "relation" {
			prop["has_more"] = false
		}
		if items, ok := v.([]any); ok && truncate && truncatable(ps.typ) && len(items) > ReferenceLimit {
			v = items[:ReferenceLimit]
			prop["has_more"] = true
		}
		if ps.typ == "rollup" && truncate && len(d.rollupRelation(p, ps)) > ReferenceLimit {
			v = rollupCount(ReferenceLimit) // computed over the references the page carries
		}
		prop[ps.typ] = v
		out[ps.name] = prop
	}
	return out
}

// rowDatabase returns the database p is a row of, or nil.
func (d *wsData) rowDatabase(p *Page) *database {
	if p.Parent.Type != ParentDatabase {
		return nil
	}
	return d.dbs[p.Parent.ID]
}

func emptyPropertyValue(typ string) any {
	switch typ {
	case "title", "rich_text", "multi_select", "people", "relation", "files":
		return []any{}
	case "checkbox":
		return false
	}
	return nil
}

// databaseJSON is Notion's database object (2022-06-28).
type databaseJSON struct {
	Object         string         `json:"object"`
	ID             string         `json:"id"`
	Cover          any            `json:"cover"`
	Icon           any            `json:"icon"`
	CreatedTime    string         `json:"created_time"`
	CreatedBy      userRef        `json:"created_by"`
	LastEditedBy   userRef        `json:"last_edited_by"`
	LastEditedTime string         `json:"last_edited_time"`
	Title          []any          `json:"title"`
	Description    []any          `json:"description"`
	IsInline       bool           `json:"is_inline"`
	Properties     map[string]any `json:"properties"`
	Parent         map[string]any `json:"parent"`
	URL            string         `json:"url"`
	PublicURL      *string        `json:"public_url"`
	Archived       bool           `json:"archived"`
	InTrash        bool           `json:"in_trash"`
}

func (d *wsData) renderDatabase(db *database) databaseJSON {
	user := userRef{Object: "user", ID: d.owner}
	props := make(map[string]any, len(db.schema))
	for _, ps := range db.schema {
		props[ps.name] = map[string]any{"id": ps.id, "name": ps.name, "description": nil, "type": ps.typ, ps.typ: schemaConfig(ps)}
	}
	return databaseJSON{
		Object:         "database",
		ID:             db.id,
		CreatedTime:    notionTime(db.createdTime),
		CreatedBy:      user,
		LastEditedBy:   user,
		LastEditedTime: notionTime(db.lastEditedTime),
		Title:          RichText(db.title),
		Description:    []any{},
		IsInline:       db.parent.Type != ParentWorkspace,
		Properties:     props,
		Parent:         parentJSON(db.parent),
		URL:            notionURL(db.title, db.id),
		Archived:       db.archived,
		InTrash:        db.archived,
		Icon:           db.icon,
		Cover:          db.cover,
	}
}

// schemaConfig is a property's configuration as a database or data source
// schema shows it: the options of a select, multi_select or status carry a
// description there (null unless set), not in page property values, which
// share the option maps.
func schemaConfig(ps propertySchema) map[string]any {
	opts, ok := ps.config["options"].([]any)
	if !ok {
		return ps.config
	}
	cfg := make(map[string]any, len(ps.config))
	for k, v := range ps.config {
		cfg[k] = v
	}
	out := make([]any, len(opts))
	for i, o := range opts {
		m, ok := o.(map[string]any)
		if !ok {
			out[i] = o
			continue
		}
		c := make(map[string]any, len(m)+1)
		for k, v := range m {
			c[k] = v
		}
		if _, ok := c["description"]; !ok {
			c["description"] = nil
		}
		out[i] = c
	}
	cfg["options"] = out
	return cfg
}

// renderBlock renders a block whose parent is parent. child_page and
// child_database blocks are rendered from the object they show.
func (d *wsData) renderBlock(b *Block, parent Parent, ro renderOpts) map[string]any {
	if p, ok := d.pages[b.ID]; ok && b.Type == "child_page" {
		return d.renderPageAsBlock(p)
	}
	if db, ok := d.dbs[b.ID]; ok && b.Type == "child_database" {
		return d.renderDatabaseAsBlock(db)
	}
	payload := make(map[string]any, len(b.Payload))
	for k, v := range b.Payload {
		if k != "children" {
			payload[k] = v
		}
	}
	if _, ok := payload["icon"]; !ok && ro.dataSources && b.Type == "paragraph" {
		// @notionhq/client 5.x gives a paragraph an icon (null when it has
		// none); 4.x, for 2022-06-28, does not know the field.
		payload["icon"] = nil
	}
	return d.blockJSON(b.ID, b.Type, payload, parent, len(b.Children) > 0, false, b.CreatedTime, b.LastEditedTime)
}

// renderPageAsBlock renders a page as the child_page block Notion returns for
// its id.
func (d *wsData) renderPageAsBlock(p *Page) map[string]any {
	return d.blockJSON(p.ID, "child_page", map[string]any{"title": p.Title}, p.Parent,
		len(d.visibleBlocks(p.Blocks)) > 0, p.Archived, p.CreatedTime, p.LastEditedTime)
}

func (d *wsData) renderDatabaseAsBlock(db *database) map[string]any {
	return d.blockJSON(db.id, "child_database", map[string]any{"title": db.title}, db.parent,
		false, db.archived, db.createdTime, db.lastEditedTime)
}

func (d *wsData) blockJSON(id, typ string, payload map[string]any, parent Parent, hasChildren, archived bool,
	created, edited time.Time) map[string]any {
	user := userRef{Object: "user", ID: d.owner}
	return map[string]any{
		"object":           "block",
		"id":               id,
		"parent":           parentJSON(parent),
		"created_time":     notionTime(created),
		"last_edited_time": notionTime(edited),
		"created_by":       user,
		"last_edited_by":   user,
		"has_children":     hasChildren,
		"archived":         archived,
		"in_trash":         archived,
		"type":             typ,
		typ:                payload,
	}
}

// visibleBlocks drops child_page / child_database blocks whose object is
// archived: Notion removes them from the parent's content with the object.
func (d *wsData) visibleBlocks(bs []*Block) []*Block {
	out := bs[:0:0]
	for _, b := range bs {
		switch b.Type {
		case "child_page":
			if p, ok := d.pages[b.ID]; ok && p.Archived {
				continue
			}
		case "child_database":
			if db, ok := d.dbs[b.ID]; ok && db.archived {
				continue
			}
		}
		out = append(out, b)
	}
	return out
}

// listJSON is Notion's paginated list.
type listJSON struct {
	Object         string    `json:"object"`
	Results        []any     `json:"results"`
	NextCursor     *string   `json:"next_cursor"`
	HasMore        bool      `json:"has_more"`
	Type           string    `json:"type"`
	Block          *struct{} `json:"block,omitempty"`
	PageOrDatabase *struct{} `json:"page_or_database,omitempty"`
	// PageOrDataSource is the type key of search and data source query
	// lists under the data-source API.
	PageOrDataSource *struct{} `json:"page_or_data_source,omitempty"`
	RequestID        string    `json:"request_id"`
	// RequestStatus is set on queries under Imperfections.ResultLimit.
	RequestStatus *requestStatus `json:"request_status,omitempty"`
}

func newList(typ, requestID string, results []any, next string) listJSON {
	l := listJSON{Object: "list", Results: results, Type: typ, RequestID: requestID}
	if results == nil {
		l.Results = []any{}
	}
	if next != "" {
		l.NextCursor = &next
		l.HasMore = true
	}
	switch typ {
	case "block":
		l.Block = &struct{}{}
	case "page_or_data_source":
		l.PageOrDataSource = &struct{}{}
	default:
		l.PageOrDatabase = &struct{}{}
	}
	return l
}
