package markdown

// This file renders a data source's rows as a Markdown table and as CSV.
// Both take the schema from the data source object (so columns follow
// Notion's property order and a property no row has a value for still
// gets its column) and the values from each row's "properties".

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// DataRow is one live row of a data source.
type DataRow struct {
	// ID is the row's page id; Title its plain-text title.
	ID, Title string
	// Properties is the row's "properties" member as Notion returned it
	// (nil: a row known only by id and title).
	Properties json.RawMessage
	// Rendered, when set, caches the row's rendering across calls: a
	// field already filled is used as is (the caller clears it when the
	// row, the schema or what the row links changed), an empty one is
	// filled in.
	Rendered *RenderedRow
}

// RenderedRow is a row of a data source table as rendered.
type RenderedRow struct {
	// MD is the row's Markdown table line, CSV its CSV fields.
	MD  string
	CSV []string
}

// DataSourceFile is where the files of a data source are, for a
// database's Markdown to list them.
type DataSourceFile struct {
	// Markdown and CSV are link targets ("" : not linked).
	Markdown, CSV string
}

// schemaProperty is one property of a data source schema.
type schemaProperty struct {
	Name string
	Type string
}

// dataSourceSchema reads the schema (the "properties" member) of a data
// source object in Notion's order.
func dataSourceSchema(object json.RawMessage) (title string, db string, props []schemaProperty, images objectImages, err error) {
	var ds struct {
		objectImages
		Title  []richText `json:"title"`
		Parent struct {
			DatabaseID string `json:"database_id"`
		} `json:"parent"`
		Properties json.RawMessage `json:"properties"`
	}
	if o := bytes.TrimSpace(object); len(o) > 0 && !bytes.Equal(o, []byte("null")) {
		if err := json.Unmarshal(o, &ds); err != nil {
			return "", "", nil, objectImages{}, fmt.Errorf("markdown: data source: %w", err)
		}
	}
	raw := bytes.TrimSpace(ds.Properties)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return plain(ds.Title), ds.Parent.DatabaseID, nil, ds.objectImages, nil
	}
	fields, err := record.ObjectFields(raw)
	if err != nil {
		return "", "", nil, objectImages{}, fmt.Errorf("markdown: data source properties: %w", err)
	}
	for _, f := range fields {
		var p struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(f.Value, &p); err != nil {
			return "", "", nil, objectImages{}, fmt.Errorf("markdown: data source property %q: %w", truncate(f.Key), err)
		}
		props = append(props, schemaProperty{Name: f.Key, Type: p.Type})
	}
	return plain(ds.Title), ds.Parent.DatabaseID, props, ds.objectImages, nil
}

// rowValues decodes a row's property values by property name.
func rowValues(raw json.RawMessage) (map[string]*propertyValue, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	fields, err := record.ObjectFields(raw)
	if err != nil {
		return nil, err
	}
	vals := make(map[string]*propertyValue, len(fields))
	for _, f := range fields {
		var v propertyValue
		if err := json.Unmarshal(f.Value, &v); err != nil {
			return nil, fmt.Errorf("property %q: %w", truncate(f.Key), err)
		}
		vals[f.Key] = &v
	}
	return vals, nil
}

// RenderDataSourceFiles returns RenderDataSource and RenderDataSourceCSV
// of the same rows, decoding each row once (the file sink rewrites both
// whenever a row changes).
func (r *Renderer) RenderDataSourceFiles(title string, object json.RawMessage, rows []DataRow) (md, csv []byte, err error) {
	decoded := make([]map[string]*propertyValue, len(rows))
	for i := range rows {
		if rr := rows[i].Rendered; rr != nil && rr.MD != "" && rr.CSV != nil {
			continue // not needed
		}
		decoded[i], _ = rowValues(rows[i].Properties) // undecodable: empty cells
	}
	if md, err = r.renderDataSource(title, object, rows, decoded); err != nil {
		return nil, nil, err
	}
	if csv, err = r.renderDataSourceCSV(object, rows, decoded); err != nil {
		return nil, nil, err
	}
	return md, csv, nil
}

// RenderDataSource renders a data source's rows as a Markdown table: a
// first column with each row's title linking to the row's page (Links, or
// PageURL), then one column per property in schema order, values rendered
// as on the row's page (relations link the rows the mirror holds, dates
// are readable, people are named through UserName). title is the data
// source's plain-text title ("": taken from object); object the data
// source object as Notion returned it; rows are listed in the given order.
// A row whose properties cannot be decoded keeps its title and empty
// cells: one bad row does not hide the others.
func (r *Renderer) RenderDataSource(title string, object json.RawMessage, rows []DataRow) ([]byte, error) {
	return r.renderDataSource(title, object, rows, nil)
}

