package jobs_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/notionsync/notionsync/internal/browsertest"
	"github.com/notionsync/notionsync/internal/mdview"
	"github.com/notionsync/notionsync/sync/sink/filesink"
)

// crawlJS follows, in the browser, every same-origin link and image from
// the current page through every reachable Markdown page, and returns how
// many URLs it visited and which answered with an error.
const crawlJS = `(async () => {
  const seen = new Set(), bad = [], queue = [location.href.split('#')[0]];
  while (queue.length) {
    const u = queue.shift();
    if (seen.has(u)) continue;
    seen.add(u);
    const r = await fetch(u);
    if (!r.ok) { bad.push(u + " " + r.status); continue; }
    if (!u.endsWith('.md')) continue;
    const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
    for (const el of doc.querySelectorAll('a[href], img[src]')) {
      const abs = new URL(el.getAttribute('href') || el.getAttribute('src'), u);
      abs.hash = '';
      if (abs.origin === location.origin && !seen.has(abs.href)) queue.push(abs.href);
    }
  }
  return JSON.stringify({visited: seen.size, bad});
})()`

// The synced Markdown, rendered to HTML by goldmark and opened in headless
// Chromium, reads as a website: index.md lists the tree, clicking a title
// opens the page, every link reachable from the index works. Screenshots go
// to the test's temporary directory, or to $NOTIONSYNC_SCREENSHOTS (how the
// README's picture is made).
func TestSyncedMirrorInBrowser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: smallSpec})
	hub, _ := seedLinks(t, e)
	e.startWorkers(4)
	e.sweep()
	e.waitSynced()
	fs := e.sink.(*filesink.Sink)
	if err := fs.FlushIndex(context.Background(), e.conn); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mdview.Handler(filepath.Join(fs.Root(), e.conn)))
	t.Cleanup(srv.Close)
	shots := os.Getenv("NOTIONSYNC_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}

	ctx := browsertest.New(t, browsertest.Options{Width: 1000, Height: 700})
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	if h1, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1"))); err != nil || !strings.HasPrefix(h1, "Index of "+e.conn) {
		t.Fatalf("index heading %q, %v", h1, err)
	}
	if err := browsertest.Screenshot(ctx, filepath.Join(shots, "mirror-index.png")); err != nil {
		t.Fatal(err)
	}
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](crawlJS, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var crawl struct {
		Visited int
		Bad     []string
	}
	if err := json.Unmarshal([]byte(raw), &crawl); err != nil {
		t.Fatal(err)
	}
	// index.md, every page and row, every database.
	if want := 1 + 1 + len(e.seed.PageIDs) + len(e.seed.RowIDs) + len(e.seed.DatabaseIDs); crawl.Visited < want || len(crawl.Bad) > 0 {
		t.Fatalf("browser crawl from index.md: %d URLs visited (want >= %d), broken: %v", crawl.Visited, want, crawl.Bad)
	}
	t.Logf("browser crawl from index.md: %d URLs, 0 broken", crawl.Visited)

	// Click through: index -> link hub -> the database it links.
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`a[href="pages/`+hub+`.md"]`))); err != nil {
		t.Fatal(err)
	}
	if h1, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1"))); err != nil || h1 != "Link hub" {
		t.Fatalf("after clicking the hub in the index: heading %q, %v", h1, err)
	}
	if err := browsertest.Screenshot(ctx, filepath.Join(shots, "mirror-page.png")); err != nil {
		t.Fatal(err)
	}
	db := e.seed.DatabaseIDs[0]
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`a[href="../databases/`+db+`.md"]`))); err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('ul a[href^="../pages/"]').length`))
	if err != nil || rows != smallSpec.RowsPerDatabase {
		t.Fatalf("the database page links %d rows (%v), want %d", rows, err, smallSpec.RowsPerDatabase)
	}
	if err := browsertest.Screenshot(ctx, filepath.Join(shots, "mirror-database.png")); err != nil {
		t.Fatal(err)
	}
}
