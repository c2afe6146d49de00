package jobs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/notionsync/notionsync/internal/linkcheck"
	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/sync/sink/filesink"
)

// mentionRT is a rich text mention of a page or database, as Notion
// returns it (plain_text is the title, href the object on notion.so).
func mentionRT(kind, id, title string) map[string]any {
	return map[string]any{
		"type":        "mention",
		"mention":     map[string]any{"type": kind, kind: map[string]any{"id": id}},
		"annotations": map[string]any{"bold": false, "italic": false, "strikethrough": false, "underline": false, "code": false, "color": "default"},
		"plain_text":  title,
		"href":        "https://www.notion.so/" + strings.ReplaceAll(id, "-", ""),
	}
}

func dateRT(start, end string) map[string]any {
	return map[string]any{
		"type":        "mention",
		"mention":     map[string]any{"type": "date", "date": map[string]any{"start": start, "end": end, "time_zone": nil}},
		"annotations": map[string]any{"bold": false, "italic": false, "strikethrough": false, "underline": false, "code": false, "color": "default"},
		"plain_text":  start + " → " + end,
		"href":        nil,
	}
}

// seedLinks adds to e's workspace a page of every kind of link between
// objects (link_to_page to a page and a database, page and database
// mentions, a date mention) and links to a page the integration cannot
// see. It returns the linking page's and the hidden page's ids.
func seedLinks(t *testing.T, e *env) (hub, hidden string) {
	t.Helper()
	var err error
	if hidden, err = e.fake.AddPage(e.ws, notionfake.WorkspaceParent(), "Hidden page"); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.UnsharePage(e.ws, hidden); err != nil {
		t.Fatal(err)
	}
	pages, dbs := e.seed.PageIDs, e.seed.DatabaseIDs
	para := func(rt ...any) *notionfake.Block {
		return notionfake.NewBlock("paragraph", map[string]any{"rich_text": rt, "color": "default"})
	}
	text := func(s string) any { return notionfake.RichText(s)[0] }
	hub, err = e.fake.AddPage(e.ws, notionfake.PageParent(pages[0]), "Link hub",
		notionfake.NewBlock("link_to_page", map[string]any{"type": "page_id", "page_id": pages[len(pages)-1]}),
		notionfake.NewBlock("link_to_page", map[string]any{"type": "database_id", "database_id": dbs[0]}),
		notionfake.NewBlock("link_to_page", map[string]any{"type": "page_id", "page_id": hidden}),
		para(text("See "), mentionRT("page", pages[1], "Second page"), text(" and "), mentionRT("database", dbs[1], "Second database"),
			text(", due "), dateRT("2026-12-06T14:05:00.000+00:00", "2026-12-07T09:00:00.000+00:00"),
			text(", not "), mentionRT("page", hidden, "Hidden page"), text(".")),
	)
	if err != nil {
		t.Fatal(err)
	}
	return hub, hidden
}

// Every link in every Markdown file of a synced workspace (nested pages,
// databases with rows and relations, link_to_page, mentions) leads to a
// file of the mirror, and index.md reaches every synced page and database.
func TestSyncedMirrorHasNoBrokenLinks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: smallSpec})
	hub, hidden := seedLinks(t, e)
	e.startWorkers(4)
	e.sweep()
	e.waitSynced()
	fs := e.sink.(*filesink.Sink)
	if err := fs.FlushIndex(context.Background(), e.conn); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(fs.Root(), e.conn)

	r, err := linkcheck.Check(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	pages := append(append([]string{hub}, e.seed.PageIDs...), e.seed.RowIDs...)
	var sources []string
	for _, db := range e.seed.DatabaseIDs {
		sources = append(sources, e.seed.DataSourceIDs[db]...)
	}
	if want := len(pages) + len(e.seed.DatabaseIDs) + len(sources) + 1; r.Files != want {
		t.Errorf("%d Markdown files, want %d (pages, rows, databases, data source tables, index.md)", r.Files, want)
	}
	for _, id := range sources {
		if !r.Targets["data_sources/"+id+".md"] || !r.Targets["data_sources/"+id+".csv"] {
			t.Errorf("no link leads to data source %s's table and CSV", id)
		}
	}
	for _, l := range r.External {
		if strings.Contains(l.Dest, "notion.so") {
			t.Errorf("%s links to Notion instead of the mirror: %s", l.File, l.Dest)
		}
	}
	for _, id := range pages {
		if !r.Targets["pages/"+id+".md"] {
			t.Errorf("no link leads to page %s (index.md should)", id)
		}
	}
	for _, id := range e.seed.DatabaseIDs {
		if !r.Targets["databases/"+id+".md"] {
			t.Errorf("no link leads to database %s", id)
		}
	}
	t.Logf("%d Markdown files, %d local links followed, 0 broken, %d external", r.Files, len(r.Local), len(r.External))

	md, err := os.ReadFile(filepath.Join(root, "pages", hub+".md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"](" + e.seed.PageIDs[1] + ".md)", // the mention, labelled with the page's current title
		"(../databases/" + e.seed.DatabaseIDs[1] + ".md)",
		"(../databases/" + e.seed.DatabaseIDs[0] + ".md)",
		"due 2026-12-06 14:05 UTC → 2026-12-07 09:00 UTC, not Hidden page.",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the link hub lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(string(md), hidden) {
		t.Errorf("the hidden page is linked:\n%s", md)
	}
}
