package sandbox

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/notionsync/notionsync/internal/notionfake"
)

// TestPoisonAPI: the admin API poisons objects by id, the first pages of a
// workspace and random pages across workspaces; poisoned objects fail every
// request until the poison is lifted, others never do.
func TestPoisonAPI(t *testing.T) {
	t.Parallel()
	sb, ts := startSandbox(t, smallConfig())
	tr := connect(t, sb, ts)
	pages := sb.Fake().AllPageIDs(sb.WorkspaceID())

	var res PoisonResponse
	if st, raw := call(t, ts, http.MethodPost, "/_sandbox/poison",
		`{"target":"page","kind":"malformed","ids":["`+pages[0]+`"]}`, &res); st != http.StatusOK {
		t.Fatalf("poison by id: %d %s", st, raw)
	}
	if len(res.Poisoned) != 1 || res.Poisoned[0].ID != pages[0] || res.Poisoned[0].PageID != pages[0] ||
		res.Poisoned[0].WorkspaceID != sb.WorkspaceID() {
		t.Fatalf("poisoned %+v", res.Poisoned)
	}
	if st, raw := call(t, ts, http.MethodPost, "/_sandbox/poison",
		`{"target":"children","kind":"server_error","pages":2}`, &res); st != http.StatusOK {
		t.Fatalf("poison first pages: %d %s", st, raw)
	}
	// The first pages not poisoned yet: pages[1] and pages[2].
	if len(res.Poisoned) != 2 || res.Poisoned[0].ID != pages[1] || res.Poisoned[1].ID != pages[2] {
		t.Fatalf("first pages %+v, want %v", res.Poisoned, pages[1:3])
	}
	r, body := notion(t, ts, tr.AccessToken, http.MethodGet, "/v1/pages/"+pages[0], "")
	if r.StatusCode != http.StatusOK || json.Valid([]byte(body)) {
		t.Fatalf("malformed page: %d %.100s", r.StatusCode, body)
	}
	for range 2 {
		r, body = notion(t, ts, tr.AccessToken, http.MethodGet, "/v1/blocks/"+pages[1]+"/children", "")
		if r.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "internal_server_error") {
			t.Fatalf("poisoned children: %d %.200s", r.StatusCode, body)
		}
	}
	if r, _ = notion(t, ts, tr.AccessToken, http.MethodGet, "/v1/pages/"+pages[1], ""); r.StatusCode != http.StatusOK {
		t.Fatalf("page GET of a children-poisoned page: %d", r.StatusCode)
	}
	if r, _ = notion(t, ts, tr.AccessToken, http.MethodGet, "/v1/pages/"+pages[3], ""); r.StatusCode != http.StatusOK {
		t.Fatalf("healthy page: %d", r.StatusCode)
	}

	var all PoisonResponse
	if st, raw := call(t, ts, http.MethodGet, "/_sandbox/poison", "", &all); st != http.StatusOK || len(all.Poisoned) != 3 {
		t.Fatalf("list: %d %s", st, raw)
	}
	served := map[string]int{}
	for _, p := range all.Poisoned {
		served[p.ID+"/"+string(p.Target)] = p.Served
	}
	if served[pages[0]+"/page"] != 1 || served[pages[1]+"/children"] != 2 || served[pages[2]+"/children"] != 0 {
		t.Fatalf("served %v", served)
	}
	st := sb.Stats()
	if st.Data.PoisonedAnswers != 3 || st.Faults.PoisonedObjects != 3 {
		t.Fatalf("stats: %+v %+v", st.Data, st.Faults)
	}

	// Lift one, then all.
	q := url.Values{"id": {pages[0]}, "target": {"page"}}
	var cl ClearPoisonResponse
	if st, raw := call(t, ts, http.MethodDelete, "/_sandbox/poison?"+q.Encode(), "", &cl); st != http.StatusOK || cl.Cleared != 1 {
		t.Fatalf("lift one: %d %s", st, raw)
	}
	if st, _ := call(t, ts, http.MethodDelete, "/_sandbox/poison?"+q.Encode(), "", nil); st != http.StatusNotFound {
		t.Fatalf("lift it again: %d, want 404", st)
	}
	if r, _ = notion(t, ts, tr.AccessToken, http.MethodGet, "/v1/pages/"+pages[0], ""); r.StatusCode != http.StatusOK {
		t.Fatalf("lifted page: %d", r.StatusCode)
	}
	if st, raw := call(t, ts, http.MethodDelete, "/_sandbox/poison", "", &cl); st != http.StatusOK || cl.Cleared != 2 {
		t.Fatalf("clear: %d %s", st, raw)
	}
	if r, _ = notion(t, ts, tr.AccessToken, http.MethodGet, "/v1/blocks/"+pages[1]+"/children", ""); r.StatusCode != http.StatusOK {
		t.Fatalf("cleared children: %d", r.StatusCode)
	}
}

