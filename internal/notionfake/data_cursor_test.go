package notionfake

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCursorExpiry: under Imperfections.CursorExpiry a cursor is refused
// the way Notion refuses one it no longer accepts, once it is that old on
// the fake's clock, for POST (search) and GET (block children, users)
// listings alike; off by default.
func TestCursorExpiry(t *testing.T) {
	h := newDataHarness(t, SeedSpec{Seed: 5, Pages: 5, BlocksPerPage: 5, Users: 4})
	search := func(cursor string) rawReply {
		body := map[string]any{"page_size": 2}
		if cursor != "" {
			body["start_cursor"] = cursor
		}
		return h.raw(http.MethodPost, "/v1/search", body)
	}
	next := func(r rawReply) string {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("listing: %d %s", r.status, r.body)
		}
		c, _ := r.json(t)["next_cursor"].(string)
		if c == "" {
			t.Fatalf("no next_cursor: %s", r.body)
		}
		return c
	}
	// Off by default: an hour-old cursor is still good.
	c := next(search(""))
	h.clock.Advance(time.Hour)
	next(search(c))

	if err := h.s.SetImperfections(Imperfections{CursorExpiry: time.Minute}); err != nil {
		t.Fatal(err)
	}
	c1 := next(search(""))
	h.clock.Advance(59 * time.Second)
	c2 := next(search(c1)) // 59 s old: accepted
	h.clock.Advance(time.Minute)
	r := search(c2)
	if r.status != http.StatusBadRequest {
		t.Fatalf("expired cursor: %d %s", r.status, r.body)
	}
	e := r.json(t)
	if e["code"] != "validation_error" || !strings.Contains(e["message"].(string), "start_cursor provided is invalid") {
		t.Fatalf("expired cursor answer: %s", r.body)
	}
	// Starting over works and renews the cursor.
	c1 = next(search(""))
	next(search(c1))

	for _, path := range []string{"/v1/blocks/" + h.seed.PageIDs[0] + "/children?page_size=2", "/v1/users?page_size=2"} {
		c := next(h.raw(http.MethodGet, path, nil))
		h.clock.Advance(2 * time.Minute)
		if r := h.raw(http.MethodGet, path+"&start_cursor="+c, nil); r.status != http.StatusBadRequest {
			t.Errorf("%s with an expired cursor: %d %s", path, r.status, r.body)
		}
	}
	if st := h.s.DataStats(); st.ExpiredCursors != 3 || st.InvalidCursors != 3 {
		t.Errorf("stats: %d expired, %d invalid cursors; want 3 and 3", st.ExpiredCursors, st.InvalidCursors)
	}
	if err := h.s.SetImperfections(Imperfections{CursorExpiry: -time.Second}); err == nil {
		t.Error("negative CursorExpiry accepted")
	}
}
