package sandbox

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestWorkspacesSeedsAndIssuesCodes: POST /_sandbox/workspaces seeds
// separate workspaces whose codes connect each to its own content, and
// /code re-authorizes one (its old connection dies).
func TestWorkspacesSeedsAndIssuesCodes(t *testing.T) {
	_, ts := startSandbox(t, smallConfig())
	const redirect = "http://localhost/cb"
	var resp WorkspacesResponse
	status, body := call(t, ts, http.MethodPost, "/_sandbox/workspaces",
		`{"count":3,"prefix":"f-","start":5,"pages":2,"blocks_per_page":3,"redirect_uri":"`+redirect+`"}`, &resp)
	if status != http.StatusCreated {
		t.Fatalf("status %d: %s", status, body)
	}
	if len(resp.Workspaces) != 3 {
		t.Fatalf("got %d workspaces, want 3", len(resp.Workspaces))
	}
	seen := map[string]bool{}
	var first tokenResult
	for i, ws := range resp.Workspaces {
		if want := "f-" + string(rune('5'+i)); ws.WorkspaceID != want {
			t.Errorf("workspace %d is %q, want %q", i, ws.WorkspaceID, want)
		}
		if ws.Pages != 2 || ws.Blocks < 6 || ws.Code == "" || seen[ws.Code] {
			t.Errorf("workspace %+v: want 2 pages, at least 6 blocks and a fresh code", ws)
		}
		seen[ws.Code] = true
		st, tr, err := grant(t, ts, `{"grant_type":"authorization_code","code":"`+ws.Code+`","redirect_uri":"`+redirect+`"}`)
		if err != nil || st != http.StatusOK || tr.WorkspaceID != ws.WorkspaceID {
			t.Fatalf("exchange for %s: %d %+v %v", ws.WorkspaceID, st, tr.WorkspaceID, err)
		}
		r, raw := notion(t, ts, tr.AccessToken, http.MethodPost, "/v1/search", `{"filter":{"property":"object","value":"page"}}`)
		var res struct {
			Results []json.RawMessage `json:"results"`
		}
		if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(raw), &res) != nil || len(res.Results) != 2 {
			t.Fatalf("search in %s: %d, %d results, want 2: %.200s", ws.WorkspaceID, r.StatusCode, len(res.Results), raw)
		}
		if i == 0 {
			first = tr
		}
	}

	var cr CodeResponse
	if status, body := call(t, ts, http.MethodPost, "/_sandbox/workspaces/f-5/code", `{"redirect_uri":"`+redirect+`"}`, &cr); status != http.StatusOK || cr.Code == "" {
		t.Fatalf("code: %d %s", status, body)
	}
	if st, _, err := grant(t, ts, `{"grant_type":"authorization_code","code":"`+cr.Code+`","redirect_uri":"`+redirect+`"}`); err != nil || st != http.StatusOK {
		t.Fatalf("re-authorization: %d %v", st, err)
	}
	if st, _, _ := refresh(t, ts, first.RefreshToken); st != http.StatusBadRequest {
		t.Errorf("the replaced connection's refresh token answered %d, want 400 invalid_grant", st)
	}
	if strings.Contains(body, "nrt_") || strings.Contains(body, "ntn_") {
		t.Errorf("the admin API answered a token: %s", body)
	}
}

