package pgsink

// Analyst views: one view per data source, its properties as typed columns
// (see the package doc for the mapping), generated from the data source's
// schema in the transaction that writes it, so a reader never sees a
// schema and a view that disagree.
//
// Property names are hostile input: they only ever reach SQL as quoted
// identifiers (pgx.Identifier) for column names, slugged, length-limited
// and deduplicated so analysts can type them, and as string literals with
// quotes doubled for the JSON keys they read. The view's name is
// ds_<first 8 hex digits of the id>_<slug of the title>; a view records
// the data source it belongs to in its comment, so a renamed data source's
// old view is found and dropped, and a name taken by another data source's
// view falls back to ds_<all 32 hex digits>.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// maxIdent is PostgreSQL's identifier length (NAMEDATALEN-1 bytes).
const maxIdent = 63

// viewColumn is one generated column.
type viewColumn struct {
	name string // the column name, unquoted
	expr string // its SQL expression over p (a pages row)
}

// slug returns s lowercased with runs of anything but [a-z0-9] replaced by
// one underscore, trimmed, at most max bytes; "" when nothing is left.
func slug(s string, max int) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(s) {
		if r < unicode.MaxASCII && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			if under && b.Len() > 0 {
				b.WriteByte('_')
			}
			under = false
			b.WriteRune(r)
		} else {
			under = true
		}
		if b.Len() >= max {
			break
		}
	}
	out := b.String()
	if len(out) > max {
		out = out[:max]
	}
	return strings.Trim(out, "_")
}

// sqlString quotes s as a SQL string literal (standard_conforming_strings
// is on in every supported PostgreSQL: a backslash is an ordinary
// character).
func sqlString(s string) string {
	return "'" + strings.ReplaceAll(sanitizeText(s), "'", "''") + "'"
}

// fixedColumns are the columns every view starts with.
var fixedColumns = []viewColumn{
	{"connection_id", "p.connection_id"},
	{"page_id", "p.page_id"},
	{"page_last_edited_time", "p.last_edited_time"},
}

// viewColumns derives the typed columns from a data source's schema (the
// object's "properties" member, in Notion's order).
func viewColumns(schema json.RawMessage) ([]viewColumn, error) {
	cols := append([]viewColumn(nil), fixedColumns...)
	used := map[string]bool{}
	for _, c := range cols {
		used[c.name] = true
	}
	unique := func(base string) string {
		if base == "" {
			base = "property"
		}
		name := base
		for n := 2; used[name]; n++ {
			suffix := fmt.Sprintf("_%d", n)
			name = base[:min(len(base), maxIdent-len(suffix))] + suffix
		}
		used[name] = true
		return name
	}
	if len(schema) == 0 || string(schema) == "null" {
		return cols, nil
	}
	fields, err := record.ObjectFields(schema)
	if err != nil {
		return nil, fmt.Errorf("pgsink: data source schema: %w", err)
	}
	for _, f := range fields {
		var p struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(f.Value, &p); err != nil {
			return nil, fmt.Errorf("pgsink: data source property: %w", err)
		}
		v := "(p.properties -> " + sqlString(f.Key) + ")"
		path := func(jsonpath string) string { // a jsonb array, [] when absent
			return "jsonb_path_query_array(" + v + ", " + sqlString(jsonpath) + ")"
		}
		texts := func(jsonpath string) string {
			return "ARRAY(SELECT jsonb_array_elements_text(" + path(jsonpath) + "))"
		}
		joined := func(jsonpath string) string {
			return "(SELECT string_agg(x, '') FROM jsonb_array_elements_text(" + path(jsonpath) + ") AS x)"
		}
		base := slug(f.Key, maxIdent-4) // room for a _NNN suffix
		switch p.Type {
		case "title", "rich_text":
			cols = append(cols, viewColumn{unique(base), joined("$." + p.Type + "[*].plain_text")})
		case "number":
			cols = append(cols, viewColumn{unique(base), "(CASE WHEN jsonb_typeof(" + v + " -> 'number') = 'number' THEN (" + v + " ->> 'number')::numeric END)"})
		case "checkbox":
			cols = append(cols, viewColumn{unique(base), "(CASE WHEN jsonb_typeof(" + v + " -> 'checkbox') = 'boolean' THEN (" + v + " ->> 'checkbox')::boolean END)"})
		case "date":
			cols = append(cols, viewColumn{unique(base), "(" + v + " -> 'date' ->> 'start')::timestamptz"})
			cols = append(cols, viewColumn{unique(slug(base, maxIdent-8) + "_end"), "(" + v + " -> 'date' ->> 'end')::timestamptz"})
		case "select", "status":
			cols = append(cols, viewColumn{unique(base), "(" + v + " -> '" + p.Type + "' ->> 'name')"})
		case "multi_select":
			cols = append(cols, viewColumn{unique(base), texts("$.multi_select[*].name")})
		case "people":
			cols = append(cols, viewColumn{unique(base), texts("$.people[*].id")})
			// Their names too, in the same order: what the Markdown
			// shows (the synced users' names; else the name or email the
			// value carries; else the id).
			cols = append(cols, viewColumn{unique(slug(base, maxIdent-10) + "_names"), peopleNames(path("$.people[*]"))})
		case "relation":
			cols = append(cols, viewColumn{unique(base), texts("$.relation[*].id")})
		case "url", "email", "phone_number":
			cols = append(cols, viewColumn{unique(base), "(" + v + " ->> '" + p.Type + "')"})
		case "created_time", "last_edited_time":
			cols = append(cols, viewColumn{unique(base), "(" + v + " ->> '" + p.Type + "')::timestamptz"})
		case "created_by", "last_edited_by":
			cols = append(cols, viewColumn{unique(base), "(" + v + " -> '" + p.Type + "' ->> 'id')"})
			cols = append(cols, viewColumn{unique(slug(base, maxIdent-9) + "_name"), "(" + peopleNames("jsonb_build_array("+v+" -> '"+p.Type+"')") + ")[1]"})
		case "formula":
			// The schema does not say a formula's result type (it may
			// change with each row): its result as jsonb.
			cols = append(cols, viewColumn{unique(base), "(" + v + " -> 'formula')"})
		case "rollup":
			cols = append(cols, viewColumn{unique(base), "(" + v + " -> 'rollup')"})
		default: // files, unique_id, button, types added after this code
			cols = append(cols, viewColumn{unique(base), v})
		}
	}
	return cols, nil
}

