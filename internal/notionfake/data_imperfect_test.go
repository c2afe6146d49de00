package notionfake

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"
)

func setImperfections(t *testing.T, s *Server, im Imperfections) {
	t.Helper()
	if err := s.SetImperfections(im); err != nil {
		t.Fatal(err)
	}
}

func TestMultiSourceReadFails(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 30, Pages: 1, Databases: 1, RowsPerDatabase: 1, MultiSourceDatabases: 1})
	db := h.seed.DatabaseIDs[0]
	if r := h.raw("GET", "/v1/databases/"+db, nil); r.status != 200 {
		t.Fatalf("off: %d %s", r.status, r.body)
	}
	setImperfections(t, h.s, Imperfections{MultiSourceReadFails: true})
	if r := h.raw("GET", "/v1/databases/"+db, nil); r.status != 400 || r.json(t)["message"] != errMultiSource {
		t.Fatalf("on, 2022: %d %s", r.status, r.body)
	}
	if r := h.raw("GET", "/v1/databases/"+db, nil, v2025); r.status != 200 {
		t.Fatalf("on, 2025: %d %s", r.status, r.body)
	}
}

// propertyOf returns a row's property value object from a page GET.
func propertyOf(t *testing.T, h *dataHarness, pageID, name string) map[string]any {
	t.Helper()
	r := h.raw("GET", "/v1/pages/"+pageID, nil)
	if r.status != 200 {
		t.Fatalf("GET page: %d %s", r.status, r.body)
	}
	return r.json(t)["properties"].(map[string]any)[name].(map[string]any)
}

