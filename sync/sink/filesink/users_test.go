package filesink_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/sinktest"
)

// ownedPage returns a row whose people property names user id.
func ownedPage(t *testing.T, id, user string) *sink.Page {
	t.Helper()
	p := sinktest.NewPage(id, "Owned", sinktest.Base, sinktest.Base)
	var obj map[string]any
	if err := json.Unmarshal(p.Object, &obj); err != nil {
		t.Fatal(err)
	}
	obj["properties"].(map[string]any)["Owner"] = map[string]any{
		"id": "o", "type": "people", "people": []any{map[string]any{"object": "user", "id": user}},
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	p.Object = raw
	return p
}

// TestMarkdownNamesUsers: once the connection's users are stored, a page's
// Markdown names the people its properties reference; before, it shows
// their ids. users.json is written where the layout says.
func TestMarkdownNamesUsers(t *testing.T) {
	root := t.TempDir()
	s := open(t, root)
	ctx := context.Background()
	const user = "a11ce000-1111-4222-8333-000000000001"
	md := func(id string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, sinktest.Conn, "pages", id+".md"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if _, err := s.PutPage(ctx, ownedPage(t, sinktest.PageID(1), user)); err != nil {
		t.Fatal(err)
	}
	if got := md(sinktest.PageID(1)); !strings.Contains(got, "| Owner | "+user+" |") {
		t.Fatalf("before users are stored, Markdown:\n%s", got)
	}
	if _, err := s.PutUsers(ctx, &sink.Users{ConnectionID: sinktest.Conn, SyncedAt: sinktest.Base,
		Users: []sink.User{sinktest.NewUser(t, user, "Alice Adams", "", false)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, sinktest.Conn, "users.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutPage(ctx, ownedPage(t, sinktest.PageID(2), user)); err != nil {
		t.Fatal(err)
	}
	if got := md(sinktest.PageID(2)); !strings.Contains(got, "| Owner | Alice Adams |") {
		t.Fatalf("after users are stored, Markdown:\n%s", got)
	}
	// Another process (another Sink on the same root) sees the names too.
	other := open(t, root)
	if _, err := other.PutPage(ctx, ownedPage(t, sinktest.PageID(3), user)); err != nil {
		t.Fatal(err)
	}
	if got := md(sinktest.PageID(3)); !strings.Contains(got, "| Owner | Alice Adams |") {
		t.Fatalf("second sink's Markdown:\n%s", got)
	}
}