// renderDataSource is RenderDataSource with the rows' values decoded
// (decoded nil: decode them here).
func (r *Renderer) renderDataSource(title string, object json.RawMessage, rows []DataRow, decoded []map[string]*propertyValue) ([]byte, error) {
	objTitle, db, schema, images, err := dataSourceSchema(object)
	if err != nil {
		return nil, err
	}
	title = firstNonEmpty(title, objTitle)
	var out bytes.Buffer
	out.WriteString("# ")
	out.WriteString(escapeLineStart(escapeText(strings.ReplaceAll(orUntitled(title), "\n", " "))))
	out.WriteString("\n")
	r.writeImages(&out, images)
	out.WriteString("\n")
	if db != "" {
		out.WriteString("Data source of ")
		out.WriteString(r.databaseLink("", "a database", db))
		out.WriteString(". ")
	}
	if len(rows) == 1 {
		out.WriteString("1 row.\n")
	} else {
		fmt.Fprintf(&out, "%d rows.\n", len(rows))
	}
	var cols []schemaProperty
	titleName := "Name"
	for _, p := range schema {
		if p.Type == "title" {
			titleName = p.Name
			continue
		}
		cols = append(cols, p)
	}
	out.WriteString("\n| ")
	out.WriteString(cell(escapeText(strings.ReplaceAll(orUntitled(titleName), "\n", " "))))
	for _, c := range cols {
		out.WriteString(" | ")
		out.WriteString(cell(escapeText(strings.ReplaceAll(c.Name, "\n", " "))))
	}
	out.WriteString(" |\n|")
	for range len(cols) + 1 {
		out.WriteString(" --- |")
	}
	out.WriteString("\n")
	var line strings.Builder
	for i, row := range rows {
		if row.Rendered != nil && row.Rendered.MD != "" {
			out.WriteString(row.Rendered.MD)
			continue
		}
		if r.RowStart != nil {
			r.RowStart(row.ID)
		}
		vals := rowDecoded(rows, decoded, i)
		line.Reset()
		line.WriteString("| ")
		line.WriteString(cell(r.pageLink(strings.ReplaceAll(row.Title, "\n", " "), "Untitled", row.ID)))
		for _, c := range cols {
			line.WriteString(" | ")
			if v := vals[c.Name]; v != nil {
				r.resolveValue(v)
				line.WriteString(cell(strings.ReplaceAll(r.value(v, 0), "\n", " ")))
			}
		}
		line.WriteString(" |\n")
		out.WriteString(line.String())
		if row.Rendered != nil {
			row.Rendered.MD = line.String()
		}
	}
	return bytes.ReplaceAll(out.Bytes(), []byte{0}, []byte("\uFFFD")), nil
}

// rowDecoded returns row i's values, decoding them when decoded is nil.
// A row whose properties cannot be decoded has none: its cells stay empty
// rather than hiding the other rows.
func rowDecoded(rows []DataRow, decoded []map[string]*propertyValue, i int) map[string]*propertyValue {
	if decoded != nil {
		return decoded[i]
	}
	vals, _ := rowValues(rows[i].Properties)
	return vals
}

// RenderDataSourceCSV renders a data source's rows as CSV (RFC 4180, by
// encoding/csv): a header of the property names in schema order, then one
// line per row with plain-text values (numbers as Notion wrote them,
// checkboxes true/false, dates in ISO 8601 as start or start/end,
// multi-selects, people and relations joined by ", ", relations and
// people by title and name when known, else by id).
func (r *Renderer) RenderDataSourceCSV(object json.RawMessage, rows []DataRow) ([]byte, error) {
	return r.renderDataSourceCSV(object, rows, nil)
}

