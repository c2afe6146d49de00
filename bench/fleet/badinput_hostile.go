package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/notionsync/notionsync/internal/demo"
	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/sandbox"
)

// The hostile part of bad-input: besides the poisons that fail, the
// sandbox answers a few pages with block trees that list themselves or an
// ancestor, listings whose has_more never ends (the same cursor again, or
// new cursors with new blocks for ever), huge bodies, and lists with
// fields of the wrong JSON types; one workspace's search returns results
// whose id is not a Notion id. Against the real worker binaries each must
// end as a per-object error (or, for a cycle, a stored page with a note)
// while the other pages sync; the workers' memory stays bounded; and
// workers stopped (SIGTERM) in the middle of an endless walk exit within
// their shutdown timeout. Lifted and edited, the hostile pages sync and
// their errors clear.

// Invariant names of the hostile part.
const (
	invBIHostileError = "each hostile page a per-object error or note naming what it did; bad search results reported"
	invBIHostileStop  = "workers SIGTERMed mid hostile walk exit cleanly within their shutdown timeout"
	invBIMemory       = "worker memory bounded under hostile input"
)

// Walk caps the workers run with in bad-input: small enough for an
// endless listing to reach one in seconds at the fleet's rate limit, large
// enough for the huge pages (about 2,550 blocks in 46 listings and 1.4 MB).
const (
	biMaxBlocks   = 5_000
	biMaxRequests = 100
	biMaxBytes    = 8 << 20
	// biMemoryBound is the peak resident memory (VmHWM) allowed of a
	// worker: the hostile walks stop at biMaxBytes of blocks each, a few
	// at a time, far below it.
	biMemoryBound = 256 << 20
)

func biWorkerEnv() []string {
	return []string{
		fmt.Sprintf("NOTIONSYNC_MAX_OBJECT_BLOCKS=%d", biMaxBlocks),
		fmt.Sprintf("NOTIONSYNC_MAX_OBJECT_REQUESTS=%d", biMaxRequests),
		fmt.Sprintf("NOTIONSYNC_MAX_OBJECT_BYTES=%d", biMaxBytes),
	}
}

// biHostile are the hostile kinds poisoned on one page each, with the
// words a clear per-object error (or note) for it contains.
var biHostile = []struct {
	kind  notionfake.PoisonKind
	words []string
}{
	{notionfake.PoisonCycleSelf, []string{"listed more than once"}},
	{notionfake.PoisonCycleAncestor, []string{"listed more than once"}},
	{notionfake.PoisonEndlessSame, []string{"repeated a pagination cursor"}},
	{notionfake.PoisonEndlessNew, []string{"MaxObjectBlocks", "NOTIONSYNC_MAX_OBJECT_BLOCKS"}},
	{notionfake.PoisonHuge, []string{"MaxObjectBytes", "NOTIONSYNC_MAX_OBJECT_BYTES"}},
	{notionfake.PoisonWrongTypes, []string{"malformed"}},
}

// stored reports whether a page of this hostile kind is stored despite
// it: a cycle is skipped, the rest of the tree is fine.
func hostileStored(k notionfake.PoisonKind) bool {
	return k == notionfake.PoisonCycleSelf || k == notionfake.PoisonCycleAncestor
}

// healthy: a page phase 1 expects in the sink.
func (p *biPage) healthy() bool {
	return p.poison == nil && (p.hostile == "" || hostileStored(p.hostile))
}

func (r *biRun) healthyCount() int {
	n := 0
	for _, p := range r.pages {
		if p.healthy() {
			n++
		}
	}
	return n
}

// hostileState is the hostile part's progress.
type hostileState struct {
	pages      []*biPage
	searchConn *conn // whose search returns bad ids
	endless    *biPage

	// SIGTERM during the endless walk.
	stopped     bool
	stopServed  int // the endless page's listings when the workers were stopped
	stopTimes   []time.Duration
	stopErrs    []string
	restartErrs []string

	peak map[string]int64 // VmHWM by worker process name
}

