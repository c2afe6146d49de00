package tokens_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/tokens"
)

// pageAll pages through the index of status with small pages and returns
// every id in order.
func pageAll(t *testing.T, st *tokens.Store, status tokens.Status, size int) []string {
	t.Helper()
	var out []string
	var cur tokens.PageCursor
	for range 1000 {
		ids, next, err := st.PageIDs(context.Background(), status, cur, size)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ids...)
		if next.ID == "" {
			return out
		}
		// The cursor survives the URL.
		if cur, err = tokens.ParsePageCursor(next.String()); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("paging did not end")
	return nil
}

// Every status change moves the connection between the status indexes in
// the same script; paging by status returns exactly the connections of
// that status, oldest first, without duplicates across pages (also with
// connections created in the same millisecond).
func TestStatusIndex(t *testing.T) { onBackends(t, true, testStatusIndex) }

func testStatusIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	st := e.store(nil)
	ctx := context.Background()
	var all []string
	for i := range 7 {
		id := fmt.Sprintf("c%d", i)
		if i%3 == 0 {
			e.clock.Advance(time.Millisecond) // others share a millisecond
		}
		if _, err := st.Connect(ctx, id, &tokens.Grant{AccessToken: "a" + id, RefreshToken: "r" + id}, testTiming,
			tokens.ConnectOptions{}); err != nil {
			t.Fatal(err)
		}
		all = append(all, id)
	}
	if err := st.Pause(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkNeedsReauth(ctx, "c2", "test"); err != nil {
		t.Fatal(err)
	}
	if err := st.Disconnect(ctx, "c3"); err != nil {
		t.Fatal(err)
	}
	if err := st.Pause(ctx, "c4"); err != nil {
		t.Fatal(err)
	}
	if err := st.Resume(ctx, "c4"); err != nil {
		t.Fatal(err)
	}
	// A re-authorization makes the disconnected c3 active again.
	if _, err := st.Connect(ctx, "c3", &tokens.Grant{AccessToken: "a2", RefreshToken: "r2"}, testTiming, tokens.ConnectOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[tokens.Status][]string{
		tokens.StatusActive:       {"c0", "c3", "c4", "c5", "c6"},
		tokens.StatusPaused:       {"c1"},
		tokens.StatusNeedsReauth:  {"c2"},
		tokens.StatusDisconnected: nil,
		"":                        all,
	}
	for status, ids := range want {
		for _, size := range []int{1, 2, 100} {
			if got := pageAll(t, st, status, size); !slices.Equal(got, ids) {
				t.Errorf("status %q, pages of %d: %v, want %v", status, size, got, ids)
			}
		}
	}
	// A cursor whose connection left the index (paused between two pages)
	// still continues right after it.
	ids, next, err := st.PageIDs(ctx, tokens.StatusActive, tokens.PageCursor{}, 2)
	if err != nil || !slices.Equal(ids, []string{"c0", "c3"}) {
		t.Fatalf("first page: %v %v", ids, err)
	}
	if err := st.Pause(ctx, "c3"); err != nil {
		t.Fatal(err)
	}
	if ids, _, err = st.PageIDs(ctx, tokens.StatusActive, next, 10); err != nil || !slices.Equal(ids, []string{"c4", "c5", "c6"}) {
		t.Fatalf("after the cursor's connection left: %v %v", ids, err)
	}
	if err := st.Resume(ctx, "c3"); err != nil {
		t.Fatal(err)
	}

	counts, err := st.CountByStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[tokens.StatusActive] != 5 || counts[tokens.StatusPaused] != 1 || counts[tokens.StatusNeedsReauth] != 1 {
		t.Fatalf("counts %v", counts)
	}
}

// IndexStatuses indexes records written before the indexes existed, once.
func TestIndexStatusesBackfills(t *testing.T) { onBackends(t, true, testIndexStatusesBackfills) }

func testIndexStatusesBackfills(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	st := e.store(nil)
	ctx := context.Background()
	for _, id := range []string{"old1", "old2"} {
		if _, err := st.Connect(ctx, id, &tokens.Grant{AccessToken: "a" + id, RefreshToken: "r" + id}, testTiming,
			tokens.ConnectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Pause(ctx, "old2"); err != nil {
		t.Fatal(err)
	}
	// Forget the indexes, as a Redis written by an older release has none.
	// Every shard of both, one key per DEL (a cluster refuses a DEL
	// across slots).
	pipe := e.rdb.Pipeline()
	for i := range keyspace.Shards {
		pipe.Del(ctx, keyspace.Shard(e.prefix, i)+"status:active")
		pipe.Del(ctx, keyspace.Shard(e.prefix, i)+"status:paused")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pageAll(t, st, tokens.StatusPaused, 10); len(got) != 0 {
		t.Fatalf("index survived the delete: %v", got)
	}
	n, err := st.IndexStatuses(ctx)
	if err != nil || n != 2 {
		t.Fatalf("IndexStatuses = %d, %v; want 2", n, err)
	}
	if got := pageAll(t, st, tokens.StatusPaused, 10); !slices.Equal(got, []string{"old2"}) {
		t.Fatalf("paused after backfill: %v", got)
	}
	if got := pageAll(t, st, tokens.StatusActive, 10); !slices.Equal(got, []string{"old1"}) {
		t.Fatalf("active after backfill: %v", got)
	}
	if n, err := st.IndexStatuses(ctx); err != nil || n != 0 {
		t.Fatalf("second IndexStatuses = %d, %v; want 0 (marker)", n, err)
	}
}

func TestParsePageCursor(t *testing.T) {
	for _, bad := range []string{"x", "12", "12.", ".id", "-1.id", "12.a/b"} {
		if _, err := tokens.ParsePageCursor(bad); err == nil {
			t.Errorf("ParsePageCursor(%q) accepted", bad)
		}
	}
	c, err := tokens.ParsePageCursor("12.ab-c")
	if err != nil || c != (tokens.PageCursor{CreatedMs: 12, ID: "ab-c"}) {
		t.Fatalf("%+v %v", c, err)
	}
}
