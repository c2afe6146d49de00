//go:build unix

package systemtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/demo"
	"github.com/notionsync/notionsync/internal/fidelity"
	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/sandbox"
)

// fidelitySeed has what the imperfections bite on: rows with 30
// references, a database with two data sources, more rows than the result
// limit.
var fidelitySeed = []string{
	"-pages", "12", "-nested-pages", "3", "-blocks-per-page", "4", "-block-depth", "2",
	"-databases", "3", "-rows", "9", "-blocks-per-row", "1",
	"-multi-source-databases", "1", "-many-reference-rows", "2", "-history", "24h",
}

// fidelityGaps are the differences today's main leaves, each owned by a
// branch of issue 11 that removes it. The lead deletes an entry when that
// branch is merged; from then on the test asserts 0 for it.
var fidelityGaps = map[string]string{}

// beforeReconciliation are the differences the incremental sync leaves by
// design and one reconciliation pass closes (issue 11 items 2, 3 and 6):
// tolerated before the pass, asserted 0 after it.
var beforeReconciliation = map[string]string{
	// Pages search never returns: found by the pass's walk.
	"missing/omitted from search": "reconciliation",
	// Pages whose children answered a permanent 403: recorded, the cursor
	// moves on, retried by the pass.
	"missing/permanent error": "reconciliation",
	// Trashed and unshared pages: confirmed gone by the pass's GETs.
	"live_but_gone": "reconciliation",
	// Data sources search omits, of a database no sweep reaches (all of
	// its data sources omitted, no shared parent page): found by the
	// pass's walk through child_database blocks and its database GETs.
	"missing_data_sources": "reconciliation",
}

// TestFidelityShort is the short version of bench/fleet's fidelity
// scenario: one connection of the real binaries against a sandbox with
// Notion's imperfections on (25-reference truncation, a 4-row query
// result limit, search omitting a fifth of the pages, a database with two
// data sources that 2022-06-28 cannot read, a permanent 403 on one page's
// children), an incremental sync, then a page trashed, one unshared and
// one edited. It compares the file sink with the sandbox's ground truth
// (internal/fidelity) and asserts 0 for every difference today's main gets
// right: truncated values, rows past the result limit, stale pages (the
// poisoned page does not freeze the cursor), extra objects, and missing
// objects not explained by a gap in fidelityGaps or beforeReconciliation.
// Then the poison is lifted and one reconciliation pass runs
// (POST /api/v1/connections/{id}/reconcile): after it the sink equals the
// ground truth exactly (fidelity.Counts.Exact). SearchLag stays off: its
// late edits would make "stale" depend on timing.
func TestFidelityShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Second)
	defer cancel()
	c := startCluster(t, ctx, demo.Options{SandboxArgs: fidelitySeed, RateLimit: 60_000})

	yes, limit, share := true, 4, 0.2
	if err := c.SandboxAdmin(ctx, http.MethodPost, "/_sandbox/imperfections", sandbox.ImperfectionsRequest{
		MultiSourceReadFails: &yes, TruncateReferences: &yes, ResultLimit: &yes, ResultLimitSize: &limit,
		SearchOmitShare: &share, SearchOmitsDataSources: &yes}, nil); err != nil {
		t.Fatal(err)
	}
	truth := groundTruth(t, ctx, c)
	var pages []string // live top-level and nested pages, not rows
	for _, o := range truth.Objects {
		if o.Kind == notionfake.TruthPage && o.DatabaseID == "" && o.Live() && !o.OmittedFromSearch {
			pages = append(pages, o.ID)
		}
	}
	if len(pages) < 5 {
		t.Fatalf("only %d pages search returns", len(pages))
	}
	// Rows search never returns are read only by their database's query,
	// which the result limit cuts: they prove the query is split.
	hidden := 0
	sources := map[string]int{}
	for _, o := range truth.Objects {
		if o.Kind == notionfake.TruthDataSource {
			sources[o.DatabaseID]++
		}
	}
	for _, o := range truth.Objects {
		if o.Kind == notionfake.TruthPage && o.DatabaseID != "" && sources[o.DatabaseID] == 1 && o.OmittedFromSearch {
			hidden++
		}
	}
	if hidden == 0 {
		t.Fatal("no row of a single-source database is omitted from search: the seed does not test the result limit")
	}
	poisoned := pages[0]
	if _, err := c.PoisonSandbox(ctx, sandbox.PoisonRequest{Target: notionfake.PoisonChildren,
		Kind: notionfake.PoisonRestricted, IDs: []string{poisoned}}); err != nil {
		t.Fatal(err)
	}

	connID, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var r fidelityResult
	eventually(t, ctx, 45*time.Second, "the incremental sync gets right what main gets right", func(ctx context.Context) (bool, string, error) {
		r = checkFidelity(ctx, c, connID)
		idle, err := sweptIdle(ctx, c, connID)
		return r.err == nil && err == nil && idle && r.rightOK(beforeReconciliation), r.String(), errors.Join(r.err, err)
	})
	t.Logf("after the incremental sync: %s", r)

	// Trash one page, unshare one, edit one; the edit must land although
	// the poisoned page is still failing.
	trashed, unshared, edited := pages[1], pages[2], pages[3]
	for _, step := range []struct {
		path string
		body any
	}{
		{"/_sandbox/pages/" + trashed + "/archive", nil},
		{"/_sandbox/pages/" + unshared + "/unshare", nil},
		{"/_sandbox/pages/" + edited + "/touch", map[string]string{"text": "edited after the first sync"}},
	} {
		if err := c.SandboxAdmin(ctx, http.MethodPost, step.path, step.body, nil); err != nil {
			t.Fatalf("%s: %v", step.path, err)
		}
	}
	// The edit bumps last_edited_time to this minute; an edit in the
	// minute of the cursor is found by the next sweep either way.
	if err := c.SyncNow(ctx, connID); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, 30*time.Second, "the edit lands despite the poisoned page", func(ctx context.Context) (bool, string, error) {
		r = checkFidelity(ctx, c, connID)
		idle, err := sweptIdle(ctx, c, connID)
		return r.err == nil && err == nil && idle && r.rightOK(beforeReconciliation) && !slices.Contains(r.IDs["stale"], edited), r.String(), errors.Join(r.err, err)
	})
	t.Logf("after trash, unshare and an edit: %s", r)

	// The poisoned page's restriction is lifted (an owner fixing its
	// sharing): the sweeps never ask for it again until it is edited, the
	// reconciliation retries it. One pass then finds what search omits,
	// retries the page and confirms the trashed and unshared pages gone.
	if err := c.SandboxAdmin(ctx, http.MethodDelete, "/_sandbox/poison", nil, nil); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	if err := c.ReconcileNow(ctx, connID); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, 45*time.Second, "one reconciliation leaves 0 differences", func(ctx context.Context) (bool, string, error) {
		r = checkFidelity(ctx, c, connID)
		done, err := reconciledIdle(ctx, c, connID, started)
		return r.err == nil && err == nil && done && r.rightOK(nil) && r.Exact(), r.String(), errors.Join(r.err, err)
	})
	t.Logf("after one reconciliation: %s", r)
	for gap, owner := range fidelityGaps {
		t.Logf("expected gap until branch %q lands: %s = %d", owner, gap, r.gap(gap))
	}
}