// TestWorkspacesRichContent: databases, rows, nested pages, multi-source
// databases and rows with many references, as bench/fleet's fidelity
// scenario seeds them.
func TestWorkspacesRichContent(t *testing.T) {
	sb, ts := startSandbox(t, smallConfig())
	var resp WorkspacesResponse
	status, body := call(t, ts, http.MethodPost, "/_sandbox/workspaces",
		`{"count":2,"prefix":"r-","pages":4,"nested_pages":2,"databases":2,"rows_per_database":6,
		"multi_source_databases":1,"many_reference_rows":1,"redirect_uri":"http://localhost/cb"}`, &resp)
	if status != http.StatusCreated {
		t.Fatalf("status %d: %s", status, body)
	}
	for _, ws := range resp.Workspaces {
		// 4 pages + 2×6 rows + 6 rows of the second data source.
		if ws.Pages != 4+12+6 {
			t.Errorf("%s: %d pages and rows, want 22", ws.WorkspaceID, ws.Pages)
		}
		truth, err := sb.GroundTruth(ws.WorkspaceID)
		if err != nil {
			t.Fatal(err)
		}
		sources := 0
		for _, o := range truth.Objects {
			if o.Kind == "data_source" {
				sources++
			}
		}
		if sources != 3 {
			t.Errorf("%s: %d data sources, want 3", ws.WorkspaceID, sources)
		}
	}
	// archive and unshare take ?workspace=.
	ids := sb.Fake().AllPageIDs("r-1")
	for _, path := range []string{"/_sandbox/pages/" + ids[0] + "/archive?workspace=r-1", "/_sandbox/pages/" + ids[1] + "/unshare?workspace=r-1"} {
		if st, raw := call(t, ts, http.MethodPost, path, "", nil); st != http.StatusOK {
			t.Fatalf("%s: %d %s", path, st, raw)
		}
	}
	truth, err := sb.GroundTruth("r-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range truth.Objects {
		if (o.ID == ids[0] && !o.InTrash) || (o.ID == ids[1] && !o.Unshared) {
			t.Errorf("after archive and unshare in r-1: %+v", o)
		}
	}
}

func TestWorkspacesRejectsBadInput(t *testing.T) {
	cfg := smallConfig()
	cfg.WorkspaceID = "fleet-7"
	_, ts := startSandbox(t, cfg)
	for _, body := range []string{
		`{"count":0,"redirect_uri":"http://x/cb"}`,
		`{"count":20001,"redirect_uri":"http://x/cb"}`,
		`{"count":1}`,
		`{"count":1,"redirect_uri":"relative"}`,
		`{"count":1,"pages":101,"redirect_uri":"http://x/cb"}`,
		`{"count":10,"redirect_uri":"http://x/cb"}`,
		`{"count":1,"bogus":1,"redirect_uri":"http://x/cb"}`,
		`{"count":1,"databases":11,"redirect_uri":"http://x/cb"}`,
		`{"count":1,"databases":1,"rows_per_database":1001,"redirect_uri":"http://x/cb"}`,
		`{"count":1,"pages":2,"nested_pages":3,"redirect_uri":"http://x/cb"}`,
		`{"count":1,"databases":1,"multi_source_databases":2,"redirect_uri":"http://x/cb"}`,
		`{"count":1,"databases":1,"rows_per_database":2,"many_reference_rows":3,"redirect_uri":"http://x/cb"}`,
	} {
		if status, raw := call(t, ts, http.MethodPost, "/_sandbox/workspaces", body, nil); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", body, status, raw)
		}
	}
	if status, raw := call(t, ts, http.MethodPost, "/_sandbox/workspaces/x/code", `{}`, nil); status != http.StatusBadRequest {
		t.Errorf("code without redirect_uri: %d %s, want 400", status, raw)
	}
}

// TestFaultsMalformedAndHTML: the admin API queues truncated-JSON and HTML
// answers for data requests, and refuses them for the token endpoint.
func TestFaultsMalformedAndHTML(t *testing.T) {
	sb, ts := startSandbox(t, smallConfig())
	tr := connect(t, sb, ts)
	if status, raw := call(t, ts, http.MethodPost, "/_sandbox/faults", `{"malformed_next":1,"target":"token"}`, nil); status != http.StatusBadRequest {
		t.Errorf("malformed_next for the token endpoint: %d %s, want 400", status, raw)
	}
	var st FaultState
	if status, raw := call(t, ts, http.MethodPost, "/_sandbox/faults", `{"malformed_next":1,"html_error_next":1}`, &st); status != http.StatusOK || st.PendingDataFaults != 2 {
		t.Fatalf("faults: %d %s", status, raw)
	}
	r, raw := notion(t, ts, tr.AccessToken, http.MethodPost, "/v1/search", `{}`)
	if r.StatusCode != http.StatusOK || json.Valid([]byte(raw)) {
		t.Errorf("first answer: %d, valid JSON %v; want 200 with truncated JSON", r.StatusCode, json.Valid([]byte(raw)))
	}
	r, raw = notion(t, ts, tr.AccessToken, http.MethodPost, "/v1/search", `{}`)
	if r.StatusCode != http.StatusForbidden || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("second answer: %d %q, want 403 text/html: %.100s", r.StatusCode, r.Header.Get("Content-Type"), raw)
	}
}
