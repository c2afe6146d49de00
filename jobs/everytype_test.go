package jobs_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/sync/notionclient"
	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/sinktest"
)

// notionGET returns what the fake answers the connection for path.
func (e *env) notionGET(path string) []byte {
	e.t.Helper()
	tok, err := e.src.Token(context.Background(), e.conn)
	if err != nil {
		e.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, e.hs+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Notion-Version", notionclient.DefaultNotionVersion) // what the sync spoke
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s %v", path, resp.StatusCode, b, err)
	}
	return b
}

// withoutRequestID drops the request_id Notion adds to every answer.
func withoutRequestID(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "request_id")
	out, _ := json.Marshal(m)
	return out
}

// rendererDrops are the block types whose text the Markdown renderer does
// not render (it writes an HTML comment naming the type instead); the test
// fails when one of them starts rendering, so the list stays true.
var rendererDrops = []string{}

// TestEveryTypeSyncsUnchanged syncs SeedSpec.EveryType: the sink holds a
// block of every block type and a value of every property value type, each
// exactly as Notion answered it, and the Markdown keeps their text.
func TestEveryTypeSyncsUnchanged(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 51, EveryType: true}, sinkURL: "file://" + root})
	e.clock.Advance(90 * time.Second)
	e.startWorkers(4)
	e.sweep()
	e.waitSynced()
	e.waitIdle()
	e.assertComplete()
	ev := e.seed.EveryType
	rd := e.sink.(sink.Reader)
	ctx := context.Background()

	// Every block type, each block's raw JSON as Notion served it.
	p, _, err := rd.GetPage(ctx, e.conn, ev.PageID)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	var walk func(bs []sink.Block)
	walk = func(bs []sink.Block) {
		for _, b := range bs {
			types[b.Type] = true
			want := withoutRequestID(t, e.notionGET("/v1/blocks/"+b.ID))
			if !sinktest.JSONEqual(t, b.Raw, want) {
				t.Errorf("block %s (%s) stored as\n%s\nNotion has\n%s", b.ID, b.Type, b.Raw, want)
			}
			walk(b.Children)
		}
	}
	walk(p.Blocks)
	for _, typ := range notionfake.EveryBlockType {
		if !types[typ] {
			t.Errorf("no %s block stored", typ)
		}
	}

	// Every property value type, the page objects unchanged.
	for _, id := range []string{ev.PageID, ev.RowID} {
		got, _, err := rd.GetPage(ctx, e.conn, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := e.notionGET("/v1/pages/" + id); !sinktest.JSONEqual(t, got.Object, want) {
			t.Errorf("page %s stored as\n%s\nNotion has\n%s", id, got.Object, want)
		}
	}
	row, _, err := rd.GetPage(ctx, e.conn, ev.RowID)
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		Properties map[string]struct {
			Type string `json:"type"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(row.Object, &obj); err != nil {
		t.Fatal(err)
	}
	ptypes := map[string]bool{}
	for _, v := range obj.Properties {
		ptypes[v.Type] = true
	}
	for _, typ := range notionfake.EveryPropertyType {
		if !ptypes[typ] {
			t.Errorf("row has no %s value", typ)
		}
	}

	// The Markdown keeps the text of every type that has some.
	md := func(id string) string {
		b, err := os.ReadFile(filepath.Join(root, e.conn, "pages", id+".md"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	pageMD, rowMD := md(ev.PageID), md(ev.RowID)
	var dropped []string
	for key, text := range ev.Text {
		doc := pageMD
		if strings.HasPrefix(key, "property:") {
			doc = rowMD
		}
		if !strings.Contains(unescapeMD(doc), text) {
			dropped = append(dropped, key)
		}
	}
	slices.Sort(dropped)
	if !slices.Equal(dropped, rendererDrops) {
		t.Errorf("text lost in Markdown for %q, want only %q\npage:\n%s\nrow:\n%s", dropped, rendererDrops, pageMD, rowMD)
	}
}

// unescapeMD drops the backslashes Markdown escaping adds, so that text
// can be looked for as written.
func unescapeMD(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && strings.ContainsRune("\\`*_{}[]()#+-.!|<>~=^$", rune(s[i+1])) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