func TestReferenceTruncationAndPropertyItems(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 31, Pages: 1, Databases: 1, RowsPerDatabase: 4, ManyReferenceRows: 1})
	row := h.seed.RowIDs[0]
	for _, name := range []string{"Related", "Owner", "Notes"} {
		if got := len(propertyOf(t, h, row, name)[map[string]string{"Related": "relation", "Owner": "people", "Notes": "rich_text"}[name]].([]any)); got != ManyReferences {
			t.Fatalf("off: %s has %d items, want %d", name, got, ManyReferences)
		}
	}
	// Without the option, the same seed's rows are unchanged.
	plain := New(Options{Now: h.clock.Now}).SeedWorkspace(testWS, SeedSpec{Seed: 31, Pages: 1, Databases: 1, RowsPerDatabase: 4})
	if !slices.Equal(plain.RowIDs, h.seed.RowIDs) {
		t.Fatal("ManyReferenceRows changed the seeded ids")
	}

	setImperfections(t, h.s, Imperfections{TruncateReferences: true})
	for name, typ := range map[string]string{"Related": "relation", "Owner": "people", "Notes": "rich_text"} {
		v := propertyOf(t, h, row, name)
		if got := len(v[typ].([]any)); got != ReferenceLimit || v["has_more"] != true {
			t.Errorf("on: %s has %d items, has_more %v; want %d, true", name, got, v["has_more"], ReferenceLimit)
		}
	}
	// A short value is not cut and says so.
	if v := propertyOf(t, h, h.seed.RowIDs[1], "Related"); v["has_more"] != false {
		t.Errorf("short relation: %v", v)
	}

	// The property item endpoint pages through the whole list.
	rel := propertyOf(t, h, row, "Related")
	propID := rel["id"].(string)
	var all []string
	path := "/v1/pages/" + row + "/properties/" + url.PathEscape(propID)
	q := "?page_size=10"
	for range 10 {
		r := h.raw("GET", path+q, nil)
		m := r.json(t)
		if r.status != 200 || m["object"] != "list" || m["type"] != "property_item" {
			t.Fatalf("property items: %d %s", r.status, r.body)
		}
		pi := m["property_item"].(map[string]any)
		if pi["id"] != propID || pi["type"] != "relation" {
			t.Fatalf("property_item %v", pi)
		}
		for _, it := range m["results"].([]any) {
			item := it.(map[string]any)
			if item["object"] != "property_item" || item["type"] != "relation" {
				t.Fatalf("item %v", item)
			}
			all = append(all, item["relation"].(map[string]any)["id"].(string))
		}
		if m["has_more"] != true {
			if pi["next_url"] != nil {
				t.Errorf("last page next_url %v", pi["next_url"])
			}
			break
		}
		if pi["next_url"] == nil {
			t.Fatal("has_more without next_url")
		}
		q = "?page_size=10&start_cursor=" + url.QueryEscape(m["next_cursor"].(string))
	}
	if len(all) != ManyReferences || !slices.Contains(all, h.seed.RowIDs[3]) {
		t.Fatalf("property items: %d ids %v", len(all), all)
	}
	// A count rollup over the relation is cut to the first 25 on the page
	// and whole on the property item endpoint.
	rollup := propertyOf(t, h, row, "Related count")
	if got := rollup["rollup"].(map[string]any)["number"]; got != float64(ReferenceLimit) {
		t.Errorf("truncated rollup %v, want %d", got, ReferenceLimit)
	}
	r := h.raw("GET", "/v1/pages/"+row+"/properties/"+rollup["id"].(string)+"?page_size=100", nil)
	if m := r.json(t); r.status != 200 || m["property_item"].(map[string]any)["rollup"].(map[string]any)["number"] != float64(ManyReferences) ||
		len(m["results"].([]any)) != ManyReferences {
		t.Fatalf("rollup items: %d %s", r.status, r.body)
	}
	// A title of more than 25 rich text items is cut too.
	if err := h.s.EditPage(h.ws, row, func(p *Page) {
		var parts []any
		for i := range ManyReferences {
			parts = append(parts, RichText(fmt.Sprint(i))[0])
		}
		p.Properties["Name"] = parts
	}); err != nil {
		t.Fatal(err)
	}
	if v := propertyOf(t, h, row, "Name"); len(v["title"].([]any)) != ReferenceLimit || v["has_more"] != true {
		t.Errorf("title: %d items, has_more %v", len(v["title"].([]any)), v["has_more"])
	}
	setImperfections(t, h.s, Imperfections{})
	if v := propertyOf(t, h, row, "Related count"); v["rollup"].(map[string]any)["number"] != float64(ManyReferences) {
		t.Errorf("untruncated rollup %v", v)
	}
	// Single-value properties answer one property item.
	score := propertyOf(t, h, row, "Score")
	r = h.raw("GET", "/v1/pages/"+row+"/properties/"+url.PathEscape(score["id"].(string)), nil)
	if m := r.json(t); r.status != 200 || m["object"] != "property_item" || m["type"] != "number" || m["number"] != score["number"] {
		t.Fatalf("number item: %d %s", r.status, r.body)
	}
	// A regular page's title; unknown properties and cursors.
	if r := h.raw("GET", "/v1/pages/"+h.seed.PageIDs[0]+"/properties/title", nil); r.status != 200 || len(r.json(t)["results"].([]any)) != 1 {
		t.Fatalf("page title: %d %s", r.status, r.body)
	}
	if r := h.raw("GET", "/v1/pages/"+row+"/properties/nope", nil); r.status != 404 {
		t.Fatalf("unknown property: %d", r.status)
	}
	if r := h.raw("GET", path+"?start_cursor=zzz", nil); r.status != 400 {
		t.Fatalf("bad cursor: %d", r.status)
	}
}

