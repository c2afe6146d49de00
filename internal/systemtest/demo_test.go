//go:build unix

package systemtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/demo"
)

// smallSeed is a workspace with every kind of content (nested pages,
// nested blocks, a database with rows) that syncs in a few seconds.
var smallSeed = []string{
	"-pages", "12", "-nested-pages", "3", "-blocks-per-page", "6", "-block-depth", "2",
	"-databases", "1", "-rows", "5", "-blocks-per-row", "2",
}

// TestDemoHeadless runs what make demo runs (1 scheduler, 3 workers, Redis,
// the sandbox), connects through the OAuth flow, watches until the sync is
// complete, checks the synced files against the sandbox, then stops: no
// process is left and the files stay.
func TestDemoHeadless(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := startCluster(t, ctx, demo.Options{
		SandboxArgs: smallSeed,
		RateLimit:   60_000, // the emulated Notion budget is not under test here
	})
	connID, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}

	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	p, err := c.Watch(wctx, 250*time.Millisecond, func(p demo.Progress) bool { return p.Complete })
	if err != nil {
		t.Fatalf("the demo's progress never reported a complete sync: %v; last %s, incomplete %v", err, p, p.Incomplete)
	}
	if p.PagesSynced != p.PagesExpected || p.PagesExpected == 0 || p.Status != "active" || p.InvalidGrants != 0 {
		t.Fatalf("complete progress is inconsistent: %+v", p)
	}
	// The demo's own progress is not the judge: read the files.
	eventually(t, ctx, 5*time.Second, "synced files match the sandbox", func(ctx context.Context) (bool, string, error) {
		return syncedCompletely(ctx, c, connID)
	})

	procs := c.Processes()
	if len(procs) != 1+1+1+3 {
		t.Fatalf("%d processes, want redis, sandbox, 1 scheduler and 3 workers", len(procs))
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	assertGone(t, procs)
	pages, err := filepath.Glob(filepath.Join(c.SyncedDir(), connID, "pages", "*.json"))
	if err != nil || len(pages) < p.PagesExpected {
		t.Fatalf("after Stop the sink holds %d page files (%v), want %d", len(pages), err, p.PagesExpected)
	}
	if _, err := os.Stat(filepath.Join(c.LogDir(), "worker-0.log")); err != nil {
		t.Fatalf("worker log: %v", err)
	}
}
