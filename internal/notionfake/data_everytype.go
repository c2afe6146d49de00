package notionfake

import (
	"fmt"
	"time"
)

// This file seeds SeedSpec.EveryType: one page holding every block type and
// one database row holding every property value type that the official SDK
// types list (@notionhq/client 5.26.0, build/src/api-endpoints/blocks.d.ts
// BlockObjectResponse: 37 types; common.d.ts PageObjectResponse properties,
// SimpleOrArrayPropertyValueResponse | PartialRollupPropertyResponse: 24
// types), one of each, nested where Notion nests them, in the SDK's
// shapes. Ids are derived from the workspace id; nothing is drawn from the
// random stream.

// EveryBlockType lists the block types SeedSpec.EveryType seeds, in the
// SDK's order.
var EveryBlockType = []string{
	"paragraph", "heading_1", "heading_2", "heading_3", "heading_4", "bulleted_list_item",
	"numbered_list_item", "quote", "to_do", "toggle", "template", "synced_block", "child_page",
	"child_database", "equation", "code", "callout", "divider", "breadcrumb", "table_of_contents",
	"tab", "column_list", "column", "link_to_page", "table", "table_row", "meeting_notes",
	"transcription", "embed", "bookmark", "image", "video", "pdf", "file", "audio",
	"link_preview", "unsupported",
}

// EveryPropertyType lists the property value types SeedSpec.EveryType's row
// holds, in the SDK's order (simple, array-based, rollup).
var EveryPropertyType = []string{
	"number", "url", "select", "multi_select", "status", "date", "email", "phone_number",
	"checkbox", "files", "created_by", "created_time", "last_edited_by", "last_edited_time",
	"formula", "button", "unique_id", "verification", "place",
	"title", "rich_text", "people", "relation", "rollup",
}

// EveryTypeResult is what SeedSpec.EveryType created.
type EveryTypeResult struct {
	// PageID is the page holding every block type; ChildPageID the page its
	// child_page and link_to_page blocks show.
	PageID, ChildPageID string
	// DatabaseID is the database (its child_database block is in PageID)
	// whose row RowID holds every property value type; TargetRowID is the
	// row the relation and rollup point at.
	DatabaseID, RowID, TargetRowID string
	// Text lists, per block type that has text, a phrase of that block's
	// text (what its Markdown must keep); per property type, a phrase of
	// its value ("property:<type>" keys).
	Text map[string]string
}

func annotated(text string, ann map[string]any) map[string]any {
	rt := RichText(text)[0].(map[string]any)
	a := rt["annotations"].(map[string]any)
	for k, v := range ann {
		a[k] = v
	}
	return rt
}

