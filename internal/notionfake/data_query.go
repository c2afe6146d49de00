package notionfake

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file parses what clients send the data endpoints (ids, pagination,
// search and query bodies) and implements filtering, sorting and pagination.

const (
	defaultPageSize = 100
	maxPageSize     = 100
	// maxFilterDepth is how deep Notion lets and/or compounds nest below the
	// top-level one.
	maxFilterDepth = 2
)

// normalizeID accepts a UUID with or without dashes, as Notion does, and
// returns it dashed and lower case.
func normalizeID(s string) (string, bool) {
	h := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if len(h) != 32 {
		return "", false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
}

// pathID returns the {id} path value, normalized; name is how Notion calls
// it in its error message (page_id, database_id, block_id).
func (req *dataRequest) pathID(name string) (string, *apiError) {
	raw := req.r.PathValue("id")
	id, ok := normalizeID(raw)
	if !ok {
		return "", validationError("path failed validation: path.%s should be a valid uuid, instead was `%q`.", name, raw)
	}
	return id, nil
}

// decodeBody decodes a JSON request body into v; an empty body leaves v
// as is.
func (req *dataRequest) decodeBody(v any) *apiError {
	if len(bytes.TrimSpace(req.body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(req.body, v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || !json.Valid(req.body) {
			return &apiError{status: 400, code: "invalid_json", message: "Error parsing JSON body."}
		}
		return validationError("body failed validation: %v.", err)
	}
	return nil
}

// pageSize validates a page_size: absent means the default, 1..100 is
// accepted, anything else is a validation_error.
func pageSize(v *int, where string) (int, *apiError) {
	if v == nil {
		return defaultPageSize, nil
	}
	if *v < 1 || *v > maxPageSize {
		return 0, validationError("%s.page_size should be a number between 1 and %d, instead was `%d`.", where, maxPageSize, *v)
	}
	return *v, nil
}

// queryPagination reads start_cursor and page_size from the URL query.
func (req *dataRequest) queryPagination() (cursor string, size int, aerr *apiError) {
	q := req.r.URL.Query()
	var ps *int
	if raw := q.Get("page_size"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil {
			return "", 0, validationError("query.page_size should be a number, instead was `%q`.", raw)
		}
		ps = &n
	}
	size, aerr = pageSize(ps, "query")
	return q.Get("start_cursor"), size, aerr
}

// paginate returns the page of items starting at cursor (an item's id, as
// Notion's cursors are) and the cursor of the next page ("" when none). A
// cursor that names no item of the list (unknown, malformed, or the id of
// an item since removed) is refused as Notion refuses it: 400
// validation_error "The start_cursor provided is invalid: <cursor>".
func paginate[T any](items []T, id func(T) string, cursor string, size int) ([]T, string, *apiError) {
	start := 0
	if cursor != "" {
		start = slices.IndexFunc(items, func(it T) bool { return id(it) == cursor })
		if start < 0 {
			return nil, "", invalidCursor(cursor)
		}
	}
	end := min(start+size, len(items))
	next := ""
	if end < len(items) {
		next = id(items[end])
	}
	return items[start:end], next, nil
}

// searchBody is the body of POST /v1/search.
type searchBody struct {
	Query  string `json:"query"`
	Filter *struct {
		Property string `json:"property"`
		Value    string `json:"value"`
	} `json:"filter"`
	Sort *struct {
		Direction string `json:"direction"`
		Timestamp string `json:"timestamp"`
	} `json:"sort"`
	StartCursor string `json:"start_cursor"`
	PageSize    *int   `json:"page_size"`
}

// searchParams is a validated search request.
type searchParams struct {
	query     string
	object    string // "page", "database" (or "data_source") or "" for both
	ascending bool
	cursor    string
	size      int
}

func (req *dataRequest) searchParams() (searchParams, *apiError) {
	var b searchBody
	if aerr := req.decodeBody(&b); aerr != nil {
		return searchParams{}, aerr
	}
	p := searchParams{query: b.Query, cursor: b.StartCursor}
	// jomei/notionapi always sends a filter; an empty one means none.
	if f := b.Filter; f != nil && (f.Property != "" || f.Value != "") {
		if f.Property != "object" {
			return p, validationError("body.filter.property should be `\"object\"`, instead was `%q`.", f.Property)
		}
		other := "database" // the data-source API searches data sources instead
		if req.dataSources {
			other = "data_source"
		}
		if f.Value != "page" && f.Value != other {
			return p, validationError("body.filter.value should be `\"page\"` or `\"%s\"`, instead was `%q`.", other, f.Value)
		}
		p.object = f.Value
	}
	if s := b.Sort; s != nil {
		if s.Timestamp != "last_edited_time" {
			return p, validationError("body.sort.timestamp should be `\"last_edited_time\"`, instead was `%q`.", s.Timestamp)
		}
		switch s.Direction {
		case "ascending":
			p.ascending = true
		case "descending":
		default:
			return p, validationError("body.sort.direction should be `\"ascending\"` or `\"descending\"`, instead was `%q`.", s.Direction)
		}
	}
	var aerr *apiError
	p.size, aerr = pageSize(b.PageSize, "body")
	return p, aerr
}

// queryBody is the body of POST /v1/databases/{id}/query.
type queryBody struct {
	Filter      json.RawMessage `json:"filter"`
	Sorts       []sortSpec      `json:"sorts"`
	StartCursor string          `json:"start_cursor"`
	PageSize    *int            `json:"page_size"`
}

type sortSpec struct {
	Property  string `json:"property"`
	Timestamp string `json:"timestamp"`
	Direction string `json:"direction"`
}

// rowFilter reports whether a row matches a query filter.
type rowFilter func(p *Page) bool

// queryParams is a validated database query.
type queryParams struct {
	filter rowFilter // nil: all rows
	less   func(a, b *Page) int
	cursor string
	size   int
}

func (req *dataRequest) queryParams(db *database) (queryParams, *apiError) {
	var b queryBody
	if aerr := req.decodeBody(&b); aerr != nil {
		return queryParams{}, aerr
	}
	q := queryParams{cursor: b.StartCursor}
	var aerr *apiError
	if len(b.Filter) > 0 && !bytes.Equal(bytes.TrimSpace(b.Filter), []byte("null")) {
		if q.filter, aerr = parseFilter(b.Filter, 0); aerr != nil {
			return q, aerr
		}
	}
	if q.less, aerr = rowOrder(db, b.Sorts); aerr != nil {
		return q, aerr
	}
	q.size, aerr = pageSize(b.PageSize, "body")
	return q, aerr
}

// parseFilter parses a query filter: a timestamp filter on created_time or
// last_edited_time, or an and/or compound of filters (nested at most
// maxFilterDepth deep, as Notion allows). Property filters are not
// supported by the fake and answer a validation_error that says so.
func parseFilter(raw json.RawMessage, depth int) (rowFilter, *apiError) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, validationError("body.filter should be an object.")
	}
	for _, op := range []string{"and", "or"} {
		sub, ok := f[op]
		if !ok {
			continue
		}
		if len(f) != 1 {
			return nil, validationError("body.filter.%s should be the only key of a compound filter.", op)
		}
		if depth > maxFilterDepth {
			return nil, validationError("body.filter compound filters can be nested at most %d levels deep.", maxFilterDepth)
		}
		var parts []json.RawMessage
		if err := json.Unmarshal(sub, &parts); err != nil {
			return nil, validationError("body.filter.%s should be an array.", op)
		}
		fs := make([]rowFilter, 0, len(parts))
		for _, part := range parts {
			pf, aerr := parseFilter(part, depth+1)
			if aerr != nil {
				return nil, aerr
			}
			fs = append(fs, pf)
		}
		if op == "and" {
			return func(p *Page) bool {
				for _, f := range fs {
					if !f(p) {
						return false
					}
				}
				return true
			}, nil
		}
		return func(p *Page) bool {
			for _, f := range fs {
				if f(p) {
					return true
				}
			}
			return false
		}, nil
	}
	if rawTS, ok := f["timestamp"]; ok {
		var ts string
		if err := json.Unmarshal(rawTS, &ts); err != nil {
			return nil, validationError("body.filter.timestamp should be a string.")
		}
		var field func(*Page) time.Time
		switch ts {
		case "last_edited_time":
			field = func(p *Page) time.Time { return minute(p.LastEditedTime) }
		case "created_time":
			field = func(p *Page) time.Time { return minute(p.CreatedTime) }
		default:
			return nil, validationError("body.filter.timestamp should be `\"created_time\"` or `\"last_edited_time\"`, instead was `%q`.", ts)
		}
		cond, ok := f[ts]
		if !ok {
			return nil, validationError("body.filter.%s should be defined.", ts)
		}
		match, aerr := parseDateCondition(cond, ts)
		if aerr != nil {
			return nil, aerr
		}
		return func(p *Page) bool { return match(field(p)) }, nil
	}
	if prop, ok := f["property"]; ok {
		return nil, validationError("notionfake supports only timestamp filters and and/or compounds; got a property filter on %s.", prop)
	}
	return nil, validationError("body.filter should be a timestamp filter or an and/or compound.")
}

// parseDateCondition parses {"on_or_after": ISO} and its siblings (exactly
// one key). A date without time covers its whole UTC day.
func parseDateCondition(raw json.RawMessage, field string) (func(time.Time) bool, *apiError) {
	var c map[string]json.RawMessage
	if err := json.Unmarshal(raw, &c); err != nil || len(c) != 1 {
		return nil, validationError("body.filter.%s should have exactly one condition.", field)
	}
	for op, rawV := range c {
		var s string
		if err := json.Unmarshal(rawV, &s); err != nil {
			return nil, validationError("body.filter.%s.%s should be an ISO 8601 date string.", field, op)
		}
		v, dateOnly, ok := parseFilterDate(s)
		if !ok {
			return nil, validationError("body.filter.%s.%s should be a valid ISO 8601 date string, instead was `%q`.", field, op, s)
		}
		end := v // first instant after the value
		if dateOnly {
			end = v.Add(24 * time.Hour)
		}
		switch op {
		case "equals":
			if dateOnly {
				return func(t time.Time) bool { return !t.Before(v) && t.Before(end) }, nil
			}
			return func(t time.Time) bool { return t.Equal(v) }, nil
		case "before":
			return func(t time.Time) bool { return t.Before(v) }, nil
		case "after":
			if dateOnly {
				return func(t time.Time) bool { return !t.Before(end) }, nil
			}
			return func(t time.Time) bool { return t.After(v) }, nil
		case "on_or_before":
			if dateOnly {
				return func(t time.Time) bool { return t.Before(end) }, nil
			}
			return func(t time.Time) bool { return !t.After(v) }, nil
		case "on_or_after":
			return func(t time.Time) bool { return !t.Before(v) }, nil
		default:
			return nil, validationError("notionfake does not support the date condition %q.", op)
		}
	}
	panic("unreachable")
}

// parseFilterDate parses the ISO 8601 forms Notion accepts in filters.
func parseFilterDate(s string) (t time.Time, dateOnly, ok bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), false, true
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, false, true
		}
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.UTC); err == nil {
		return t, true, true
	}
	return time.Time{}, false, false
}