// peopleNames is the SQL of a text[] of the names of the user objects in
// the jsonb array arr, in its order: the connection's synced user (table
// users) by id, else the object's own name or email, else its id. A
// user id that is not a UUID matches no synced user.
func peopleNames(arr string) string {
	return "ARRAY(SELECT COALESCE(u.name, x.e ->> 'name', u.email, x.e -> 'person' ->> 'email', x.e ->> 'id') " +
		"FROM jsonb_array_elements(" + arr + ") WITH ORDINALITY AS x(e, n) " +
		"LEFT JOIN users u ON u.connection_id = p.connection_id AND u.user_id::text = lower(x.e ->> 'id') " +
		"WHERE jsonb_typeof(x.e) = 'object' ORDER BY x.n)"
}

// viewComment marks a view as a data source's.
func viewComment(dataSourceID string) string { return "notionsync data source " + dataSourceID }

// viewName is the preferred name of a data source's view.
func viewName(dataSourceID, title string) string {
	short := strings.ReplaceAll(dataSourceID, "-", "")[:8]
	name := "ds_" + short
	if s := slug(title, maxIdent-len(name)-1); s != "" {
		name += "_" + s
	}
	return name
}

// lockKey serializes the view changes of one data source.
func lockKey(dataSourceID string) int64 {
	h := fnv.New64a()
	h.Write([]byte("notionsync view " + dataSourceID))
	return int64(h.Sum64())
}

// dropViews drops the data source's views (there is one, or none).
func dropViews(ctx context.Context, tx pgx.Tx, dataSourceID string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(dataSourceID)); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_class c
JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
WHERE c.relkind = 'v' AND c.relnamespace = current_schema()::regnamespace AND d.description = $1`, viewComment(dataSourceID))
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := tx.Exec(ctx, "DROP VIEW IF EXISTS "+pgx.Identifier{n}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

// syncView re-creates a data source's view from its schema, or drops it
// when the data source is deleted. schema is the "properties" member as
// Notion sent it, whose order the columns follow (jsonb does not keep
// it); nil reads the stored one.
func syncView(ctx context.Context, tx pgx.Tx, connectionID, dataSourceID string, schema json.RawMessage) error {
	if err := dropViews(ctx, tx, dataSourceID); err != nil {
		return err
	}
	var title string
	var stored []byte
	var deleted bool
	err := tx.QueryRow(ctx, `SELECT title, schema, deleted_at IS NOT NULL FROM data_sources
WHERE connection_id = $1 AND data_source_id = $2`, connectionID, dataSourceID).Scan(&title, &stored, &deleted)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // nothing stored: no view
	}
	if err != nil {
		return err
	}
	if deleted {
		return nil
	}
	if schema == nil {
		schema = stored
	}
	cols, err := viewColumns(schema)
	if err != nil {
		return err
	}
	name := viewName(dataSourceID, title)
	var taken bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = $1 AND relnamespace = current_schema()::regnamespace)`, name).Scan(&taken); err != nil {
		return err
	}
	if taken { // another data source's view (same id prefix and title)
		name = "ds_" + strings.ReplaceAll(dataSourceID, "-", "")
	}
	var b strings.Builder
	b.WriteString("CREATE VIEW " + pgx.Identifier{name}.Sanitize() + " AS SELECT ")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.expr + " AS " + pgx.Identifier{c.name}.Sanitize())
	}
	// dataSourceID is a normalized UUID (hex and dashes): safe as a literal.
	b.WriteString(" FROM pages p WHERE p.data_source_id = '" + dataSourceID + "' AND p.deleted_at IS NULL")
	if _, err := tx.Exec(ctx, b.String()); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "COMMENT ON VIEW "+pgx.Identifier{name}.Sanitize()+" IS "+sqlString(viewComment(dataSourceID)))
	return err
}