// everyType seeds SeedSpec.EveryType's content; the caller indexes the
// pages it adds to g.res.PageIDs and g.res.RowIDs.
func (g *seedGen) everyType() {
	ws := g.d.id
	id := func(name string) string { return derivedUUID(ws + "/every-type/" + name) }
	t := g.now
	res := &EveryTypeResult{Text: map[string]string{}}
	g.res.EveryType = res

	page := &Page{ID: id("page"), Parent: WorkspaceParent(), Title: "Every block type",
		Properties: map[string]any{}, CreatedTime: t, LastEditedTime: t, seq: g.d.nextSeq()}
	child := &Page{ID: id("child-page"), Parent: PageParent(page.ID), Title: "Every type child page",
		Properties: map[string]any{}, CreatedTime: t, LastEditedTime: t, seq: g.d.nextSeq()}
	child.Blocks = []*Block{TextBlock("paragraph", "Inside the child page")}
	g.d.pages[page.ID] = page
	g.d.pages[child.ID] = child
	res.PageID, res.ChildPageID = page.ID, child.ID

	n := 0
	blk := func(typ string, payload map[string]any, children ...*Block) *Block {
		n++
		b := NewBlock(typ, payload, children...)
		b.ID = id(fmt.Sprintf("block/%d/%s", n, typ))
		b.CreatedTime, b.LastEditedTime = t, t
		return b
	}
	text := func(typ, s string, extra map[string]any, children ...*Block) *Block {
		p := map[string]any{"rich_text": RichText(s), "color": "default"}
		for k, v := range extra {
			p[k] = v
		}
		if _, ok := res.Text[typ]; !ok {
			res.Text[typ] = s
		}
		return blk(typ, p, children...)
	}
	caption := func(typ, s string) []any {
		res.Text[typ] = s
		return RichText(s)
	}
	fileURL := func(name string) map[string]any {
		return map[string]any{"url": "https://prod-files-secure.s3.us-west-2.amazonaws.com/fake/" + name +
			"?X-Amz-Expires=3600", "expiry_time": notionTime(t.Add(time.Hour))}
	}

	para := blk("paragraph", map[string]any{"color": "default", "rich_text": []any{
		RichText("Paragraph with ")[0],
		annotated("bold", map[string]any{"bold": true}),
		RichText(", ")[0],
		map[string]any{"type": "text", "text": map[string]any{"content": "a link", "link": map[string]any{"url": "https://example.com/"}},
			"annotations": RichText("x")[0].(map[string]any)["annotations"], "plain_text": "a link", "href": "https://example.com/"},
		RichText(" and ")[0],
		map[string]any{"type": "equation", "equation": map[string]any{"expression": "E = mc^2"},
			"annotations": RichText("x")[0].(map[string]any)["annotations"], "plain_text": "E = mc^2", "href": nil},
	}})
	res.Text["paragraph"] = "Paragraph with "
	original := text("paragraph", "Synced content", nil)
	syncedOrig := blk("synced_block", map[string]any{"synced_from": nil}, original)
	syncedCopy := text("paragraph", "Synced content", nil)
	syncedRef := blk("synced_block", map[string]any{"synced_from": map[string]any{"type": "block_id", "block_id": syncedOrig.ID}}, syncedCopy)
	res.Text["synced_block"] = "Synced content"
	transcript := func(typ string) *Block {
		title := "Weekly sync " + typ
		res.Text[typ] = title
		notes := text("paragraph", "Notes of "+typ, nil)
		return blk(typ, map[string]any{
			"title":          RichText(title),
			"status":         "notes_ready",
			"children":       map[string]any{"notes_block_id": notes.ID},
			"calendar_event": map[string]any{"start_time": notionTime(t), "end_time": notionTime(t.Add(30 * time.Minute)), "attendees": []any{g.d.owner}},
			"recording":      map[string]any{"start_time": notionTime(t), "end_time": notionTime(t.Add(25 * time.Minute))},
		}, notes)
	}
	table := blk("table", map[string]any{"table_width": 2, "has_column_header": true, "has_row_header": false},
		blk("table_row", map[string]any{"cells": []any{RichText("Column A"), RichText("Column B")}}),
		blk("table_row", map[string]any{"cells": []any{RichText("Cell A1"), RichText("Cell B1")}}))
	res.Text["table"], res.Text["table_row"] = "Column A", "Cell B1"

	page.Blocks = []*Block{
		para,
		text("heading_1", "Heading one", map[string]any{"is_toggleable": false}),
		text("heading_2", "Toggle heading two", map[string]any{"is_toggleable": true},
			text("paragraph", "Under the toggle heading", nil)),
		text("heading_3", "Heading three", map[string]any{"is_toggleable": false}),
		text("heading_4", "Heading four", map[string]any{"is_toggleable": false}),
		text("bulleted_list_item", "Bullet item", nil,
			text("numbered_list_item", "Nested numbered item", map[string]any{"list_start_index": 1, "list_format": "numbers"})),
		text("quote", "A quotation", nil),
		text("to_do", "A task done", map[string]any{"checked": true}),
		text("toggle", "A toggle", nil, text("paragraph", "Inside the toggle", nil)),
		blk("template", map[string]any{"rich_text": RichText("Add a task")}, text("to_do", "New task", map[string]any{"checked": false})),
		syncedOrig,
		syncedRef,
		{ID: child.ID, Type: "child_page"},
		{ID: id("database"), Type: "child_database"},
		blk("equation", map[string]any{"expression": "a^2 + b^2 = c^2"}),
		blk("code", map[string]any{"rich_text": RichText("fmt.Println(\"every type\")"), "language": "go", "caption": caption("code", "Code caption")}),
		text("callout", "A callout", map[string]any{"icon": map[string]any{"type": "emoji", "emoji": "💡"}}),
		blk("divider", map[string]any{}),
		blk("breadcrumb", map[string]any{}),
		blk("table_of_contents", map[string]any{"color": "default"}),
		blk("tab", map[string]any{},
			text("paragraph", "First tab", map[string]any{"icon": nil}, text("paragraph", "First tab content", nil)),
			text("paragraph", "Second tab", map[string]any{"icon": nil}, text("paragraph", "Second tab content", nil))),
		blk("column_list", map[string]any{},
			blk("column", map[string]any{"width_ratio": 0.5}, text("paragraph", "Left column", nil)),
			blk("column", map[string]any{"width_ratio": 0.5}, text("paragraph", "Right column", nil))),
		blk("link_to_page", map[string]any{"type": "page_id", "page_id": child.ID}),
		table,
		transcript("meeting_notes"),
		transcript("transcription"),
		blk("embed", map[string]any{"url": "https://example.com/embed", "caption": caption("embed", "Embed caption")}),
		blk("bookmark", map[string]any{"url": "https://example.com/bookmark", "caption": caption("bookmark", "Bookmark caption")}),
		blk("image", map[string]any{"type": "external", "external": map[string]any{"url": "https://example.com/image.png"},
			"caption": caption("image", "Image caption")}),
		blk("video", map[string]any{"type": "external", "external": map[string]any{"url": "https://example.com/video.mp4"},
			"caption": caption("video", "Video caption")}),
		blk("pdf", map[string]any{"type": "file", "file": fileURL("doc.pdf"), "caption": caption("pdf", "PDF caption")}),
		blk("file", map[string]any{"type": "file", "file": fileURL("notes.txt"), "caption": caption("file", "File caption"), "name": "notes.txt"}),
		blk("audio", map[string]any{"type": "external", "external": map[string]any{"url": "https://example.com/audio.mp3"},
			"caption": caption("audio", "Audio caption")}),
		blk("link_preview", map[string]any{"url": "https://github.com/makenotion/notion-sdk-js/pull/1"}),
		blk("unsupported", map[string]any{"block_type": "ai_block"}),
	}
	res.Text["column_list"], res.Text["column"], res.Text["tab"] = "Left column", "Right column", "Second tab content"
	res.Text["template"] = "Add a task"
	res.Text["link_preview"] = "https://github.com/makenotion/notion-sdk-js/pull/1"
	res.Text["equation"] = "a^2 + b^2 = c^2"

	g.everyTypeDatabase(page, id, res, t)
	g.res.PageIDs = append(g.res.PageIDs, page.ID, child.ID)
}