// TestPoisonRandomAcrossWorkspaces: random pages of fleet workspaces, the
// same for the same seed, none twice.
func TestPoisonRandomAcrossWorkspaces(t *testing.T) {
	t.Parallel()
	_, ts := startSandbox(t, smallConfig())
	if st, raw := call(t, ts, http.MethodPost, "/_sandbox/workspaces",
		`{"count":4,"prefix":"w-","pages":3,"blocks_per_page":2,"redirect_uri":"http://localhost/cb"}`, nil); st != http.StatusCreated {
		t.Fatalf("seed: %d %s", st, raw)
	}
	body := `{"target":"page","kind":"html","pages":5,"workspaces":["w-0","w-1","w-3"],"seed":11}`
	var a, b PoisonResponse
	if st, raw := call(t, ts, http.MethodPost, "/_sandbox/poison", body, &a); st != http.StatusOK || len(a.Poisoned) != 5 {
		t.Fatalf("random: %d %s", st, raw)
	}
	call(t, ts, http.MethodDelete, "/_sandbox/poison", "", nil)
	if st, raw := call(t, ts, http.MethodPost, "/_sandbox/poison", body, &b); st != http.StatusOK || !slices.Equal(a.Poisoned, b.Poisoned) {
		t.Fatalf("same seed: %d %s, first %+v", st, raw, a.Poisoned)
	}
	seen := map[string]bool{}
	for _, p := range a.Poisoned {
		if p.WorkspaceID == "w-2" || seen[p.ID] || p.Kind != notionfake.PoisonHTML {
			t.Fatalf("bad pick %+v", p)
		}
		seen[p.ID] = true
	}
	// 9 pages in the three workspaces, 5 poisoned: 5 more cannot be.
	if st, raw := call(t, ts, http.MethodPost, "/_sandbox/poison",
		`{"target":"children","kind":"html","pages":5,"workspaces":["w-0","w-1","w-3"]}`, nil); st != http.StatusBadRequest {
		t.Fatalf("too many: %d %s", st, raw)
	}
}

func TestPoisonRejectsBadInput(t *testing.T) {
	t.Parallel()
	sb, ts := startSandbox(t, smallConfig())
	page := sb.Seed().PageIDs[0]
	db := sb.Seed().DatabaseIDs[0]
	for body, want := range map[string]int{
		`{}`: http.StatusBadRequest,
		`{"target":"search","kind":"html","pages":1}`:                                               http.StatusBadRequest,
		`{"target":"page","kind":"slow","pages":1}`:                                                 http.StatusBadRequest,
		`{"target":"page","kind":"html"}`:                                                           http.StatusBadRequest,
		`{"target":"page","kind":"html","pages":1,"ids":["` + page + `"]}`:                          http.StatusBadRequest,
		`{"target":"page","kind":"html","pages":-1}`:                                                http.StatusBadRequest,
		`{"target":"page","kind":"html","pages":1,"seed":3}`:                                        http.StatusBadRequest,
		`{"target":"page","kind":"html","pages":1,"workspace":"x","random":true}`:                   http.StatusBadRequest,
		`{"target":"page","kind":"html","pages":1000}`:                                              http.StatusBadRequest,
		`{"target":"children","kind":"html","ids":["` + db + `"]}`:                                  http.StatusBadRequest,
		`{"target":"page","kind":"html","ids":["` + page + `","5a5a5a5a5a5a4a5a8a5a5a5a5a5a5a5a"]}`: http.StatusNotFound,
		`{"target":"page","kind":"html","ids":["` + page + `"],"workspace":"nope"}`:                 http.StatusNotFound,
		`{"target":"page","kind":"html","pages":1,"workspaces":["nope"]}`:                           http.StatusNotFound,
		`{"target":"page","kind":"html","pages":1,"bogus":true}`:                                    http.StatusBadRequest,
		`{"target":"page","kind":"cycle_self","pages":1}`:                                           http.StatusBadRequest,
		`{"target":"search","kind":"bad_id","pages":1}`:                                             http.StatusBadRequest,
		`{"target":"query","kind":"bad_id","pages":1}`:                                              http.StatusBadRequest,
		`{"target":"query","kind":"bad_id","ids":["` + page + `"]}`:                                 http.StatusBadRequest,
		`{"target":"children","kind":"bad_id","pages":1}`:                                           http.StatusBadRequest,
	} {
		if st, raw := call(t, ts, http.MethodPost, "/_sandbox/poison", body, nil); st != want {
			t.Errorf("%s: %d %s, want %d", body, st, raw, want)
		}
	}
	if n := len(sb.Fake().PoisonedObjects()); n != 0 {
		t.Errorf("refused requests poisoned %d objects", n)
	}
	if st, _ := call(t, ts, http.MethodDelete, "/_sandbox/poison?id="+page, "", nil); st != http.StatusBadRequest {
		t.Errorf("lift without target: %d", st)
	}
}

