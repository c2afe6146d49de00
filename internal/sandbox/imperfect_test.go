package sandbox

import (
	"time"

	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/notionsync/notionsync/internal/notionfake"
)

func TestImperfectionsAdmin(t *testing.T) {
	cfg := smallConfig()
	cfg.Seed.MultiSourceDatabases = 1
	cfg.Seed.ManyReferenceRows = 1
	cfg.Seed.Databases = 2
	sb, ts := startSandbox(t, cfg)
	tok := connect(t, sb, ts).AccessToken

	var ws WorkspaceResponse
	call(t, ts, http.MethodGet, "/_sandbox/workspace", "", &ws)
	db := ws.DatabaseIDs[0]
	if len(ws.DataSourceIDs[db]) != 2 || len(ws.RowsByDataSource[ws.DataSourceIDs[db][1]]) != 3 ||
		ws.Seed.MultiSourceDatabases != 1 || ws.Seed.ManyReferenceRows != 1 {
		t.Fatalf("workspace: %+v", ws)
	}

	var im Imperfections
	if status, body := call(t, ts, http.MethodGet, "/_sandbox/imperfections", "", &im); status != 200 || im != imperfectionsJSON(notionfake.Imperfections{}) {
		t.Fatalf("default imperfections: %d %s", status, body)
	}
	// Off by default: the 2022 database GET works, the values are whole.
	if resp, body := notion(t, ts, tok, http.MethodGet, "/v1/databases/"+db, ""); resp.StatusCode != 200 {
		t.Fatalf("database GET: %d %s", resp.StatusCode, body)
	}
	status, body := call(t, ts, http.MethodPost, "/_sandbox/imperfections",
		`{"multi_source_read_fails":true,"truncate_references":true,"result_limit":true,"result_limit_size":2,"search_omit_share":0.5,"search_lag":"5m"}`, &im)
	if status != 200 || !im.MultiSourceReadFails || !im.TruncateReferences || !im.ResultLimit || im.ResultLimitSize != 2 ||
		im.SearchOmitShare != 0.5 || im.SearchLag != "5m0s" {
		t.Fatalf("set: %d %s", status, body)
	}
	got := sb.Fake().Imperfections()
	if !got.MultiSourceReadFails || got.SearchLag.String() != "5m0s" {
		t.Fatalf("fake has %+v", got)
	}
	if resp, body := notion(t, ts, tok, http.MethodGet, "/v1/databases/"+db, ""); resp.StatusCode != 400 {
		t.Fatalf("database GET with multi_source_read_fails: %d %s", resp.StatusCode, body)
	}
	// The second database has one data source: its query stops at 2 of 3.
	var l struct {
		Results       []any `json:"results"`
		RequestStatus struct {
			Type string `json:"type"`
		} `json:"request_status"`
	}
	_, body = notion(t, ts, tok, http.MethodPost, "/v1/databases/"+ws.DatabaseIDs[1]+"/query", `{}`)
	if err := json.Unmarshal([]byte(body), &l); err != nil || len(l.Results) != 2 || l.RequestStatus.Type != "incomplete" {
		t.Fatalf("limited query: %v %s", err, body)
	}
	if resp, qbody := notion(t, ts, tok, http.MethodPost, "/v1/databases/"+db+"/query", `{}`); resp.StatusCode != 400 {
		t.Fatalf("2022 query of the multi-source database: %d %s", resp.StatusCode, qbody)
	}
	// A partial change keeps the rest.
	call(t, ts, http.MethodPost, "/_sandbox/imperfections", `{"search_lag":"0s","multi_source_read_fails":false,"cursor_expiry":"90s"}`, &im)
	if im.SearchLag != "0s" || im.MultiSourceReadFails || !im.TruncateReferences || im.ResultLimitSize != 2 || im.CursorExpiry != "1m30s" {
		t.Fatalf("partial change: %+v", im)
	}
	if got := sb.Fake().Imperfections().CursorExpiry; got != 90*time.Second {
		t.Fatalf("fake's CursorExpiry %v, want 90s", got)
	}
	for _, bad := range []string{`{"search_omit_share":1.5}`, `{"search_lag":"soon"}`, `{"result_limit_size":-1}`, `{"nope":1}`,
		`{"cursor_expiry":"later"}`, `{"cursor_expiry":"-1s"}`} {
		if status, body := call(t, ts, http.MethodPost, "/_sandbox/imperfections", bad, nil); status != 400 {
			t.Errorf("%s: %d %s", bad, status, body)
		}
	}
}