// rowOrder returns the comparison of a query's sorts: timestamps and the
// title property. Without sorts rows come in creation order. Equal rows
// keep creation order.
func rowOrder(db *database, sorts []sortSpec) (func(a, b *Page) int, *apiError) {
	keys := make([]func(a, b *Page) int, 0, len(sorts))
	for i, s := range sorts {
		var key func(a, b *Page) int
		switch {
		case s.Timestamp == "last_edited_time" && s.Property == "":
			key = func(a, b *Page) int { return minute(a.LastEditedTime).Compare(minute(b.LastEditedTime)) }
		case s.Timestamp == "created_time" && s.Property == "":
			key = func(a, b *Page) int { return minute(a.CreatedTime).Compare(minute(b.CreatedTime)) }
		case s.Timestamp != "":
			return nil, validationError("body.sorts[%d].timestamp should be `\"created_time\"` or `\"last_edited_time\"`, instead was `%q`.", i, s.Timestamp)
		case s.Property == "":
			return nil, validationError("body.sorts[%d] should have a property or a timestamp.", i)
		default:
			ps := db.property(s.Property)
			if ps == nil {
				return nil, validationError("Could not find sort property with name or id: %s", s.Property)
			}
			if ps.typ != "title" {
				return nil, validationError("notionfake supports sorting by timestamps and the title only; got %s.", s.Property)
			}
			key = func(a, b *Page) int { return cmp.Compare(a.Title, b.Title) }
		}
		switch s.Direction {
		case "ascending":
		case "descending":
			asc := key
			key = func(a, b *Page) int { return -asc(a, b) }
		default:
			return nil, validationError("body.sorts[%d].direction should be `\"ascending\"` or `\"descending\"`, instead was `%q`.", i, s.Direction)
		}
		keys = append(keys, key)
	}
	return func(a, b *Page) int {
		for _, k := range keys {
			if c := k(a, b); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.seq, b.seq)
	}, nil
}

// property returns the schema property named or identified by key.
func (db *database) property(key string) *propertySchema {
	for i := range db.schema {
		if db.schema[i].name == key || db.schema[i].id == key {
			return &db.schema[i]
		}
	}
	return nil
}