func (r *Renderer) renderDataSourceCSV(object json.RawMessage, rows []DataRow, decoded []map[string]*propertyValue) ([]byte, error) {
	_, _, schema, _, err := dataSourceSchema(object)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	w.UseCRLF = true // RFC 4180
	rec := make([]string, len(schema))
	for i, p := range schema {
		rec[i] = csvSafe(p.Name)
	}
	if err := w.Write(rec); err != nil {
		return nil, fmt.Errorf("markdown: csv: %w", err)
	}
	for j, row := range rows {
		if row.Rendered != nil && row.Rendered.CSV != nil {
			if err := w.Write(row.Rendered.CSV); err != nil {
				return nil, fmt.Errorf("markdown: csv: %w", err)
			}
			continue
		}
		if r.RowStart != nil {
			r.RowStart(row.ID)
		}
		vals := rowDecoded(rows, decoded, j)
		for i, p := range schema {
			rec[i] = ""
			if v := vals[p.Name]; v != nil {
				rec[i] = csvSafe(r.plainValue(v, 0))
			} else if p.Type == "title" {
				rec[i] = csvSafe(row.Title)
			}
		}
		if err := w.Write(rec); err != nil {
			return nil, fmt.Errorf("markdown: csv: %w", err)
		}
		if row.Rendered != nil {
			row.Rendered.CSV = slices.Clone(rec)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("markdown: csv: %w", err)
	}
	return out.Bytes(), nil
}

// csvSafe replaces NUL, which spreadsheet programs and PostgreSQL's COPY
// reject.
func csvSafe(s string) string { return strings.ReplaceAll(s, "\x00", "\uFFFD") }

// plainValue renders one property value as plain text (no Markdown).
func (r *Renderer) plainValue(v *propertyValue, depth int) string {
	switch v.Type {
	case "title":
		return plain(v.Title)
	case "rich_text":
		return plain(v.RichText)
	case "number":
		return number(v.Number)
	case "select":
		if v.Select != nil {
			return v.Select.Name
		}
	case "status":
		if v.Status != nil {
			return v.Status.Name
		}
	case "multi_select":
		names := make([]string, len(v.MultiSelect))
		for i, n := range v.MultiSelect {
			names[i] = n.Name
		}
		return strings.Join(names, ", ")
	case "date":
		if v.Date == nil || v.Date.Start == "" {
			return ""
		}
		if v.Date.End != nil && *v.Date.End != "" {
			return v.Date.Start + "/" + *v.Date.End
		}
		return v.Date.Start
	case "people":
		names := make([]string, len(v.People))
		for i := range v.People {
			names[i] = r.userLabel(&v.People[i])
		}
		return strings.Join(names, ", ")
	case "checkbox":
		if v.Checkbox {
			return "true"
		}
		return "false"
	case "boolean":
		if v.Boolean == nil {
			return ""
		}
		if *v.Boolean {
			return "true"
		}
		return "false"
	case "url":
		return deref(v.URL)
	case "email":
		return deref(v.Email)
	case "phone_number":
		return deref(v.PhoneNumber)
	case "string":
		return deref(v.String)
	case "relation":
		ids := make([]string, len(v.Relation))
		for i, rel := range v.Relation {
			ids[i] = rel.ID
			if r.Links != nil {
				if t, _ := r.Links.Page(rel.ID); t.Title != "" {
					ids[i] = t.Title
				}
			}
		}
		return strings.Join(ids, ", ")
	case "formula":
		if v.Formula != nil && depth <= 4 {
			return r.plainValue(v.Formula, depth+1)
		}
	case "rollup":
		if v.Rollup != nil && depth <= 4 {
			return r.plainValue(v.Rollup, depth+1)
		}
	case "array":
		parts := make([]string, 0, len(v.Array))
		for i := range v.Array {
			if depth > 4 {
				break
			}
			if s := r.plainValue(&v.Array[i], depth+1); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ", ")
	case "created_time":
		return v.CreatedTime
	case "last_edited_time":
		return v.LastEditedTime
	case "created_by":
		return r.userLabel(v.CreatedBy)
	case "last_edited_by":
		return r.userLabel(v.LastEditedBy)
	case "files":
		names := make([]string, len(v.Files))
		for i, f := range v.Files {
			names[i] = orUntitled(f.Name)
		}
		return strings.Join(names, ", ")
	case "unique_id":
		if v.UniqueID == nil {
			return ""
		}
		n := number(v.UniqueID.Number)
		if v.UniqueID.Prefix != nil && *v.UniqueID.Prefix != "" {
			return *v.UniqueID.Prefix + "-" + n
		}
		return n
	case "verification":
		if v.Verification != nil {
			return v.Verification.State
		}
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// userLabel names a user: the name Notion sent, else the one UserName
// knows (the users the mirror syncs), else the email, else the id.
func (r *Renderer) userLabel(u *user) string {
	if u == nil {
		return ""
	}
	return u.label(r)
}