// TestHostilePoisonAPI: the hostile kinds go through the same API: by
// pages for children, by database id for a query, and for a workspace's
// search without ids.
func TestHostilePoisonAPI(t *testing.T) {
	t.Parallel()
	sb, ts := startSandbox(t, smallConfig())
	db := sb.Seed().DatabaseIDs[0]
	for _, body := range []string{
		`{"target":"children","kind":"endless_new","pages":1}`,
		`{"target":"children","kind":"cycle_ancestor","pages":1}`,
		`{"target":"search","kind":"bad_id"}`,
		`{"target":"query","kind":"bad_id","ids":["` + db + `"]}`,
	} {
		var res PoisonResponse
		if st, raw := call(t, ts, http.MethodPost, "/_sandbox/poison", body, &res); st != http.StatusOK || len(res.Poisoned) != 1 {
			t.Fatalf("%s: %d %s", body, st, raw)
		}
	}
	if n := len(sb.Fake().PoisonedObjects()); n != 4 {
		t.Fatalf("%d poisoned objects, want 4", n)
	}
}

// TestInvalidCursorFaults: invalid_cursor_next refuses the next cursors,
// only for requests that carry one.
func TestInvalidCursorFaults(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	cfg.Seed.Pages = 0
	cfg.Seed.NestedPages = 0
	cfg.Seed.HugePages = 1
	cfg.Seed.HugePageBlocks = 150
	sb, ts := startSandbox(t, cfg)
	tr := connect(t, sb, ts)
	if st, raw := call(t, ts, http.MethodPost, "/_sandbox/faults", `{"invalid_cursor_next":1,"target":"token"}`, nil); st != http.StatusBadRequest {
		t.Fatalf("for the token endpoint: %d %s", st, raw)
	}
	var fs FaultState
	if st, raw := call(t, ts, http.MethodPost, "/_sandbox/faults", `{"invalid_cursor_next":1}`, &fs); st != http.StatusOK || fs.PendingInvalidCursors != 1 {
		t.Fatalf("faults: %d %s", st, raw)
	}
	huge := sb.Seed().HugePageIDs[0]
	r, body := notion(t, ts, tr.AccessToken, http.MethodGet, "/v1/blocks/"+huge+"/children?page_size=100", "")
	var list struct {
		NextCursor string `json:"next_cursor"`
	}
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || list.NextCursor == "" {
		t.Fatalf("first page: %d %.200s", r.StatusCode, body)
	}
	path := "/v1/blocks/" + huge + "/children?page_size=100&start_cursor=" + list.NextCursor
	r, body = notion(t, ts, tr.AccessToken, http.MethodGet, path, "")
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(body, "The start_cursor provided is invalid: "+list.NextCursor) {
		t.Fatalf("refused cursor: %d %.200s", r.StatusCode, body)
	}
	if r, body = notion(t, ts, tr.AccessToken, http.MethodGet, path, ""); r.StatusCode != http.StatusOK {
		t.Fatalf("same cursor again: %d %.200s", r.StatusCode, body)
	}
	r, _ = notion(t, ts, tr.AccessToken, http.MethodGet, "/v1/blocks/"+huge+"/children?start_cursor=garbage", "")
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("garbage cursor: %d", r.StatusCode)
	}
	st := sb.Stats()
	if st.Data.InvalidCursors != 2 || st.Data.InjectedInvalidCursors != 1 || st.Faults.PendingInvalidCursors != 0 {
		t.Fatalf("stats %+v %+v", st.Data, st.Faults)
	}
}