// poisonHostile poisons one page per hostile kind among the regular
// workspaces' pages not poisoned yet, and the search of the first regular
// workspace.
func (r *biRun) poisonHostile(ctx context.Context) error {
	conns := r.h.conns[:r.plan.regular]
	if len(conns) == 0 {
		conns = r.h.conns
	}
	var wss []string
	for _, c := range conns {
		wss = append(wss, c.workspace)
	}
	byKey := map[string]*biPage{}
	for _, p := range r.pages {
		byKey[p.key()] = p
	}
	r.hs = &hostileState{peak: map[string]int64{}}
	for i, hk := range biHostile {
		got, err := r.h.c.PoisonSandbox(ctx, sandbox.PoisonRequest{
			Target: notionfake.PoisonChildren, Kind: hk.kind, Pages: 1, Workspaces: wss, Seed: biPoisonSeed + 100 + uint64(i),
		})
		if err != nil {
			return fmt.Errorf("poison %s: %w", hk.kind, err)
		}
		for _, ps := range got {
			p := byKey[ps.WorkspaceID+"/"+ps.PageID]
			if p == nil || p.poison != nil {
				return fmt.Errorf("hostile page %s of %s is not an unpoisoned expected page", ps.PageID, ps.WorkspaceID)
			}
			p.hostile = hk.kind
			if hk.kind == notionfake.PoisonCycleAncestor {
				p.blocks++ // the made-up block that points back up is stored as a block of the page
			}
			if hk.kind == notionfake.PoisonEndlessNew {
				r.hs.endless = p
			}
			r.hs.pages = append(r.hs.pages, p)
		}
	}
	r.hs.searchConn = conns[0]
	_, err := r.h.c.PoisonSandbox(ctx, sandbox.PoisonRequest{Target: notionfake.PoisonSearch, Kind: notionfake.PoisonBadID, Workspace: conns[0].workspace})
	return err
}

func hostileWords(k notionfake.PoisonKind) []string {
	for _, hk := range biHostile {
		if hk.kind == k {
			return hk.words
		}
	}
	return nil
}

// hostileVerdict says what is wrong with hostile page p's report in v, or
// "".
func hostileVerdict(p *biPage, v connView) string {
	msg, ok := errorFor(v, p.id)
	switch {
	case v.Sync == nil:
		return "no sync state"
	case !ok:
		return "no per-object error"
	case strings.Contains(msg, "ntn_") || strings.Contains(msg, "nrt_"):
		return "message holds a token"
	}
	for _, w := range hostileWords(p.hostile) {
		if !strings.Contains(msg, w) {
			return fmt.Sprintf("message does not name %q: %q", w, msg)
		}
	}
	return ""
}

// searchVerdict says what is wrong with the report of the bad search
// results, or "".
func (r *biRun) searchVerdict(views map[string]connView) string {
	v := views[r.hs.searchConn.id]
	if v.Sync == nil {
		return "no sync state"
	}
	n := 0
	for k, msg := range v.Sync.Errors {
		if strings.HasPrefix(k, "search:") && strings.Contains(msg, "not a Notion id") {
			n++
		}
	}
	if n == 0 {
		return fmt.Sprintf("no search result error naming a bad id (errors %v)", v.Sync.Errors)
	}
	return ""
}

// hostileLeft counts the hostile reports not yet as they should be.
func (r *biRun) hostileLeft(views map[string]connView) int {
	left := 0
	for _, p := range r.hs.pages {
		if hostileVerdict(p, views[p.conn.id]) != "" {
			left++
		}
	}
	if r.searchVerdict(views) != "" {
		left++
	}
	return left
}

// sampleWorkers records each running worker's peak resident memory.
func (r *biRun) sampleWorkers() {
	for i := 0; r.h.c.Worker(i) != nil; i++ {
		p := r.h.c.Worker(i)
		if p.Exited() {
			continue
		}
		if s, err := sampleProc(p.Pid()); err == nil {
			key := fmt.Sprintf("%s (pid %d)", p.Name(), p.Pid())
			r.hs.peak[key] = max(r.hs.peak[key], s.hwm)
		}
	}
}

// maybeStopDuringWalk stops every worker (SIGTERM, concurrently) once the
// endless page's walk is under way and not yet at its cap, times each
// exit, and starts them again. Once per run.
func (r *biRun) maybeStopDuringWalk(ctx context.Context) {
	if r.hs.stopped || r.hs.endless == nil {
		return
	}
	served := r.servedFor(ctx, r.hs.endless)
	// Endless answers hold 100 blocks: the cap is reached at
	// biMaxBlocks/100+1 listings.
	if served < 3 || served >= biMaxBlocks/100-5 {
		return
	}
	r.hs.stopped, r.hs.stopServed = true, served
	r.sampleWorkers()
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for i := 0; r.h.c.Worker(i) != nil; i++ {
		wg.Go(func() {
			t0 := time.Now()
			err := r.h.c.StopWorker(i)
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			r.hs.stopTimes = append(r.hs.stopTimes, d)
			if err != nil {
				r.hs.stopErrs = append(r.hs.stopErrs, fmt.Sprintf("worker %d: %v", i, err))
			}
		})
	}
	wg.Wait()
	for i := 0; r.h.c.Worker(i) != nil; i++ {
		if err := r.h.c.RestartWorker(ctx, i); err != nil {
			r.hs.restartErrs = append(r.hs.restartErrs, fmt.Sprintf("worker %d: %v", i, err))
		}
	}
}

