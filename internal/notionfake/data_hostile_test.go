package notionfake

import (
	"errors"
	"strings"
	"testing"
)

// results returns the ids of a list answer's results, its has_more and its
// next_cursor.
func listOf(t *testing.T, r rawReply) (ids []any, more any, next any) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	m := r.json(t)
	res, _ := m["results"].([]any)
	for _, x := range res {
		ids = append(ids, x.(map[string]any)["id"])
	}
	return ids, m["has_more"], m["next_cursor"]
}

func TestHostileChildren(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 45, Pages: 6, BlocksPerPage: 2, BlockDepth: 2})
	pg := h.seed.PageIDs
	for i, k := range []PoisonKind{PoisonCycleSelf, PoisonCycleAncestor, PoisonEndlessSame, PoisonEndlessNew, PoisonHuge, PoisonWrongTypes} {
		if _, err := h.s.Poison(h.ws, pg[i], PoisonChildren, k); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	// cycle_self: the page lists itself, with children.
	ids, _, _ := listOf(t, h.raw("GET", childrenPath(pg[0], ""), nil))
	if ids[len(ids)-1] != pg[0] {
		t.Fatalf("cycle_self: results %v do not end with the page", ids)
	}
	// cycle_ancestor of a page: a made-up block whose children list the page.
	ids, _, _ = listOf(t, h.raw("GET", childrenPath(pg[1], ""), nil))
	anc := ids[len(ids)-1].(string)
	if back, _, _ := listOf(t, h.raw("GET", childrenPath(anc, ""), nil)); len(back) != 1 || back[0] != pg[1] {
		t.Fatalf("cycle_ancestor: %s lists %v, want the page", anc, back)
	}
	// endless_same: the same cursor for ever.
	_, more, c1 := listOf(t, h.raw("GET", childrenPath(pg[2], ""), nil))
	_, _, c2 := listOf(t, h.raw("GET", childrenPath(pg[2], c1.(string)), nil))
	if more != true || c1 != c2 {
		t.Fatalf("endless_same: has_more %v, cursors %v then %v", more, c1, c2)
	}
	// endless_new: new blocks and a new cursor each time.
	a, _, n1 := listOf(t, h.raw("GET", childrenPath(pg[3], ""), nil))
	b, _, n2 := listOf(t, h.raw("GET", childrenPath(pg[3], n1.(string)), nil))
	if len(a) != 100 || a[0] == b[0] || n1 == n2 {
		t.Fatalf("endless_new: %d results, first %v/%v, cursors %v/%v", len(a), a[0], b[0], n1, n2)
	}
	// huge: megabytes per answer.
	if r := h.raw("GET", childrenPath(pg[4], ""), nil); len(r.body) < 100*HostileHugeBlockBytes {
		t.Fatalf("huge: %d bytes", len(r.body))
	}
	// wrong_types: fields of the wrong JSON type.
	m := h.raw("GET", childrenPath(pg[5], ""), nil).json(t)
	if _, ok := m["results"].(map[string]any); !ok || m["has_more"] != "yes" {
		t.Fatalf("wrong_types: %v", m)
	}
	for _, p := range h.s.PoisonedObjects() {
		if p.Served == 0 {
			t.Errorf("%s served nothing", p.Kind)
		}
	}
	// Lifted: the page's own content again.
	h.s.ClearPoison()
	if ids, more, _ := listOf(t, h.raw("GET", childrenPath(pg[3], ""), nil)); len(ids) != 2 || more != false {
		t.Fatalf("after ClearPoison: %v %v", ids, more)
	}
}

func TestHostileBadIDs(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 46, Pages: 2, Databases: 1, RowsPerDatabase: 2})
	if _, err := h.s.PoisonSearchResults(h.ws, PoisonBadID); err != nil {
		t.Fatal(err)
	}
	db := h.seed.DatabaseIDs[0]
	if _, err := h.s.Poison(h.ws, db, PoisonQuery, PoisonBadID); err != nil {
		t.Fatal(err)
	}
	ids, _, _ := listOf(t, h.raw("POST", "/v1/search", map[string]any{}))
	if ids[0] != HostileBadID || ids[1] != float64(12345) {
		t.Fatalf("search: %v", ids)
	}
	ids, _, _ = listOf(t, h.raw("POST", "/v1/databases/"+db+"/query", map[string]any{}))
	if ids[0] != HostileBadID || len(ids) != 4 {
		t.Fatalf("query: %v", ids)
	}
	// Kinds and targets that do not go together are refused.
	for _, c := range []struct {
		id     string
		target PoisonTarget
		kind   PoisonKind
	}{
		{h.seed.PageIDs[0], PoisonPageGet, PoisonCycleSelf},
		{h.seed.PageIDs[0], PoisonQuery, PoisonBadID},
		{db, PoisonQuery, PoisonMalformed},
		{h.seed.PageIDs[0], PoisonChildren, PoisonBadID},
	} {
		if _, err := h.s.Poison(h.ws, c.id, c.target, c.kind); !errors.Is(err, ErrInvalidPoison) {
			t.Errorf("%s/%s: %v, want ErrInvalidPoison", c.target, c.kind, err)
		}
	}
	if _, err := h.s.PoisonSearchResults(h.ws, PoisonHuge); err == nil || !strings.Contains(err.Error(), "bad_id") {
		t.Errorf("search poisoned with huge: %v", err)
	}
}