// TestHugeWorkspacesAndExpectedFor: huge_pages seeds huge pages in fleet
// workspaces, and /expected?workspace= counts their blocks.
func TestHugeWorkspacesAndExpectedFor(t *testing.T) {
	t.Parallel()
	_, ts := startSandbox(t, smallConfig())
	var resp WorkspacesResponse
	if st, raw := call(t, ts, http.MethodPost, "/_sandbox/workspaces",
		`{"count":2,"prefix":"h-","pages":2,"blocks_per_page":3,"huge_pages":1,"huge_page_blocks":1200,"huge_text_bytes":5000,"unknown_blocks":true,"redirect_uri":"http://localhost/cb"}`,
		&resp); st != http.StatusCreated {
		t.Fatalf("seed: %d %s", st, raw)
	}
	for _, ws := range resp.Workspaces {
		if ws.Pages != 3 || len(ws.HugePageIDs) != 1 {
			t.Fatalf("workspace %+v", ws)
		}
		var exp ExpectedResponse
		if st, raw := call(t, ts, http.MethodGet, "/_sandbox/expected?workspace="+ws.WorkspaceID, "", &exp); st != http.StatusOK {
			t.Fatalf("expected: %d %s", st, raw)
		}
		if exp.WorkspaceID != ws.WorkspaceID || exp.PageCount != 3 || exp.BlockCount != ws.Blocks {
			t.Fatalf("expected %+v for %+v", exp, ws)
		}
		const hugeBlocks = 1200 + 4*5 + 1 // 4 toggles of 3 + 2 each; the unknown block
		i := slices.IndexFunc(exp.Pages, func(p ExpectedPage) bool { return p.ID == ws.HugePageIDs[0] })
		if i < 0 || exp.Pages[i].Blocks != hugeBlocks {
			t.Fatalf("huge page in %+v, want %d blocks", exp.Pages, hugeBlocks)
		}
	}
	if st, _ := call(t, ts, http.MethodGet, "/_sandbox/expected?workspace=nope", "", nil); st != http.StatusNotFound {
		t.Fatalf("unknown workspace: %d", st)
	}
	for _, body := range []string{
		`{"count":1,"huge_pages":11,"redirect_uri":"http://x/cb"}`,
		`{"count":1,"huge_pages":1,"huge_page_blocks":0,"redirect_uri":"http://x/cb"}`,
		`{"count":1,"huge_pages":1,"huge_text_bytes":2000000,"redirect_uri":"http://x/cb"}`,
		`{"count":200,"huge_pages":10,"huge_page_blocks":1000,"redirect_uri":"http://x/cb"}`,
	} {
		if st, raw := call(t, ts, http.MethodPost, "/_sandbox/workspaces", body, nil); st != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", body, st, raw)
		}
	}
}

// The permanent kinds are served through the admin API for a page and a
// database query, and a query poison is lifted by id and target.
func TestPoisonPermanentKindsAPI(t *testing.T) {
	t.Parallel()
	sb, ts := startSandbox(t, smallConfig())
	tr := connect(t, sb, ts)
	page, db := sb.Seed().PageIDs[0], sb.Seed().DatabaseIDs[0]
	for _, body := range []string{
		`{"target":"page","kind":"restricted_resource","ids":["` + page + `"]}`,
		`{"target":"query","kind":"validation_error","ids":["` + db + `"]}`,
	} {
		if st, raw := call(t, ts, http.MethodPost, "/_sandbox/poison", body, nil); st != http.StatusOK {
			t.Fatalf("poison %s: %d %s", body, st, raw)
		}
	}
	if r, body := notion(t, ts, tr.AccessToken, http.MethodGet, "/v1/pages/"+page, ""); r.StatusCode != http.StatusForbidden ||
		!strings.Contains(body, `"restricted_resource"`) {
		t.Fatalf("restricted page: %d %.200s", r.StatusCode, body)
	}
	if r, body := notion(t, ts, tr.AccessToken, http.MethodPost, "/v1/databases/"+db+"/query", "{}"); r.StatusCode != http.StatusBadRequest ||
		!strings.Contains(body, `"validation_error"`) {
		t.Fatalf("poisoned query: %d %.200s", r.StatusCode, body)
	}
	if st, raw := call(t, ts, http.MethodDelete, "/_sandbox/poison?target=query&id="+db, "", nil); st != http.StatusOK {
		t.Fatalf("lift the query poison: %d %s", st, raw)
	}
	if r, body := notion(t, ts, tr.AccessToken, http.MethodPost, "/v1/databases/"+db+"/query", "{}"); r.StatusCode != http.StatusOK {
		t.Fatalf("query after the poison was lifted: %d %.200s", r.StatusCode, body)
	}
}
