package markdown_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/notionsync/notionsync/sync/markdown"
	"github.com/notionsync/notionsync/sync/sink/record"
)

const (
	alice   = "11111111-1111-4111-8111-111111111111"
	bob     = "22222222-2222-4222-8222-222222222222"
	unknown = "33333333-3333-4333-8333-333333333333"
)

// TestUserNamesResolve: people values, created_by / last_edited_by and user
// mentions carry partial users ({object, id}); the renderer names them
// through UserName, keeps a name the object carries, and falls back to the
// id (people) or Notion's plain text (mentions) for users it cannot name.
func TestUserNamesResolve(t *testing.T) {
	props := json.RawMessage(`{
		"Name": {"id": "title", "type": "title", "title": [{"type": "text", "text": {"content": "Plan"}, "plain_text": "Plan"}]},
		"Owners": {"id": "a", "type": "people", "people": [
			{"object": "user", "id": "` + alice + `"},
			{"object": "user", "id": "` + unknown + `"},
			{"object": "user", "id": "` + bob + `", "name": "Bob (embedded)", "type": "person", "person": {}},
			{"object": "group", "id": "44444444-4444-4444-8444-444444444444", "name": "Team"}]},
		"Author": {"id": "b", "type": "created_by", "created_by": {"object": "user", "id": "` + alice + `"}},
		"Editor": {"id": "c", "type": "last_edited_by", "last_edited_by": {"object": "user", "id": "` + unknown + `"}},
		"Notes": {"id": "d", "type": "rich_text", "rich_text": [
			{"type": "mention", "mention": {"type": "user", "user": {"object": "user", "id": "` + alice + `"}}, "plain_text": "@Anonymous"}]}
	}`)
	block := func(id, rt string) record.Block {
		raw := `{"object": "block", "id": "` + id + `", "type": "paragraph", "paragraph": {"rich_text": [` + rt + `]}}`
		b, err := record.BlockFromRaw(json.RawMessage(raw))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	blocks := []record.Block{
		block("55555555-5555-4555-8555-555555555555",
			`{"type": "text", "text": {"content": "Ask "}, "plain_text": "Ask "},
			 {"type": "mention", "mention": {"type": "user", "user": {"object": "user", "id": "`+alice+`"}}, "plain_text": "@Anonymous"}`),
		block("66666666-6666-4666-8666-666666666666",
			`{"type": "mention", "mention": {"type": "user", "user": {"object": "user", "id": "`+unknown+`"}}, "plain_text": "@Someone"}`),
		block("77777777-7777-4777-8777-777777777777",
			`{"type": "mention", "mention": {"type": "user", "user": {"object": "user", "id": "`+unknown+`"}}, "plain_text": ""}`),
	}
	names := map[string]string{alice: "Alice Adams", bob: "Bob (list)"}
	r := markdown.Renderer{UserName: func(id string) (string, bool) { n, ok := names[id]; return n, ok }}
	out, err := r.Render("", props, blocks)
	if err != nil {
		t.Fatal(err)
	}
	md := string(out)
	for _, want := range []string{
		"| Owners | Alice Adams, " + unknown + ", Bob (embedded), Team |",
		"| Author | Alice Adams |",
		"| Editor | " + unknown + " |",
		"| Notes | @Alice Adams |",
		"Ask @Alice Adams",
		"@Someone",
		"@" + unknown,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}

	// Without a resolver: ids and Notion's plain text, as before.
	out, err = markdown.Render("", props, blocks)
	if err != nil {
		t.Fatal(err)
	}
	if md := string(out); !strings.Contains(md, "| Owners | "+alice+", ") || !strings.Contains(md, "Ask @Anonymous") {
		t.Errorf("zero Renderer:\n%s", md)
	}
}
