package pgsink_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/pgsink"
	"github.com/notionsync/notionsync/sync/sink/sinktest"
)

// TestPagePeopleView: the page_people view (migration 0005) joins people,
// created_by and last_edited_by values with the users table, so a query
// names the people a page references; unknown users have a NULL name.
func TestPagePeopleView(t *testing.T) {
	t.Parallel()
	dsn := srv.NewDatabase(t)
	s := open(t, dsn, pgsink.Options{})
	ctx := context.Background()
	const (
		alice   = "a11ce000-1111-4222-8333-000000000001"
		unknown = "0000000a-1111-4222-8333-000000000009"
	)
	p := sinktest.NewPage(sinktest.PageID(1), "Owned", sinktest.Base, sinktest.Base)
	var obj map[string]any
	if err := json.Unmarshal(p.Object, &obj); err != nil {
		t.Fatal(err)
	}
	props := obj["properties"].(map[string]any)
	props["Owners"] = map[string]any{"id": "o", "type": "people", "people": []any{
		map[string]any{"object": "user", "id": alice}, map[string]any{"object": "user", "id": unknown}}}
	props["Author"] = map[string]any{"id": "a", "type": "created_by", "created_by": map[string]any{"object": "user", "id": alice}}
	props["Broken"] = map[string]any{"id": "b", "type": "people", "people": "not a list"}
	p.Object, _ = json.Marshal(obj)
	if _, err := s.PutPage(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutUsers(ctx, &sink.Users{ConnectionID: sinktest.Conn, SyncedAt: sinktest.Base,
		Users: []sink.User{sinktest.NewUser(t, alice, "Alice Adams", "alice@example.com", false)}}); err != nil {
		t.Fatal(err)
	}
	rows, err := connect(t, dsn).Query(ctx, `SELECT property, user_id, coalesce(name, '<null>')
FROM page_people WHERE connection_id = $1 AND page_id = $2 ORDER BY property, user_id`, sinktest.Conn, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var prop, id, name string
		if err := rows.Scan(&prop, &id, &name); err != nil {
			t.Fatal(err)
		}
		got = append(got, prop+" "+id+" "+name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Author " + alice + " Alice Adams",
		"Owners " + unknown + " <null>",
		"Owners " + alice + " Alice Adams",
	}
	if len(got) != len(want) {
		t.Fatalf("page_people rows %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %q, want %q", i, got[i], want[i])
		}
	}
}