func TestShareUnshareAdmin(t *testing.T) {
	sb, ts := startSandbox(t, smallConfig())
	tok := connect(t, sb, ts).AccessToken
	id := sb.seed.PageIDs[0]
	before, _ := notion(t, ts, tok, http.MethodGet, "/v1/pages/"+id, "")
	if before.StatusCode != 200 {
		t.Fatalf("GET: %d", before.StatusCode)
	}
	if status, body := call(t, ts, http.MethodPost, "/_sandbox/pages/"+id+"/unshare", "", nil); status != 200 {
		t.Fatalf("unshare: %d %s", status, body)
	}
	if resp, _ := notion(t, ts, tok, http.MethodGet, "/v1/pages/"+id, ""); resp.StatusCode != 404 {
		t.Fatalf("unshared GET: %d", resp.StatusCode)
	}
	if status, body := call(t, ts, http.MethodPost, "/_sandbox/pages/"+id+"/share", "", nil); status != 200 {
		t.Fatalf("share: %d %s", status, body)
	}
	if resp, _ := notion(t, ts, tok, http.MethodGet, "/v1/pages/"+id, ""); resp.StatusCode != 200 {
		t.Fatalf("shared again GET: %d", resp.StatusCode)
	}
	if status, _ := call(t, ts, http.MethodPost, "/_sandbox/pages/5a5a5a5a-5a5a-4a5a-8a5a-5a5a5a5a5a5a/share", "", nil); status != 404 {
		t.Fatalf("share unknown: %d", status)
	}
}

func TestPermanentPoisonThroughAdmin(t *testing.T) {
	sb, ts := startSandbox(t, smallConfig())
	tok := connect(t, sb, ts).AccessToken
	id := sb.seed.PageIDs[1]
	if status, body := call(t, ts, http.MethodPost, "/_sandbox/poison",
		`{"target":"children","kind":"restricted_resource","ids":["`+id+`"]}`, nil); status != 200 {
		t.Fatalf("poison: %d %s", status, body)
	}
	resp, body := notion(t, ts, tok, http.MethodGet, "/v1/blocks/"+id+"/children", "")
	var e struct{ Code string }
	_ = json.Unmarshal([]byte(body), &e)
	if resp.StatusCode != 403 || e.Code != "restricted_resource" {
		t.Fatalf("children: %d %s", resp.StatusCode, body)
	}
}

func TestSeedFlags(t *testing.T) {
	cfg, err := ParseFlags([]string{"-multi-source-databases", "1", "-many-reference-rows", "2"}, func(string) string { return "" }, io.Discard)
	if err != nil || cfg.Seed.MultiSourceDatabases != 1 || cfg.Seed.ManyReferenceRows != 2 {
		t.Fatalf("flags: %+v %v", cfg.Seed, err)
	}
	if _, err := ParseFlags([]string{"-multi-source-databases", "-1"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("negative -multi-source-databases accepted")
	}
}

func TestAddDatabaseAndDataSourceRow(t *testing.T) {
	sb, ts := startSandbox(t, smallConfig())
	tok := connect(t, sb, ts).AccessToken
	var db struct {
		ID            string   `json:"id"`
		DataSourceIDs []string `json:"data_source_ids"`
	}
	if status, body := call(t, ts, http.MethodPost, "/_sandbox/databases",
		`{"title":"Two","parent_id":"`+sb.seed.PageIDs[0]+`","data_sources":2}`, &db); status != 201 || len(db.DataSourceIDs) != 2 {
		t.Fatalf("add database: %d %s", status, body)
	}
	var row struct{ ID string }
	if status, body := call(t, ts, http.MethodPost, "/_sandbox/pages",
		`{"title":"r","data_source_id":"`+db.DataSourceIDs[1]+`"}`, &row); status != 201 {
		t.Fatalf("add row: %d %s", status, body)
	}
	if resp, body := notion(t, ts, tok, http.MethodPost, "/v1/databases/"+db.ID+"/query", `{}`); resp.StatusCode != 400 {
		t.Fatalf("2022 query of a two-source database: %d %s", resp.StatusCode, body)
	}
	if status, _ := call(t, ts, http.MethodPost, "/_sandbox/pages", `{"title":"r","data_source_id":"x","database_id":"y"}`, nil); status != 400 {
		t.Fatalf("two parents: %d", status)
	}
	if status, _ := call(t, ts, http.MethodPost, "/_sandbox/databases", `{"title":"x","data_sources":3}`, nil); status != 400 {
		t.Fatalf("3 data sources: %d", status)
	}
	// Under 2025-09-03 the row is in the second data source.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+"/v1/data_sources/"+db.DataSourceIDs[1]+"/query", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Notion-Version", "2025-09-03")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l struct {
		Results []struct{ ID string } `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil || resp.StatusCode != 200 || len(l.Results) != 1 || l.Results[0].ID != row.ID {
		t.Fatalf("data source query: %d %v %+v", resp.StatusCode, err, l)
	}
}