func TestQueryResultLimit(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 32, Pages: 1, Databases: 1, RowsPerDatabase: 12})
	db := h.seed.DatabaseIDs[0]
	src := h.seed.DataSourceIDs[db][0]
	if r := h.raw("POST", "/v1/databases/"+db+"/query", map[string]any{}); r.json(t)["request_status"] != nil {
		t.Fatalf("off: request_status present: %s", r.body)
	}
	setImperfections(t, h.s, Imperfections{ResultLimit: true, ResultLimitSize: 7})
	for _, c := range []struct {
		path string
		mods []reqMod
	}{{"/v1/databases/" + db + "/query", nil}, {"/v1/data_sources/" + src + "/query", []reqMod{v2025}}} {
		var got []string
		body := map[string]any{"page_size": 3}
		for {
			var l dsList
			h.raw("POST", c.path, body, c.mods...).decodeInto(t, &l)
			if l.RequestStatus == nil || l.RequestStatus.Type != "incomplete" || l.RequestStatus.IncompleteReason != "query_result_limit_reached" {
				t.Fatalf("%s: request_status %+v", c.path, l.RequestStatus)
			}
			got = append(got, ids(l.Results)...)
			if !l.HasMore {
				break
			}
			body["start_cursor"] = *l.NextCursor
		}
		if !slices.Equal(got, h.seed.RowIDs[:7]) {
			t.Errorf("%s: %d rows %v, want the first 7", c.path, len(got), got)
		}
	}
	// Under the limit: complete.
	var l dsList
	h.raw("POST", "/v1/databases/"+db+"/query", map[string]any{"filter": map[string]any{
		"timestamp": "created_time", "created_time": map[string]any{"before": "2000-01-01"}}}).decodeInto(t, &l)
	if l.RequestStatus == nil || l.RequestStatus.Type != "complete" {
		t.Errorf("under the limit: %+v", l.RequestStatus)
	}
	if (Imperfections{ResultLimit: true}).resultLimit() != DefaultResultLimit {
		t.Error("default limit")
	}
}

// searchIDs returns the ids of every page search returns, paginated, and
// their last_edited_time.
func searchIDs(t *testing.T, h *dataHarness) map[string]string {
	t.Helper()
	out := map[string]string{}
	body := map[string]any{"filter": map[string]any{"property": "object", "value": "page"}, "page_size": 7}
	for range 100 {
		var l dsList
		h.raw("POST", "/v1/search", body).decodeInto(t, &l)
		for _, r := range l.Results {
			out[r["id"].(string)] = r["last_edited_time"].(string)
		}
		if !l.HasMore {
			return out
		}
		body["start_cursor"] = *l.NextCursor
	}
	t.Fatal("search does not end")
	return nil
}

func TestSearchOmitsAShare(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 33, Pages: 200})
	if got := len(searchIDs(t, h)); got != 200 {
		t.Fatalf("off: %d pages", got)
	}
	setImperfections(t, h.s, Imperfections{SearchOmitShare: 0.25})
	first := searchIDs(t, h)
	if n := len(first); n < 120 || n > 180 {
		t.Fatalf("share 0.25 of 200: search returns %d", n)
	}
	again := searchIDs(t, h)
	if len(again) != len(first) {
		t.Fatalf("omission is not deterministic: %d then %d", len(first), len(again))
	}
	for _, id := range h.seed.PageIDs {
		if _, ok := first[id]; !ok {
			if r := h.raw("GET", "/v1/pages/"+id, nil); r.status != 200 {
				t.Fatalf("omitted page %s GET: %d", id, r.status)
			}
			break
		}
	}
	if err := h.s.SetImperfections(Imperfections{SearchOmitShare: 2}); err == nil {
		t.Error("share 2 accepted")
	}
}