// servedFor returns how many answers p's poison gave (-1 when unknown).
func (r *biRun) servedFor(ctx context.Context, p *biPage) int {
	served, err := r.h.c.SandboxPoisoned(ctx)
	if err != nil {
		return -1
	}
	for _, ps := range served {
		if ps.WorkspaceID == p.conn.workspace && ps.ID == p.id {
			return ps.Served
		}
	}
	return -1
}

// reportHostile adds the hostile part's figures and invariants.
func (r *biRun) reportHostile(ctx context.Context, rep *Report, views map[string]connView) {
	hs := r.hs
	r.sampleWorkers()
	ok, first := 0, ""
	for _, p := range hs.pages {
		msg, _ := errorFor(views[p.conn.id], p.id)
		rep.figure("  hostile "+string(p.hostile), "%q", msg)
		if why := hostileVerdict(p, views[p.conn.id]); why != "" {
			if first == "" {
				first = fmt.Sprintf(" (first: %s page %s, %s: %s)", p.conn.id, p.id, p.hostile, why)
			}
			continue
		}
		ok++
	}
	searchWhy := r.searchVerdict(views)
	if searchWhy == "" {
		ok++
	} else if first == "" {
		first = " (search: " + searchWhy + ")"
	}
	served, _ := r.h.c.SandboxPoisoned(ctx)
	var counts []string
	for _, ps := range served {
		if ps.Kind.Hostile() {
			counts = append(counts, fmt.Sprintf("%s %d", ps.Kind, ps.Served))
		}
	}
	slices.Sort(counts)
	rep.figure("hostile answers served", "%s (caps: %d blocks, %d requests, %d MiB per object)",
		strings.Join(counts, " · "), biMaxBlocks, biMaxRequests, biMaxBytes>>20)
	rep.invariant(invBIHostileError, ok == len(hs.pages)+1, "%d of %d%s", ok, len(hs.pages)+1, first)

	// SIGTERM mid-walk.
	final := r.servedFor(ctx, hs.endless)
	stopDetail := "never stopped: the endless walk was not seen under way"
	okStop := false
	if hs.stopped {
		slowest := slices.Max(hs.stopTimes)
		okStop = len(hs.stopErrs) == 0 && len(hs.restartErrs) == 0 && slowest <= demo.WorkerShutdownTimeout
		stopDetail = fmt.Sprintf("%d workers stopped after the endless walk's listing %d (of %d in all, cap at %d): slowest exit %s, shutdown timeout %s; stop errors: %s; restart errors: %s",
			len(hs.stopTimes), hs.stopServed, final, biMaxBlocks/100+1, roundD(slowest), demo.WorkerShutdownTimeout,
			orNone(hs.stopErrs), orNone(hs.restartErrs))
	}
	rep.invariant(invBIHostileStop, okStop, "%s", stopDetail)

	// Memory.
	var peak int64
	var parts []string
	for name, b := range hs.peak {
		peak = max(peak, b)
		parts = append(parts, fmt.Sprintf("%s %d MiB", name, b>>20))
	}
	slices.Sort(parts)
	rep.figure("worker peak RSS (VmHWM)", "%s", strings.Join(parts, " · "))
	rep.invariant(invBIMemory, peak > 0 && peak <= biMemoryBound, "peak %d MiB, bound %d MiB", peak>>20, biMemoryBound>>20)
}

// touchHostile edits every hostile page (the poison is lifted): a new
// version, which the workers walk again; and re-reads what the sink must
// then hold.
func (r *biRun) touchHostile(ctx context.Context) error {
	wss := map[string]bool{}
	for _, p := range r.hs.pages {
		if err := r.h.c.SandboxAdmin(ctx, http.MethodPost, "/_sandbox/pages/"+url.PathEscape(p.id)+"/touch",
			map[string]string{"text": "edited after the hostile answers stopped", "workspace": p.conn.workspace}, nil); err != nil {
			return fmt.Errorf("touch %s: %w", p.id, err)
		}
		wss[p.conn.workspace] = true
	}
	for ws := range wss {
		e, err := r.h.c.ExpectedFor(ctx, ws)
		if err != nil {
			return err
		}
		for _, ep := range e.Pages {
			for _, p := range r.byConn[ws] {
				if p.id == ep.ID && p.hostile != "" {
					p.blocks, p.storedAt, p.mod, p.size = ep.Blocks, time.Time{}, time.Time{}, 0
				}
			}
		}
	}
	return nil
}
