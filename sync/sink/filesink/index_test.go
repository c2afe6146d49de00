package filesink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/notionsync/notionsync/sync/sink"
	"github.com/notionsync/notionsync/sync/sink/filesink"
)

const (
	idxConn = "conn-index"
	idxDB   = "dddddddd-0000-4000-8000-000000000001"
)

func idxPageID(n int) string { return fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", n) }

var idxBase = time.Date(2026, 12, 6, 14, 5, 0, 0, time.UTC)

// idxPage is a page under parent ("workspace", "page_id:<id>",
// "database_id:<id>", "block_id:<id>") holding blocks.
func idxPage(id, title, parent string, edited time.Time, blocks ...sink.Block) *sink.Page {
	ptype, pid, _ := strings.Cut(parent, ":")
	pjson := `{"type":"workspace","workspace":true}`
	if pid != "" {
		pjson = fmt.Sprintf(`{"type":%q,%q:%q}`, ptype, ptype, pid)
	}
	t, _ := json.Marshal(title)
	obj := fmt.Sprintf(`{"object":"page","id":%q,"last_edited_time":%q,"parent":%s,"archived":false,`+
		`"properties":{"title":{"id":"title","type":"title","title":[{"type":"text","text":{"content":%s},"plain_text":%s}]}}}`,
		id, edited.Format(time.RFC3339), pjson, t, t)
	p := &sink.Page{ConnectionID: idxConn, ID: id, ParentType: ptype, ParentID: pid, Title: title,
		LastEditedTime: edited, Object: json.RawMessage(obj), Blocks: blocks, SyncedAt: edited.Add(time.Second)}
	if ptype == "database_id" {
		p.DatabaseID = pid
	}
	return p
}

func idxDatabase(id, title, parent string, edited time.Time) *sink.Database {
	ptype, pid, _ := strings.Cut(parent, ":")
	t, _ := json.Marshal(title)
	obj := fmt.Sprintf(`{"object":"database","id":%q,"last_edited_time":%q,"parent":{"type":%q,%q:%q},`+
		`"title":[{"type":"text","text":{"content":%s},"plain_text":%s}],"description":[],`+
		`"properties":{"Name":{"id":"title","type":"title","title":{}},"Stage":{"id":"s","type":"select","select":{"options":[{"name":"Todo"}]}}}}`,
		id, edited.Format(time.RFC3339), ptype, ptype, pid, t, t)
	return &sink.Database{ConnectionID: idxConn, ID: id, ParentType: ptype, ParentID: pid, Title: title,
		LastEditedTime: edited, Object: json.RawMessage(obj), SyncedAt: edited.Add(time.Second)}
}

func linkBlock(n int, target string) sink.Block {
	id := fmt.Sprintf("bbbbbbbb-0000-4000-8000-%012d", n)
	raw := fmt.Sprintf(`{"object":"block","id":%q,"type":"link_to_page","link_to_page":{"type":"page_id","page_id":%q}}`, id, target)
	return sink.Block{ID: id, Type: "link_to_page", Raw: json.RawMessage(raw)}
}

func mentionBlock(n int, target, plain string) sink.Block {
	id := fmt.Sprintf("bbbbbbbb-0000-4000-8000-%012d", n)
	raw := fmt.Sprintf(`{"object":"block","id":%q,"type":"paragraph","paragraph":{"rich_text":[`+
		`{"type":"mention","mention":{"type":"page","page":{"id":%q}},"plain_text":%q,"href":"https://www.notion.so/x"}]}}`, id, target, plain)
	return sink.Block{ID: id, Type: "paragraph", Raw: json.RawMessage(raw)}
}

func childPageBlock(target, title string) sink.Block {
	raw := fmt.Sprintf(`{"object":"block","id":%q,"type":"child_page","child_page":{"title":%q}}`, target, title)
	return sink.Block{ID: target, Type: "child_page", Raw: json.RawMessage(raw)}
}

func childDatabaseBlock(target, title string) sink.Block {
	raw := fmt.Sprintf(`{"object":"block","id":%q,"type":"child_database","child_database":{"title":%q}}`, target, title)
	return sink.Block{ID: target, Type: "child_database", Raw: json.RawMessage(raw)}
}

func openIndexed(t *testing.T, root string) *filesink.Sink {
	t.Helper()
	// An hour: only FlushIndex and Close write the index in these tests.
	s, err := filesink.Open(root, filesink.Options{IndexDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustPut(t *testing.T, s *filesink.Sink, p *sink.Page) {
	t.Helper()
	if ok, err := s.PutPage(context.Background(), p); err != nil || !ok {
		t.Fatalf("PutPage %s: written=%v, %v", p.ID, ok, err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func flush(t *testing.T, s *filesink.Sink) {
	t.Helper()
	if err := s.FlushIndex(context.Background(), idxConn); err != nil {
		t.Fatal(err)
	}
}

// A page written before the page it links to links it once the target is
// stored, and stops linking it once the target is deleted.
func TestLinkFollowsTargetPresence(t *testing.T) {
	root := t.TempDir()
	s := openIndexed(t, root)
	a, b := idxPageID(1), idxPageID(2)
	mustPut(t, s, idxPage(a, "Alpha", "workspace", idxBase, linkBlock(1, b), mentionBlock(2, b, "Beta")))
	mdPath := filepath.Join(root, idxConn, "pages", a+".md")
	md := readFile(t, mdPath)
	if strings.Contains(md, b+".md") || strings.Contains(md, "notion.so") {
		t.Fatalf("a page the mirror lacks is linked:\n%s", md)
	}
	if !strings.Contains(md, "\nLinked page\n") || !strings.Contains(md, "\nBeta\n") {
		t.Fatalf("unresolved links are not plain text:\n%s", md)
	}

	mustPut(t, s, idxPage(b, "Beta", "workspace", idxBase))
	flush(t, s)
	md = readFile(t, mdPath)
	if strings.Count(md, "[Beta]("+b+".md)") != 2 {
		t.Fatalf("after the target arrived, the links do not lead to it:\n%s", md)
	}

	if err := s.DeletePage(context.Background(), idxConn, b, idxBase.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	md = readFile(t, mdPath)
	if strings.Contains(md, b+".md") {
		t.Fatalf("after the target was deleted, it is still linked:\n%s", md)
	}
}

type manifest struct {
	Format       int    `json:"format"`
	ConnectionID string `json:"connection_id"`
	Objects      map[string]struct {
		Kind   string `json:"kind"`
		Title  string `json:"title"`
		Path   string `json:"path"`
		Parent *struct {
			Type, ID string
		} `json:"parent"`
		LastEditedTime time.Time `json:"last_edited_time"`
		Tombstoned     bool      `json:"tombstoned"`
	} `json:"objects"`
}

func readManifest(t *testing.T, root string) manifest {
	t.Helper()
	var m manifest
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(root, idxConn, "manifest.json"))), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The index lists the tree by title, rows under their database under its
// host page; the manifest has every object; the database has Markdown
// listing its rows.
func TestIndexManifestAndDatabaseMarkdown(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openIndexed(t, root)
	home, child, grand, other, gone, row1, row2 := idxPageID(1), idxPageID(2), idxPageID(3), idxPageID(4), idxPageID(5), idxPageID(6), idxPageID(7)
	mustPut(t, s, idxPage(home, "Home", "workspace", idxBase, childPageBlock(child, "Zeta child"), childDatabaseBlock(idxDB, "Tasks")))
	mustPut(t, s, idxPage(child, "Zeta child", "page_id:"+home, idxBase, childPageBlock(grand, "Grandchild")))
	mustPut(t, s, idxPage(grand, "Grandchild", "page_id:"+child, idxBase))
	mustPut(t, s, idxPage(other, "Another top page", "workspace", idxBase))
	mustPut(t, s, idxPage(gone, "Gone", "page_id:"+home, idxBase))
	if err := s.DeletePage(ctx, idxConn, gone, idxBase.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutDatabase(ctx, idxDatabase(idxDB, "Tasks", "page_id:"+home, idxBase)); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, idxPage(row2, "Write docs", "database_id:"+idxDB, idxBase))
	mustPut(t, s, idxPage(row1, "Ship it", "database_id:"+idxDB, idxBase))
	flush(t, s)

	index := readFile(t, filepath.Join(root, idxConn, "index.md"))
	want := "- [Another top page](pages/" + other + ".md)\n" +
		"- [Home](pages/" + home + ".md)\n" +
		"  - [Tasks](databases/" + idxDB + ".md) (database, 2 rows)\n" +
		"    - [Ship it](pages/" + row1 + ".md)\n" +
		"    - [Write docs](pages/" + row2 + ".md)\n" +
		"  - [Zeta child](pages/" + child + ".md)\n" +
		"    - [Grandchild](pages/" + grand + ".md)\n"
	if !strings.HasSuffix(index, want) || strings.Contains(index, "Gone") {
		t.Errorf("index.md:\n%s\nwant it to end with:\n%s", index, want)
	}

	m := readManifest(t, root)
	if m.Format != 1 || m.ConnectionID != idxConn || len(m.Objects) != 8 {
		t.Fatalf("manifest: format %d, connection %q, %d objects", m.Format, m.ConnectionID, len(m.Objects))
	}
	if e := m.Objects[grand]; e.Title != "Grandchild" || e.Path != "pages/"+grand+".md" || e.Parent == nil ||
		e.Parent.ID != child || !e.LastEditedTime.Equal(idxBase) || e.Tombstoned {
		t.Errorf("manifest entry of a live page: %+v", e)
	}
	if e := m.Objects[gone]; !e.Tombstoned || e.Path != "pages/"+gone+".json" {
		t.Errorf("manifest entry of a deleted page: %+v", e)
	}
	if e := m.Objects[idxDB]; e.Kind != "database" || e.Path != "databases/"+idxDB+".md" {
		t.Errorf("manifest entry of a database: %+v", e)
	}

	dbmd := readFile(t, filepath.Join(root, idxConn, "databases", idxDB+".md"))
	if !strings.HasPrefix(dbmd, "# Tasks\n") || !strings.Contains(dbmd, "| Stage | select | Todo |") ||
		!strings.HasSuffix(dbmd, "- [Ship it](../pages/"+row1+".md)\n- [Write docs](../pages/"+row2+".md)\n") {
		t.Errorf("database Markdown:\n%s", dbmd)
	}
	homemd := readFile(t, filepath.Join(root, idxConn, "pages", home+".md"))
	if !strings.Contains(homemd, "[Tasks](../databases/"+idxDB+".md)") || !strings.Contains(homemd, "[Zeta child]("+child+".md)") {
		t.Errorf("host page Markdown:\n%s", homemd)
	}

	// A row deleted leaves the database's Markdown; the database deleted
	// loses its Markdown.
	if err := s.DeletePage(ctx, idxConn, row2, idxBase.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	if dbmd := readFile(t, filepath.Join(root, idxConn, "databases", idxDB+".md")); strings.Contains(dbmd, row2) {
		t.Errorf("a deleted row is still listed:\n%s", dbmd)
	}
	if err := s.DeleteDatabase(ctx, idxConn, idxDB, idxBase.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	if _, err := os.Stat(filepath.Join(root, idxConn, "databases", idxDB+".md")); !os.IsNotExist(err) {
		t.Errorf("a deleted database keeps its Markdown: %v", err)
	}
	if homemd := readFile(t, filepath.Join(root, idxConn, "pages", home+".md")); strings.Contains(homemd, idxDB+".md") {
		t.Errorf("a deleted database is still linked:\n%s", homemd)
	}
}

// Close writes what is pending; the delay writes it without Close.
func TestIndexWrittenAfterDelayAndOnClose(t *testing.T) {
	root := t.TempDir()
	s, err := filesink.Open(root, filesink.Options{IndexDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, idxPage(idxPageID(1), "One", "workspace", idxBase))
	manifestPath := filepath.Join(root, idxConn, "manifest.json")
	if _, err := os.Stat(manifestPath); !os.IsNotExist(err) {
		t.Fatalf("manifest written before the delay: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if m := readManifest(t, root); len(m.Objects) != 1 {
		t.Fatalf("Close did not write the pending index: %+v", m)
	}

	root2 := t.TempDir()
	s2, err := filesink.Open(root2, filesink.Options{IndexDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	mustPut(t, s2, idxPage(idxPageID(1), "One", "workspace", idxBase))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(root2, idxConn, "index.md")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("index.md not written 10s after a write with a 1ms delay")
		}
		time.Sleep(time.Millisecond) // polling for a file another goroutine writes
	}
}

// Two sinks on one root (two worker processes) each keep the other's
// objects in the manifest.
func TestIndexMergesAcrossProcesses(t *testing.T) {
	root := t.TempDir()
	s1, s2 := openIndexed(t, root), openIndexed(t, root)
	mustPut(t, s1, idxPage(idxPageID(1), "From one", "workspace", idxBase, linkBlock(1, idxPageID(2))))
	mustPut(t, s2, idxPage(idxPageID(2), "From two", "workspace", idxBase))
	flush(t, s2)
	flush(t, s1)
	m := readManifest(t, root)
	if len(m.Objects) != 2 {
		t.Fatalf("manifest holds %d objects, want both processes' 2", len(m.Objects))
	}
	if md := readFile(t, filepath.Join(root, idxConn, "pages", idxPageID(1)+".md")); !strings.Contains(md, "[From two]("+idxPageID(2)+".md)") {
		t.Errorf("a link to the other process's page was not resolved:\n%s", md)
	}
}

// A folder written before the index existed gets one on the next write,
// and its old Markdown is rendered again with resolved links.
func TestIndexBuiltForExistingFolder(t *testing.T) {
	root := t.TempDir()
	old, err := filesink.Open(root, filesink.Options{DisableIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, old, idxPage(idxPageID(1), "Old", "workspace", idxBase, childDatabaseBlock(idxDB, "Tasks")))
	if _, err := old.PutDatabase(context.Background(), idxDatabase(idxDB, "Tasks", "page_id:"+idxPageID(1), idxBase)); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if md := readFile(t, filepath.Join(root, idxConn, "pages", idxPageID(1)+".md")); !strings.Contains(md, idxDB+".json") {
		t.Fatalf("precondition: the old rendering links the database's JSON:\n%s", md)
	}
	// Corrupt manifests are rebuilt the same way.
	s := openIndexed(t, root)
	mustPut(t, s, idxPage(idxPageID(2), "New", "workspace", idxBase))
	flush(t, s)
	if m := readManifest(t, root); len(m.Objects) != 3 {
		t.Fatalf("manifest of an existing folder holds %d objects, want 3", len(m.Objects))
	}
	if md := readFile(t, filepath.Join(root, idxConn, "pages", idxPageID(1)+".md")); !strings.Contains(md, "[Tasks](../databases/"+idxDB+".md)") {
		t.Errorf("old Markdown not rendered again:\n%s", md)
	}
	if _, err := os.Stat(filepath.Join(root, idxConn, "databases", idxDB+".md")); err != nil {
		t.Errorf("database Markdown of an existing folder: %v", err)
	}
}

func TestCorruptManifestIsRebuilt(t *testing.T) {
	root := t.TempDir()
	s := openIndexed(t, root)
	mustPut(t, s, idxPage(idxPageID(1), "One", "workspace", idxBase))
	flush(t, s)
	if err := os.WriteFile(filepath.Join(root, idxConn, "manifest.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A corrupt document is left out of the rebuilt index, not fatal.
	if err := os.WriteFile(filepath.Join(root, idxConn, "pages", idxPageID(9)+".json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := openIndexed(t, root)
	mustPut(t, s2, idxPage(idxPageID(2), "Two", "workspace", idxBase))
	flush(t, s2)
	if m := readManifest(t, root); len(m.Objects) != 2 {
		t.Fatalf("rebuilt manifest holds %d objects, want 2", len(m.Objects))
	}
}

// Writes a process made but never indexed (killed before its flush) reach
// the manifest through the next process that loads it.
func TestIndexRecoversWritesOfAKilledProcess(t *testing.T) {
	root := t.TempDir()
	s1 := openIndexed(t, root)
	mustPut(t, s1, idxPage(idxPageID(1), "Indexed", "workspace", idxBase))
	flush(t, s1)
	markers, _ := filepath.Glob(filepath.Join(root, idxConn, ".locks", "index-pending-*"))
	if len(markers) != 0 {
		t.Fatalf("markers left after a flush: %v", markers)
	}
	// s1 writes a page and "dies": no flush, no Close until the test ends.
	mustPut(t, s1, idxPage(idxPageID(2), "Never indexed", "workspace", idxBase))
	if markers, _ = filepath.Glob(filepath.Join(root, idxConn, ".locks", "index-pending-*")); len(markers) != 1 {
		t.Fatalf("markers after an unflushed write: %v", markers)
	}
	s2 := openIndexed(t, root)
	mustPut(t, s2, idxPage(idxPageID(3), "Other", "workspace", idxBase))
	flush(t, s2)
	m := readManifest(t, root)
	if _, ok := m.Objects[idxPageID(2)]; !ok || len(m.Objects) != 3 {
		t.Fatalf("the killed process's page is not in the manifest: %+v", m.Objects)
	}
	if markers, _ = filepath.Glob(filepath.Join(root, idxConn, ".locks", "index-pending-*")); len(markers) != 0 {
		t.Fatalf("markers left after recovery: %v", markers)
	}
}

// A page renamed in Notion is linked by its new title from pages that were
// not edited (their mention's plain_text still says the old one).
func TestRenamedTargetRelabelsLinks(t *testing.T) {
	root := t.TempDir()
	s := openIndexed(t, root)
	a, b := idxPageID(1), idxPageID(2)
	mustPut(t, s, idxPage(b, "Old name", "workspace", idxBase))
	mustPut(t, s, idxPage(a, "Alpha", "workspace", idxBase, linkBlock(1, b), mentionBlock(2, b, "Old name")))
	flush(t, s)
	mustPut(t, s, idxPage(b, "New name", "workspace", idxBase.Add(time.Minute)))
	flush(t, s)
	md := readFile(t, filepath.Join(root, idxConn, "pages", a+".md"))
	if strings.Count(md, "[New name]("+b+".md)") != 2 || strings.Contains(md, "Old name") {
		t.Fatalf("links to a renamed page keep its old title:\n%s", md)
	}
}