func TestSearchLag(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 34, Pages: 3})
	setImperfections(t, h.s, Imperfections{SearchLag: 5 * time.Minute})
	edited := h.seed.PageIDs[0]
	before := searchIDs(t, h)[edited]
	h.clock.Advance(2 * time.Minute)
	if err := h.s.TouchPage(h.ws, edited, "new text"); err != nil {
		t.Fatal(err)
	}
	added, err := h.s.AddPage(h.ws, WorkspaceParent(), "Fresh")
	if err != nil {
		t.Fatal(err)
	}
	got := searchIDs(t, h)
	if _, ok := got[added]; ok {
		t.Error("a page created within the lag is in search")
	}
	if got[edited] != before {
		t.Errorf("lagging search shows %s, want the old %s", got[edited], before)
	}
	if r := h.raw("GET", "/v1/pages/"+edited, nil); r.json(t)["last_edited_time"] == before {
		t.Error("GET shows the old time too")
	}
	h.clock.Advance(5 * time.Minute)
	got = searchIDs(t, h)
	if _, ok := got[added]; !ok || got[edited] == before {
		t.Errorf("after the lag: added %v, edited %s (before %s)", ok, got[edited], before)
	}
}

func TestLateSharingUnsharingAndTrash(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 35, Pages: 3, History: 48 * time.Hour})
	late, gone, trashed := h.seed.PageIDs[0], h.seed.PageIDs[1], h.seed.PageIDs[2]
	oldTime := h.raw("GET", "/v1/pages/"+late, nil).json(t)["last_edited_time"]
	if err := h.s.UnsharePage(h.ws, late); err != nil {
		t.Fatal(err)
	}
	if _, ok := searchIDs(t, h)[late]; ok {
		t.Fatal("unshared page in search")
	}
	h.clock.Advance(time.Hour)
	if err := h.s.SharePage(h.ws, late); err != nil {
		t.Fatal(err)
	}
	got := searchIDs(t, h)
	if got[late] == "" || got[late] != oldTime {
		t.Fatalf("late-shared page: search shows %q, want the old %v", got[late], oldTime)
	}
	if err := h.s.UnsharePage(h.ws, gone); err != nil {
		t.Fatal(err)
	}
	if r := h.raw("GET", "/v1/pages/"+gone, nil); r.status != 404 {
		t.Fatalf("unshared GET: %d", r.status)
	}
	if err := h.s.ArchivePage(h.ws, trashed); err != nil {
		t.Fatal(err)
	}
	if m := h.raw("GET", "/v1/pages/"+trashed, nil).json(t); m["in_trash"] != true {
		t.Fatalf("trashed GET: %v", m["in_trash"])
	}
	if _, ok := searchIDs(t, h)[trashed]; ok {
		t.Fatal("trashed page in search")
	}
	if err := h.s.SharePage(h.ws, "5a5a5a5a-5a5a-4a5a-8a5a-5a5a5a5a5a5a"); err == nil {
		t.Error("SharePage of an unknown id")
	}
}

func TestPermanentPoisons(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 36, Pages: 3, BlocksPerPage: 2})
	for i, c := range []struct {
		kind   PoisonKind
		target PoisonTarget
		status int
		code   string
	}{
		{PoisonRestricted, PoisonChildren, 403, "restricted_resource"},
		{PoisonNotFound, PoisonChildren, 404, "object_not_found"},
		{PoisonValidation, PoisonPageGet, 400, "validation_error"},
	} {
		id := h.seed.PageIDs[i]
		if _, err := h.s.Poison(h.ws, id, c.target, c.kind); err != nil {
			t.Fatal(err)
		}
		path := "/v1/pages/" + id
		if c.target == PoisonChildren {
			path = "/v1/blocks/" + id + "/children"
		}
		for range 3 { // permanent: every request
			r := h.raw("GET", path, nil)
			if m := r.json(t); r.status != c.status || m["code"] != c.code || m["object"] != "error" || m["message"] == "Injected failure." {
				t.Fatalf("%s: %d %s", c.kind, r.status, r.body)
			}
		}
	}
	if ps := h.s.PoisonedObjects(); len(ps) != 3 || ps[0].Served != 3 {
		t.Errorf("poisoned %+v", ps)
	}
	if !PoisonChildren.Takes(PoisonRestricted) || PoisonSearch.Takes(PoisonNotFound) {
		t.Error("Takes")
	}
}
