package markdown_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/notionsync/notionsync/sync/markdown"
	"github.com/notionsync/notionsync/sync/sink/record"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fixture is a page as notionsync stores it: the page object and its block
// tree (children nested under "children").
type fixture struct {
	Page   json.RawMessage `json:"page"`
	Blocks json.RawMessage `json:"blocks"`
}

func loadFixture(t testing.TB, name string) (title string, props json.RawMessage, blocks []record.Block) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	p, err := record.PageFromObject("conn", f.Page, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	fields, err := record.ObjectFields(f.Page)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err = record.DecodeBlocks(f.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	return p.Title, record.Lookup(fields, "properties"), blocks
}

func TestRenderGolden(t *testing.T) {
	title, props, blocks := loadFixture(t, "page.json")
	r := markdown.Renderer{
		PageURL:     func(id string) string { return id + ".md" },
		DatabaseURL: func(id string) string { return "../databases/" + id + ".json" },
	}
	got, err := r.Render(title, props, blocks)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "page.golden.md")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Render output differs from %s (run go test -update and review the diff)\n--- got ---\n%s", golden, got)
	}
}

func block(t testing.TB, raw string, children ...record.Block) record.Block {
	t.Helper()
	b, err := record.BlockFromRaw(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	b.Children = children
	return b
}

func TestRenderCases(t *testing.T) {
	tests := []struct {
		name   string
		blocks func(t *testing.T) []record.Block
		want   string // expected body after the "# T\n\n" header
	}{
		{
			name: "unknown type with children",
			blocks: func(t *testing.T) []record.Block {
				return []record.Block{block(t, `{"type":"mystery","mystery":{"x":1}}`,
					block(t, `{"type":"paragraph","paragraph":{"rich_text":[{"plain_text":"inside"}]}}`))}
			},
			want: "<!-- unsupported block: mystery -->\n\ninside\n",
		},
		{
			name: "hostile type name is not echoed",
			blocks: func(t *testing.T) []record.Block {
				return []record.Block{{Type: "x --> <script>", Raw: json.RawMessage(`{}`)}}
			},
			want: "<!-- unsupported block: invalid-type -->\n",
		},
		{
			name: "block without raw",
			blocks: func(t *testing.T) []record.Block {
				return []record.Block{{ID: "1", Type: "divider"}, {ID: "2", Type: "paragraph"}}
			},
			want: "---\n",
		},
		{
			name: "numbered list restarts after another block",
			blocks: func(t *testing.T) []record.Block {
				n := func(s string) record.Block {
					return block(t, `{"type":"numbered_list_item","numbered_list_item":{"rich_text":[{"plain_text":"`+s+`"}]}}`)
				}
				return []record.Block{n("a"), n("b"), block(t, `{"type":"divider","divider":{}}`), n("c")}
			},
			want: "1. a\n2. b\n\n---\n\n1. c\n",
		},
		{
			name: "old API text member and NUL",
			blocks: func(t *testing.T) []record.Block {
				return []record.Block{block(t, `{"type":"paragraph","paragraph":{"text":[{"plain_text":"a\u0000b"}]}}`)}
			},
			want: "a\uFFFDb\n",
		},
		{
			name: "code fence longer than content backticks",
			blocks: func(t *testing.T) []record.Block {
				return []record.Block{block(t, "{\"type\":\"code\",\"code\":{\"language\":\"mark down\",\"rich_text\":[{\"plain_text\":\"````x\"}]}}")}
			},
			want: "`````mark-down\n````x\n`````\n",
		},
		{
			name: "leading spaces do not make an indented code block",
			blocks: func(t *testing.T) []record.Block {
				return []record.Block{block(t, `{"type":"paragraph","paragraph":{"rich_text":[{"plain_text":"    four"}]}}`)}
			},
			want: "&nbsp;&nbsp;&nbsp;&nbsp;four\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := markdown.Render("T", nil, tt.blocks(t))
			if err != nil {
				t.Fatal(err)
			}
			want := "# T\n\n" + tt.want
			if string(got) != want {
				t.Errorf("got:\n%q\nwant:\n%q", got, want)
			}
		})
	}
}