// reconciledIdle reports whether a reconciliation pass of the connection
// finished after since, and what it handed out is stored (sweptIdle).
func reconciledIdle(ctx context.Context, c *demo.Cluster, connID string, since time.Time) (bool, error) {
	idle, err := sweptIdle(ctx, c, connID)
	if err != nil || !idle {
		return false, err
	}
	v, err := c.Connection(ctx, connID)
	if err != nil {
		return false, err
	}
	b, err := json.Marshal(v.Sync)
	if err != nil {
		return false, err
	}
	var st struct {
		Reconcile *struct {
			Running      bool      `json:"running"`
			LastFinished time.Time `json:"last_finished"`
		} `json:"reconcile"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return false, fmt.Errorf("sync state %s: %w", b, err)
	}
	return st.Reconcile != nil && !st.Reconcile.Running && st.Reconcile.LastFinished.After(since), nil
}

// sweptIdle reports whether the connection's cursor is at its target with
// nothing pending: the counts taken then are not a sweep in progress.
func sweptIdle(ctx context.Context, c *demo.Cluster, connID string) (bool, error) {
	v, err := c.Connection(ctx, connID)
	if err != nil {
		return false, err
	}
	b, err := json.Marshal(v.Sync)
	if err != nil {
		return false, err
	}
	var st struct {
		Cursor, Target time.Time
		Pending        int64
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return false, fmt.Errorf("sync state %s: %w", b, err)
	}
	return !st.Cursor.IsZero() && !st.Cursor.Before(st.Target) && st.Pending == 0, nil
}

// groundTruth reads GET /_sandbox/ground-truth.
func groundTruth(t *testing.T, ctx context.Context, c *demo.Cluster) notionfake.GroundTruth {
	t.Helper()
	var truth notionfake.GroundTruth
	if err := c.SandboxAdmin(ctx, http.MethodGet, "/_sandbox/ground-truth", nil, &truth); err != nil {
		t.Fatal(err)
	}
	return truth
}

// fidelityResult is a fidelity.Report with its missing objects sorted by
// cause.
type fidelityResult struct {
	fidelity.Report
	missing map[string]int // "missing/<cause>" -> count
	err     error
}

// rightOK reports whether every difference outside fidelityGaps and
// tolerated is 0.
func (r fidelityResult) rightOK(tolerated map[string]string) bool {
	gaps := maps.Clone(fidelityGaps)
	maps.Copy(gaps, tolerated)
	if r.Truncated != 0 || r.Stale != 0 || r.Extra != 0 {
		return false
	}
	if _, gap := gaps["live_but_gone"]; !gap && r.LiveButGone != 0 {
		return false
	}
	if _, gap := gaps["missing_data_sources"]; !gap && r.MissingDataSources != 0 {
		return false
	}
	for cause, n := range r.missing {
		if _, gap := gaps[cause]; !gap && n != 0 {
			return false
		}
	}
	return r.Live > 0
}

func (r fidelityResult) gap(name string) int {
	switch name {
	case "live_but_gone":
		return r.LiveButGone
	case "missing_data_sources":
		return r.MissingDataSources
	}
	return r.missing[name]
}

func (r fidelityResult) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	return fmt.Sprintf("%s; missing by cause %v", r.Counts, r.missing)
}

// checkFidelity compares the file sink of connID with the ground truth.
func checkFidelity(ctx context.Context, c *demo.Cluster, connID string) fidelityResult {
	var truth notionfake.GroundTruth
	if err := c.SandboxAdmin(ctx, http.MethodGet, "/_sandbox/ground-truth", nil, &truth); err != nil {
		return fidelityResult{err: err}
	}
	stored, err := fidelity.FileStore{Root: c.SyncedDir()}.Stored(ctx, connID)
	if err != nil {
		return fidelityResult{err: err}
	}
	rep := fidelity.Check(truth, stored)
	res := fidelityResult{Report: rep, missing: map[string]int{}}
	for cause, n := range rep.MissingByCause {
		res.missing["missing/"+cause] = n
	}
	return res
}
