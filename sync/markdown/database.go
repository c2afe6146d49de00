package markdown

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// Row is a database row listed in a database's Markdown.
type Row struct {
	ID    string
	Title string
}

// objectImages are the icon and cover of a page, database or data source
// object.
type objectImages struct {
	Icon  *icon `json:"icon"`
	Cover *icon `json:"cover"`
}

// lines renders the icon and cover as images, each on its own line, a
// Notion-hosted one linking the local copy (FileURL); an emoji icon, a
// missing or unreadable one, renders nothing.
func (r *Renderer) imageLines(o objectImages) []string {
	var out []string
	for _, im := range []struct {
		alt string
		f   *icon
	}{{"icon", o.Icon}, {"cover", o.Cover}} {
		var u string
		switch {
		case im.f == nil:
		case im.f.Type == "file" && im.f.File != nil:
			u = r.hostedFile(im.f.File.URL)
		case im.f.Type == "external" && im.f.External != nil:
			u = im.f.External.URL
		}
		if u != "" {
			out = append(out, "!["+im.alt+"]("+linkTarget(u)+")")
		}
	}
	return out
}

// writeImages writes the icon and cover lines of o, after a blank line.
func (r *Renderer) writeImages(out *bytes.Buffer, o objectImages) {
	if lines := r.imageLines(o); len(lines) > 0 {
		out.WriteString("\n")
		out.WriteString(strings.Join(lines, "\n\n"))
		out.WriteString("\n")
	}
}

// databaseJSON is the part of a database object RenderDatabase reads.
type databaseJSON struct {
	objectImages
	Title       []richText `json:"title"`
	Description []richText `json:"description"`
	IsInline    bool       `json:"is_inline"`
	// Properties is the schema (API versions before 2025-09-03).
	Properties json.RawMessage `json:"properties"`
	// DataSources lists the data sources (API 2025-09-03 and later).
	DataSources []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"data_sources"`
}

// RenderDatabase renders a database: its title, icon and cover (as images,
// Notion-hosted ones linked through FileURL), description, schema (one
// row per property: name, type, the options of a select, multi_select or
// status) and the list of its rows, each linked like a page (Links, or
// PageURL). title is the database's plain-text title ("" : taken from
// object); object is the database object as Notion returned it (may be nil
// for a database known only by id); rows are listed in the given order.
func (r *Renderer) RenderDatabase(title string, object json.RawMessage, rows []Row) ([]byte, error) {
	var db databaseJSON
	if o := bytes.TrimSpace(object); len(o) > 0 && !bytes.Equal(o, []byte("null")) {
		if err := json.Unmarshal(o, &db); err != nil {
			return nil, fmt.Errorf("markdown: database: %w", err)
		}
	}
	if title == "" {
		title = plain(db.Title)
	}
	var out bytes.Buffer
	out.WriteString("# ")
	out.WriteString(escapeLineStart(escapeText(strings.ReplaceAll(orUntitled(title), "\n", " "))))
	out.WriteString("\n")
	r.writeImages(&out, db.objectImages)
	if desc := r.resolveRichText(db.Description); len(desc) > 0 {
		out.WriteString("\n")
		for _, l := range hardBreaks(inlineLines(desc)) {
			out.WriteString(l)
			out.WriteString("\n")
		}
	}
	schema, err := schemaRows(db.Properties)
	if err != nil {
		return nil, err
	}
	if len(schema) > 0 {
		out.WriteString("\n## Properties\n\n| Property | Type | Options |\n| --- | --- | --- |\n")
		for _, row := range schema {
			fmt.Fprintf(&out, "| %s | %s | %s |\n", row[0], row[1], row[2])
		}
	}
	if len(db.DataSources) > 1 || len(db.DataSources) == 1 && r.DataSourceFiles != nil {
		out.WriteString("\n## Data sources\n\n")
		for _, ds := range db.DataSources {
			name := escapeLineStart(escapeText(orUntitled(ds.Name)))
			if r.DataSourceFiles != nil {
				if f, ok := r.DataSourceFiles(ds.ID); ok {
					name = link(orUntitled(ds.Name), f.Markdown)
					if f.CSV != "" {
						name += " (" + link("CSV", f.CSV) + ")"
					}
				}
			}
			fmt.Fprintf(&out, "- %s\n", name)
		}
	}
	fmt.Fprintf(&out, "\n## Rows (%d)\n", len(rows))
	if len(rows) > 0 {
		out.WriteString("\n")
	}
	for _, row := range rows {
		out.WriteString("- ")
		out.WriteString(r.pageLink(strings.ReplaceAll(row.Title, "\n", " "), "Untitled", row.ID))
		out.WriteString("\n")
	}
	return bytes.ReplaceAll(out.Bytes(), []byte{0}, []byte("\uFFFD")), nil
}

// schemaRows renders a database schema as (name, type, options) rows in
// Notion's order.
func schemaRows(raw json.RawMessage) ([][3]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	fields, err := record.ObjectFields(raw)
	if err != nil {
		return nil, fmt.Errorf("markdown: database properties: %w", err)
	}
	rows := make([][3]string, 0, len(fields))
	for _, f := range fields {
		var p struct {
			Type        string                     `json:"type"`
			Select      *struct{ Options []named } `json:"select"`
			MultiSelect *struct{ Options []named } `json:"multi_select"`
			Status      *struct{ Options []named } `json:"status"`
		}
		if err := json.Unmarshal(f.Value, &p); err != nil {
			return nil, fmt.Errorf("markdown: database property %q: %w", truncate(f.Key), err)
		}
		var opts []string
		for _, o := range []*struct{ Options []named }{p.Select, p.MultiSelect, p.Status} {
			if o == nil {
				continue
			}
			for _, n := range o.Options {
				opts = append(opts, escapeText(n.Name))
			}
		}
		name := escapeText(strings.ReplaceAll(f.Key, "\n", " "))
		rows = append(rows, [3]string{cell(name), cell(escapeText(p.Type)), cell(strings.Join(slices.Compact(opts), ", "))})
	}
	return rows, nil
}