func TestRenderTitleFallback(t *testing.T) {
	props := json.RawMessage(`{"Name":{"type":"title","title":[{"plain_text":"From property"}]}}`)
	got, err := markdown.Render("", props, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "# From property\n" {
		t.Errorf("got %q", got)
	}
	got, err = markdown.Render("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "# Untitled\n" {
		t.Errorf("got %q", got)
	}
}

func TestRenderMalformed(t *testing.T) {
	tests := []struct {
		name   string
		props  string
		blocks []record.Block
	}{
		{name: "properties not an object", props: `[1,2]`},
		{name: "properties invalid JSON", props: `{"a":`},
		{name: "property value wrong shape", props: `{"a":{"type":"rich_text","rich_text":5}}`},
		{name: "block raw invalid JSON", blocks: []record.Block{{Type: "paragraph", Raw: json.RawMessage(`{"paragraph":`)}}},
		{name: "rich_text not an array", blocks: []record.Block{{Type: "paragraph", Raw: json.RawMessage(`{"type":"paragraph","paragraph":{"rich_text":"x"}}`)}}},
		{name: "malformed child", blocks: []record.Block{{Type: "toggle", Children: []record.Block{{Raw: json.RawMessage(`[]`)}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var props json.RawMessage
			if tt.props != "" {
				props = json.RawMessage(tt.props)
			}
			if _, err := markdown.Render("T", props, tt.blocks); err == nil {
				t.Error("Render accepted malformed input")
			}
		})
	}
}

func TestRenderDeepTreeIsBounded(t *testing.T) {
	leaf := block(t, `{"type":"bulleted_list_item","bulleted_list_item":{"rich_text":[{"plain_text":"x"}]}}`)
	tree := leaf
	for range 500 {
		parent := leaf
		parent.Children = []record.Block{tree}
		tree = parent
	}
	got, err := markdown.Render("T", nil, []record.Block{tree})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(got), "\n") {
		if len(line) > 2*34+8 {
			t.Fatalf("indentation not bounded: line of %d bytes", len(line))
		}
	}
}

// FuzzRender feeds arbitrary properties and block trees (in the stored
// format: block objects with nested "children") to Render: it must never
// panic, and what it returns must be valid UTF-8 without NUL.
func FuzzRender(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "page.json"))
	if err != nil {
		f.Fatal(err)
	}
	var fx fixture
	if err := json.Unmarshal(data, &fx); err != nil {
		f.Fatal(err)
	}
	fields, err := record.ObjectFields(fx.Page)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("title", []byte(record.Lookup(fields, "properties")), []byte(fx.Blocks))
	f.Add("", []byte(`{"a":{"type":"formula","formula":{"type":"rollup","rollup":{"type":"array","array":[{"type":"number","number":1}]}}}}`), []byte(`[]`))
	f.Add("t", []byte(`null`), []byte(`[{"type":"table","table":{"table_width":2},"children":[{"type":"table_row","table_row":{"cells":[[{"plain_text":"|"}]]}}]}]`))
	f.Add("t", []byte(``), []byte(`[{"type":"x","children":[{"type":"numbered_list_item","numbered_list_item":{"list_start_index":-3}}]}]`))
	f.Fuzz(func(t *testing.T, title string, props, blocksJSON []byte) {
		blocks, err := record.DecodeBlocks(blocksJSON)
		if err != nil {
			blocks = []record.Block{{Type: "paragraph", Raw: blocksJSON}}
		}
		out, err := markdown.Render(title, props, blocks)
		if err != nil {
			return
		}
		if bytes.IndexByte(out, 0) >= 0 {
			t.Errorf("output contains NUL")
		}
		if utf8.Valid([]byte(title)) && utf8.Valid(props) && utf8.Valid(blocksJSON) && !utf8.Valid(out) {
			t.Errorf("valid UTF-8 input gave invalid UTF-8 output")
		}
	})
}
