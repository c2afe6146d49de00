package notionfake

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

// v2025 sends a request with Notion-Version 2025-09-03.
func v2025(r *http.Request) { r.Header.Set("Notion-Version", "2025-09-03") }

// decodeInto unmarshals a reply's body into v.
func (r rawReply) decodeInto(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("status %d: %v: %q", r.status, err, r.body)
	}
}

type dsList struct {
	Object        string           `json:"object"`
	Type          string           `json:"type"`
	HasMore       bool             `json:"has_more"`
	NextCursor    *string          `json:"next_cursor"`
	Results       []map[string]any `json:"results"`
	RequestStatus *struct {
		Type             string `json:"type"`
		IncompleteReason string `json:"incomplete_reason"`
	} `json:"request_status"`
}

func ids(objs []map[string]any) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i], _ = o["id"].(string)
	}
	return out
}

// queryAll pages through a data source (or database) query and returns the
// row ids.
func (h *dataHarness) queryAll(path string, mods ...reqMod) []string {
	h.t.Helper()
	var all []string
	body := map[string]any{"page_size": 3}
	for range 100 {
		r := h.raw("POST", path, body, mods...)
		if r.status != 200 {
			h.t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		var l dsList
		r.decodeInto(h.t, &l)
		all = append(all, ids(l.Results)...)
		if !l.HasMore {
			return all
		}
		body["start_cursor"] = *l.NextCursor
	}
	h.t.Fatalf("%s: pagination does not end", path)
	return nil
}

func TestDataSourcesSeedAndVersions(t *testing.T) {
	spec := SeedSpec{Seed: 21, Pages: 2, Databases: 2, RowsPerDatabase: 5, MultiSourceDatabases: 1}
	h := newDataHarness(t, spec)
	multi, single := h.seed.DatabaseIDs[0], h.seed.DatabaseIDs[1]
	srcs := h.seed.DataSourceIDs[multi]
	if len(srcs) != 2 || len(h.seed.DataSourceIDs[single]) != 1 {
		t.Fatalf("data sources %v", h.seed.DataSourceIDs)
	}
	if got := len(h.seed.RowsByDatabase[multi]); got != 10 {
		t.Fatalf("multi-source database has %d rows, want 10", got)
	}

	// The option adds content after everything else: the rest is unchanged.
	plain := New(Options{Now: h.clock.Now}).SeedWorkspace(testWS, SeedSpec{Seed: 21, Pages: 2, Databases: 2, RowsPerDatabase: 5})
	if !slices.Equal(plain.PageIDs, h.seed.PageIDs) || !slices.Equal(plain.RowsByDatabase[single], h.seed.RowsByDatabase[single]) ||
		!slices.Equal(plain.RowsByDatabase[multi], h.seed.RowsByDatabase[multi][:5]) {
		t.Error("MultiSourceDatabases changed the rest of the seeded content")
	}
	if !slices.Equal(plain.DataSourceIDs[multi], srcs[:1]) {
		t.Errorf("first data source id is not stable: %v vs %v", plain.DataSourceIDs[multi], srcs)
	}

	// 2022-06-28: the multi-source database cannot be queried; the other can.
	r := h.raw("POST", "/v1/databases/"+multi+"/query", map[string]any{})
	if m := r.json(t); r.status != 400 || m["code"] != "validation_error" || m["message"] != errMultiSource {
		t.Fatalf("2022 query of a multi-source database: %d %s", r.status, r.body)
	}
	if got := h.queryAll("/v1/databases/" + single + "/query"); len(got) != 5 {
		t.Fatalf("2022 query of a single-source database: %d rows", len(got))
	}
	// ... and the data source endpoints do not exist.
	if r := h.raw("GET", "/v1/data_sources/"+srcs[0], nil); r.status != 400 || r.json(t)["code"] != "invalid_request_url" {
		t.Fatalf("2022 data source GET: %d %s", r.status, r.body)
	}
	if r := h.raw("GET", "/v1/databases/"+multi, nil); r.status != 200 || r.json(t)["properties"] == nil || r.json(t)["data_sources"] != nil {
		t.Fatalf("2022 database GET: %d %s", r.status, r.body)
	}

	// 2025-09-03: the database is a container of two data sources.
	var db struct {
		Object      string `json:"object"`
		Properties  any    `json:"properties"`
		DataSources []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"data_sources"`
	}
	h.raw("GET", "/v1/databases/"+multi, nil, v2025).decodeInto(t, &db)
	if db.Object != "database" || db.Properties != nil || len(db.DataSources) != 2 ||
		db.DataSources[0].ID != srcs[0] || db.DataSources[1].ID != srcs[1] || db.DataSources[1].Name == "" {
		t.Fatalf("2025 database: %+v", db)
	}
	var ds struct {
		Object         string         `json:"object"`
		ID             string         `json:"id"`
		Parent         map[string]any `json:"parent"`
		DatabaseParent map[string]any `json:"database_parent"`
		Properties     map[string]struct {
			ID, Name, Type string
		} `json:"properties"`
	}
	h.raw("GET", "/v1/data_sources/"+srcs[1], nil, v2025).decodeInto(t, &ds)
	if ds.Object != "data_source" || ds.ID != srcs[1] || ds.Parent["type"] != "database_id" || ds.Parent["database_id"] != multi ||
		ds.DatabaseParent["type"] != "page_id" || ds.Properties["Name"].Type != "title" || len(ds.Properties) != 10 {
		t.Fatalf("2025 data source: %+v", ds)
	}
	if r := h.raw("GET", "/v1/data_sources/"+multi, nil, v2025); r.status != 404 || r.json(t)["code"] != "object_not_found" {
		t.Fatalf("a database id is not a data source id: %d %s", r.status, r.body)
	}

	// Each data source's query returns its own rows, paginated; together
	// they are the database's rows.
	first := h.queryAll("/v1/data_sources/"+srcs[0]+"/query", v2025)
	second := h.queryAll("/v1/data_sources/"+srcs[1]+"/query", v2025)
	if !slices.Equal(first, h.seed.RowsByDataSource[srcs[0]]) || !slices.Equal(second, h.seed.RowsByDataSource[srcs[1]]) {
		t.Fatalf("data source rows %v / %v, want %v / %v", first, second, h.seed.RowsByDataSource[srcs[0]], h.seed.RowsByDataSource[srcs[1]])
	}
	if got := append(slices.Clone(first), second...); !slices.Equal(got, h.seed.RowsByDatabase[multi]) {
		t.Errorf("rows of both sources %v, want %v", got, h.seed.RowsByDatabase[multi])
	}
	// Same filters and sorts as a database query.
	var l dsList
	h.raw("POST", "/v1/data_sources/"+srcs[1]+"/query", map[string]any{
		"sorts":  []any{map[string]any{"property": "Name", "direction": "descending"}},
		"filter": map[string]any{"timestamp": "created_time", "created_time": map[string]any{"on_or_before": "2100-01-01"}},
	}, v2025).decodeInto(t, &l)
	if l.Type != "page_or_data_source" || len(l.Results) != 5 {
		t.Fatalf("filtered query: %+v", l)
	}
	if r := h.raw("POST", "/v1/data_sources/"+srcs[1]+"/query", map[string]any{"filter": map[string]any{"property": "Score"}}, v2025); r.status != 400 {
		t.Fatalf("unsupported filter: %d", r.status)
	}

	// A row's parent names its data source and its database.
	row := h.raw("GET", "/v1/pages/"+second[0], nil, v2025).json(t)
	parent := row["parent"].(map[string]any)
	if parent["type"] != "data_source_id" || parent["data_source_id"] != srcs[1] || parent["database_id"] != multi {
		t.Fatalf("2025 row parent %v", parent)
	}
	if p := h.raw("GET", "/v1/pages/"+second[0], nil).json(t)["parent"].(map[string]any); p["type"] != "database_id" || p["database_id"] != multi {
		t.Fatalf("2022 row parent %v", p)
	}

	// Search: filter data_source lists data sources, not databases.
	h.raw("POST", "/v1/search", map[string]any{"filter": map[string]any{"property": "object", "value": "data_source"}}, v2025).decodeInto(t, &l)
	wantDS := append(slices.Clone(srcs), h.seed.DataSourceIDs[single]...)
	got := ids(l.Results)
	slices.Sort(got)
	slices.Sort(wantDS)
	if l.Type != "page_or_data_source" || !slices.Equal(got, wantDS) || l.Results[0]["object"] != "data_source" {
		t.Fatalf("data_source search: %v, want %v (%+v)", got, wantDS, l)
	}
	if r := h.raw("POST", "/v1/search", map[string]any{"filter": map[string]any{"property": "object", "value": "database"}}, v2025); r.status != 400 {
		t.Fatalf("2025 search for databases: %d %s", r.status, r.body)
	}
	if r := h.raw("POST", "/v1/search", map[string]any{"filter": map[string]any{"property": "object", "value": "data_source"}}); r.status != 400 {
		t.Fatalf("2022 search for data sources: %d %s", r.status, r.body)
	}
	// Unshared databases take their data sources with them.
	if err := h.s.UnsharePage(h.ws, multi); err != nil {
		t.Fatal(err)
	}
	if r := h.raw("GET", "/v1/data_sources/"+srcs[0], nil, v2025); r.status != 404 {
		t.Fatalf("unshared data source: %d", r.status)
	}
}

func TestAddRowToDataSource(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 22, Pages: 1})
	db, err := h.s.AddMultiSourceDatabase(h.ws, PageParent(h.seed.PageIDs[0]), "Two")
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := h.s.DataSourceIDs(h.ws, db)
	if err != nil || len(srcs) != 2 {
		t.Fatalf("DataSourceIDs %v %v", srcs, err)
	}
	a, err := h.s.AddRow(h.ws, db, "in first")
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.s.AddRowToDataSource(h.ws, srcs[1], "in second")
	if err != nil {
		t.Fatal(err)
	}
	if got := h.queryAll("/v1/data_sources/"+srcs[0]+"/query", v2025); !slices.Equal(got, []string{a}) {
		t.Errorf("first source %v", got)
	}
	if got := h.queryAll("/v1/data_sources/"+srcs[1]+"/query", v2025); !slices.Equal(got, []string{b}) {
		t.Errorf("second source %v", got)
	}
	if _, err := h.s.AddRowToDataSource(h.ws, db, "x"); err == nil {
		t.Error("a database id accepted as a data source id")
	}
}

func TestSpeaksDataSources(t *testing.T) {
	for v, want := range map[string]bool{
		"2022-06-28": false, "2025-09-02": false, "2025-09-03": true, "2026-03-11": true, "latest": false, "": false,
	} {
		if got := speaksDataSources(v); got != want {
			t.Errorf("%q: %v", v, got)
		}
	}
}