// everyTypeDatabase adds the database with a property of every type, a row
// holding a value of each, and the row its relation points at.
func (g *seedGen) everyTypeDatabase(page *Page, id func(string) string, res *EveryTypeResult, t time.Time) {
	dbID := id("database")
	option := func(name, color string) map[string]any {
		return map[string]any{"id": id("option/" + name)[:8], "name": name, "color": color}
	}
	user := map[string]any{"object": "user", "id": g.d.owner}
	schema := []propertySchema{
		{id: "title", name: "Name", typ: "title", config: map[string]any{}},
		{id: "num", name: "Number", typ: "number", config: map[string]any{"format": "number"}},
		{id: "url", name: "URL", typ: "url", config: map[string]any{}},
		{id: "sel", name: "Select", typ: "select", config: map[string]any{"options": []any{option("Alpha", "red")}}},
		{id: "mul", name: "Multi-select", typ: "multi_select", config: map[string]any{"options": []any{option("Beta", "blue"), option("Gamma", "green")}}},
		{id: "sta", name: "Status", typ: "status", config: map[string]any{"options": []any{option("In progress", "blue")}, "groups": []any{}}},
		{id: "dat", name: "Date", typ: "date", config: map[string]any{}},
		{id: "ema", name: "Email", typ: "email", config: map[string]any{}},
		{id: "pho", name: "Phone", typ: "phone_number", config: map[string]any{}},
		{id: "chk", name: "Checkbox", typ: "checkbox", config: map[string]any{}},
		{id: "fil", name: "Files", typ: "files", config: map[string]any{}},
		{id: "cby", name: "Created by", typ: "created_by", config: map[string]any{}},
		{id: "cti", name: "Created time", typ: "created_time", config: map[string]any{}},
		{id: "eby", name: "Last edited by", typ: "last_edited_by", config: map[string]any{}},
		{id: "eti", name: "Last edited time", typ: "last_edited_time", config: map[string]any{}},
		{id: "frm", name: "Formula", typ: "formula", config: map[string]any{"expression": `"formula " + prop("Name")`}},
		{id: "btn", name: "Button", typ: "button", config: map[string]any{}},
		{id: "uid", name: "ID", typ: "unique_id", config: map[string]any{"prefix": "TASK"}},
		{id: "ver", name: "Verification", typ: "verification", config: map[string]any{}},
		{id: "pla", name: "Place", typ: "place", config: map[string]any{}},
		{id: "txt", name: "Text", typ: "rich_text", config: map[string]any{}},
		{id: "ppl", name: "People", typ: "people", config: map[string]any{}},
		{id: "rel", name: "Relation", typ: "relation", config: map[string]any{"database_id": dbID, "type": "single_property", "single_property": map[string]any{}}},
		{id: "rol", name: "Rollup", typ: "rollup", config: map[string]any{"relation_property_name": "Relation", "relation_property_id": "rel",
			"rollup_property_name": "Name", "rollup_property_id": "title", "function": "count"}},
	}
	db := &database{id: dbID, parent: PageParent(page.ID), title: "Every property type", schema: schema,
		createdTime: t, lastEditedTime: t, seq: g.d.nextSeq()}
	db.addSource()
	g.d.dbs[dbID] = db
	g.res.DatabaseIDs = append(g.res.DatabaseIDs, dbID)

	target := &Page{ID: id("target-row"), Parent: DatabaseParent(dbID), Title: "Related row",
		Properties: map[string]any{}, CreatedTime: t, LastEditedTime: t, seq: g.d.nextSeq()}
	row := &Page{ID: id("row"), Parent: DatabaseParent(dbID), Title: "Every property value",
		CreatedTime: t, LastEditedTime: t, seq: g.d.nextSeq()}
	row.Properties = map[string]any{
		"Number":       42.5,
		"URL":          "https://example.com/url-value",
		"Select":       option("Alpha", "red"),
		"Multi-select": []any{option("Beta", "blue"), option("Gamma", "green")},
		"Status":       option("In progress", "blue"),
		"Date":         map[string]any{"start": "2026-01-02", "end": "2026-01-05", "time_zone": nil},
		"Email":        "someone@example.com",
		"Phone":        "+1 555 0100",
		"Checkbox":     true,
		"Files": []any{
			map[string]any{"name": "spec.pdf", "type": "file", "file": map[string]any{
				"url": "https://prod-files-secure.s3.us-west-2.amazonaws.com/fake/spec.pdf?X-Amz-Expires=3600", "expiry_time": notionTime(t.Add(time.Hour))}},
			map[string]any{"name": "site", "type": "external", "external": map[string]any{"url": "https://example.com/site"}},
		},
		"Created by":       user,
		"Created time":     notionTime(t),
		"Last edited by":   user,
		"Last edited time": notionTime(t),
		"Formula":          map[string]any{"type": "string", "string": "formula Every property value"},
		"Button":           map[string]any{},
		"ID":               map[string]any{"prefix": "TASK", "number": 7},
		"Verification":     map[string]any{"state": "verified", "date": map[string]any{"start": "2026-01-01", "end": nil, "time_zone": nil}, "verified_by": user},
		"Place":            map[string]any{"lat": 48.8584, "lon": 2.2945, "name": "Eiffel Tower", "address": "Champ de Mars, Paris"},
		"Text":             []any{RichText("Rich text value ")[0], annotated("italic", map[string]any{"italic": true})},
		"People":           []any{user},
		"Relation":         []any{map[string]any{"id": target.ID}},
	}
	g.d.pages[target.ID] = target
	g.d.pages[row.ID] = row
	res.DatabaseID, res.RowID, res.TargetRowID = dbID, row.ID, target.ID
	for typ, s := range map[string]string{
		"number": "42.5", "url": "https://example.com/url-value", "select": "Alpha", "multi_select": "Gamma",
		"status": "In progress", "date": "2026-01-02", "email": "someone@example.com", "phone_number": "+1 555 0100",
		"files": "spec.pdf", "formula": "formula Every property value", "unique_id": "TASK-7", "title": "Every property value",
		"rich_text": "Rich text value", "place": "Eiffel Tower", "verification": "verified",
	} {
		res.Text["property:"+typ] = s
	}
	g.res.RowIDs = append(g.res.RowIDs, target.ID, row.ID)
	g.res.RowsByDatabase[dbID] = []string{target.ID, row.ID}
	g.res.RowsByDataSource[db.sources[0].id] = []string{target.ID, row.ID}
	g.res.DataSourceIDs[dbID] = []string{db.sources[0].id}
}
