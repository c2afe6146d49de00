package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/notionsync/notionsync/internal/demo"
	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/sandbox"
)

// The bad-input scenario: while the connections sync, the sandbox answers
// malformed JSON, HTML error pages and 500s for a few specific pages (on
// their page GET or their block children), serves huge pages and unknown
// block types, refuses valid cursors, and answers the first requests with
// one-shot truncated JSON and HTML pages. Each poisoned page must surface as
// a per-object error of its connection that holds the cursor back, nothing
// else may be lost, nothing may crash; once the poison is lifted the
// poisoned pages must sync and their errors clear.

// Invariant names of bad-input.
const (
	invBIHealthyStored  = "every healthy page in the sink with all its blocks (huge pages included)"
	invBIUnknownKept    = "unknown block types stored, not dropped"
	invBIPerObjectError = "each poisoned page a per-object error naming the failure; its connection's cursor held"
	invBICursorsRefused = "refused cursors restart the listing: nothing lost"
	invBIRecovered      = "poison lifted: the poisoned pages sync, their errors clear, nothing pending"
	invBIRunning        = "every worker and scheduler still running"
)

const (
	// biErrorGrace is how long, once the healthy pages are stored, the
	// scenario still waits for the poisoned pages' errors.
	biErrorGrace = time.Minute
	// biRecoverTimeout bounds the wait for the poisoned pages after the
	// poison is lifted: their retries back off up to a minute.
	biRecoverTimeout = 150 * time.Second
	// biPoisonSeed draws the poisoned pages.
	biPoisonSeed = 20240611
	// biUnknownType is the block type notionfake seeds as unknown.
	biUnknownType = "ai_block"
)

// biKinds are the poison kinds, each with the words one of which a clear
// error message for it contains (lower case).
var biKinds = []struct {
	kind  notionfake.PoisonKind
	words []string
}{
	{notionfake.PoisonMalformed, []string{"malformed", "json", "truncated"}},
	{notionfake.PoisonHTML, []string{"json", "html", "403"}},
	{notionfake.PoisonServerError, []string{"500", "internal_server_error", "internal server error"}},
}

var biTargets = []notionfake.PoisonTarget{notionfake.PoisonPageGet, notionfake.PoisonChildren}

// biPlan sizes the scenario from the configuration.
type biPlan struct {
	huge          int // workspaces with a huge page, the last ones
	regular       int
	perCombo      int // poisoned pages per (target, kind)
	oneShot       int // one-shot malformed and HTML answers, each
	invalidCursor int
}

func newBIPlan(cfg Config) biPlan {
	p := biPlan{huge: min(max(cfg.Connections/10, 1), 10)}
	p.regular = cfg.Connections - p.huge
	// About one page in ten poisoned, 1..3 per (target, kind).
	regularPages := p.regular * cfg.Pages
	p.perCombo = min(max(regularPages/10/(len(biTargets)*len(biKinds)), 1), 3)
	p.oneShot = max(cfg.Connections/2, 1)
	p.invalidCursor = 2 * p.huge
	return p
}

// biPage is one page the scenario expects in the sink.
type biPage struct {
	conn   *conn
	id     string
	blocks int // expected block count
	huge   bool
	poison *notionfake.Poisoned // nil: healthy
	// hostile is the hostile poison kind of the page, "" for none (see
	// badinput_hostile.go).
	hostile notionfake.PoisonKind

	// What the sink showed: the file's state when last read, the blocks
	// and unknown blocks counted then, and when it was first complete.
	mod      time.Time
	size     int64
	got      int
	unknown  int
	storedAt time.Time
	// The per-object error: when first seen, and the last message.
	errorAt time.Time
	message string
}

func (p *biPage) key() string { return p.conn.id + "/" + p.id }

// sinkDoc is what the scenario reads of a stored page document.
type sinkDoc struct {
	Meta struct {
		Deleted  bool `json:"deleted"`
		Unshared bool `json:"unshared"`
	} `json:"_notionsync"`
	Blocks []sinkBlock `json:"blocks"`
}

type sinkBlock struct {
	Type     string      `json:"type"`
	Children []sinkBlock `json:"children"`
}

func countSinkBlocks(bs []sinkBlock) (n, unknown int) {
	for _, b := range bs {
		n++
		if b.Type == biUnknownType {
			unknown++
		}
		cn, cu := countSinkBlocks(b.Children)
		n += cn
		unknown += cu
	}
	return n, unknown
}

// refresh reads the page's sink document if it changed since the last read
// and reports whether the page is stored, live, with all its blocks.
func (p *biPage) refresh(syncedDir string, now time.Time) bool {
	if !p.storedAt.IsZero() {
		return true
	}
	path := filepath.Join(syncedDir, p.conn.id, "pages", p.id+".json")
	fi, err := os.Stat(path)
	if err != nil || (fi.ModTime().Equal(p.mod) && fi.Size() == p.size) {
		return false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var doc sinkDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return false // replaced atomically, so a failure is a bad document: read it again when it changes
	}
	p.mod, p.size = fi.ModTime(), fi.Size()
	p.got, p.unknown = countSinkBlocks(doc.Blocks)
	if p.got == p.blocks && !doc.Meta.Deleted && !doc.Meta.Unshared {
		p.storedAt = now
		return true
	}
	return false
}

// biRun is a bad-input run in progress.
type biRun struct {
	h        *harness
	plan     biPlan
	pages    []*biPage
	poisoned []*biPage
	byConn   map[string][]*biPage
	hs       *hostileState
}

// runBadInput: see the top of this file.
func runBadInput(ctx context.Context, cfg Config) (rep *Report, err error) {
	rep = newReport(ScenarioBadInput, cfg)
	h, err := startHarness(ctx, cfg, demo.Options{AccessTokenLifetime: 6 * time.Hour, Env: biWorkerEnv()})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stopErr(h)) }()
	r := &biRun{h: h, plan: newBIPlan(cfg), byConn: map[string][]*biPage{}}

	seeded, err := r.seed(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.poison(ctx); err != nil {
		return nil, err
	}
	if err := r.poisonHostile(ctx); err != nil {
		return nil, err
	}
	if err := h.c.SetSandboxFaults(ctx, map[string]any{
		"malformed_next": r.plan.oneShot, "html_error_next": r.plan.oneShot, "invalid_cursor_next": r.plan.invalidCursor,
	}); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := r.connect(ctx, seeded); err != nil {
		return nil, fmt.Errorf("create connections: %w", err)
	}
	rep.figure("connections created", "%d in %s: %d with a huge page, %d with %d pages of %d blocks; unknown block type %q in every page",
		len(h.conns), roundD(time.Since(t0)), r.plan.huge, r.plan.regular, cfg.Pages, cfg.Blocks, biUnknownType)

	// Phase 1: the healthy pages are stored, the poisoned ones reported.
	waitErr := r.waitPoisoned(ctx, t0, cfg.SyncTimeout)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	views, err := h.list(ctx)
	if err != nil {
		return nil, err
	}
	st, err := h.sandboxStats(ctx)
	if err != nil {
		return nil, err
	}
	served, err := h.c.SandboxPoisoned(ctx)
	if err != nil {
		return nil, err
	}
	r.reportPhase1(rep, views, st, served, t0, waitErr)
	r.reportHostile(ctx, rep, views)

	// Phase 2: lift the poison; the poisoned pages must sync.
	cleared, err := h.c.ClearSandboxPoison(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.touchHostile(ctx); err != nil {
		return nil, err
	}
	liftedAt := time.Now()
	recoverErr := r.waitRecovered(ctx, biRecoverTimeout)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err := r.reportPhase2(ctx, rep, cleared, liftedAt, recoverErr); err != nil {
		return nil, err
	}

	counts, total := taskErrors(h.c.LogDir())
	rep.figure("task errors (worker logs)", "%d; distinct messages: %s", total, counts)
	st, err = h.sandboxStats(ctx)
	if err != nil {
		return nil, err
	}
	rep.figure("data requests", "%d; by status %v", st.Data.Requests, st.Data.ByStatus)
	if err := checkCommon(ctx, h, rep, 0, nil); err != nil {
		return nil, err
	}
	// The workers the scenario stopped on purpose were started again:
	// every node's current process must run.
	var gone []string
	nodes := 0
	for _, get := range []func(int) *demo.Process{h.c.Worker, h.c.Scheduler} {
		for i := 0; get(i) != nil; i++ {
			nodes++
			if p := get(i); p.Exited() {
				gone = append(gone, fmt.Sprintf("%s (%v)", p.Name(), p.ExitErr()))
			}
		}
	}
	rep.invariant(invBIRunning, len(gone) == 0, "%d of %d workers and schedulers running; exited: %s", nodes-len(gone), nodes, orNone(gone))
	return rep, nil
}

// seed creates the workspaces: the regular ones, then those with a huge
// page, each with the unknown block type in every page, and reads every
// workspace's expected pages and block counts.
func (r *biRun) seed(ctx context.Context) ([]sandbox.FleetWorkspace, error) {
	h, cfg := r.h, r.h.cfg
	var seeded []sandbox.FleetWorkspace
	add := func(start, count, huge int) error {
		const batch = 500
		for off := 0; off < count; off += batch {
			var resp sandbox.WorkspacesResponse
			if err := h.c.SandboxAdmin(ctx, http.MethodPost, "/_sandbox/workspaces", sandbox.WorkspacesRequest{
				Count: min(batch, count-off), Start: start + off, Prefix: "fleet-",
				Pages: &cfg.Pages, BlocksPerPage: &cfg.Blocks, UnknownBlocks: true, HugePages: huge,
				RedirectURI: h.redirectURI(),
			}, &resp); err != nil {
				return err
			}
			seeded = append(seeded, resp.Workspaces...)
		}
		return nil
	}
	if err := add(0, r.plan.regular, 0); err != nil {
		return nil, err
	}
	if r.plan.huge > 0 {
		if err := add(r.plan.regular, r.plan.huge, 1); err != nil {
			return nil, err
		}
	}
	exps := make([]sandbox.ExpectedResponse, len(seeded))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(setupParallelism)
	for i, ws := range seeded {
		g.Go(func() error {
			e, err := h.c.ExpectedFor(gctx, ws.WorkspaceID)
			exps[i] = e
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("expected content: %w", err)
	}
	for i, ws := range seeded {
		c := &conn{id: ws.WorkspaceID, workspace: ws.WorkspaceID, pages: ws.Pages}
		h.conns = append(h.conns, c)
		h.byID[c.id] = c
		for _, ep := range exps[i].Pages {
			p := &biPage{conn: c, id: ep.ID, blocks: ep.Blocks, huge: slices.Contains(ws.HugePageIDs, ep.ID)}
			r.pages = append(r.pages, p)
			r.byConn[c.id] = append(r.byConn[c.id], p)
		}
	}
	return seeded, nil
}

// poison poisons perCombo random pages of the regular workspaces (of all
// of them when there is none, with -connections 1) for each target and
// kind, never more than half their pages.
func (r *biRun) poison(ctx context.Context) error {
	conns := r.h.conns[:r.plan.regular]
	if len(conns) == 0 {
		conns = r.h.conns
	}
	var wss []string
	candidates := 0
	for _, c := range conns {
		wss = append(wss, c.workspace)
		candidates += len(r.byConn[c.id])
	}
	byKey := map[string]*biPage{}
	for _, p := range r.pages {
		byKey[p.key()] = p
	}
	budget := max(candidates/2, 1)
	seed := uint64(biPoisonSeed)
	for _, target := range biTargets {
		for _, k := range biKinds {
			n := min(r.plan.perCombo, budget)
			if n <= 0 {
				continue
			}
			budget -= n
			seed++
			got, err := r.h.c.PoisonSandbox(ctx, sandbox.PoisonRequest{
				Target: target, Kind: k.kind, Pages: n, Workspaces: wss, Seed: seed,
			})
			if err != nil {
				return fmt.Errorf("poison %s/%s: %w", target, k.kind, err)
			}
			for _, ps := range got {
				p := byKey[ps.WorkspaceID+"/"+ps.PageID]
				if p == nil {
					return fmt.Errorf("poisoned page %s of %s is not an expected page", ps.PageID, ps.WorkspaceID)
				}
				p.poison = &ps
				r.poisoned = append(r.poisoned, p)
			}
		}
	}
	return nil
}

// connect exchanges every workspace's code and imports the pair, as
// createConnections does.
func (r *biRun) connect(ctx context.Context, seeded []sandbox.FleetWorkspace) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(setupParallelism)
	for i, ws := range seeded {
		c := r.h.conns[i]
		g.Go(func() error {
			tr, err := r.h.exchange(gctx, ws.Code)
			if err != nil {
				return fmt.Errorf("%s: %w", ws.WorkspaceID, err)
			}
			if err := r.h.importPair(gctx, c.id, tr); err != nil {
				return err
			}
			c.importedAt = time.Now()
			return nil
		})
	}
	return g.Wait()
}

// errorFor returns the per-object error v holds for page id: keyed by the
// page id (or a key naming it).
func errorFor(v connView, id string) (string, bool) {
	if v.Sync == nil {
		return "", false
	}
	if msg, ok := v.Sync.Errors[id]; ok {
		return msg, true
	}
	for k, msg := range v.Sync.Errors {
		if strings.Contains(k, id) {
			return msg, true
		}
	}
	return "", false
}

// poisonVerdict says what is wrong with poisoned page p's report in v, or
// "" when it is a per-object error naming the failure while the
// connection's cursor is held.
func poisonVerdict(p *biPage, v connView) string {
	msg, ok := errorFor(v, p.id)
	switch {
	case v.Sync == nil:
		return "no sync state"
	case !ok:
		return "no per-object error"
	case !namesFailure(p.poison.Kind, msg):
		return fmt.Sprintf("message does not name the failure: %q", msg)
	case strings.Contains(msg, "ntn_") || strings.Contains(msg, "nrt_"):
		return "message holds a token"
	case v.Sync.Pending == 0:
		return "nothing pending: the cursor may pass the page"
	case !v.Sync.Cursor.Before(v.Sync.Target):
		return fmt.Sprintf("cursor %s at its target", v.Sync.Cursor.Format(time.RFC3339))
	}
	return ""
}

func namesFailure(kind notionfake.PoisonKind, msg string) bool {
	lower := strings.ToLower(msg)
	for _, k := range biKinds {
		if k.kind == kind {
			return slices.ContainsFunc(k.words, func(w string) bool { return strings.Contains(lower, w) })
		}
	}
	return false
}

// waitPoisoned polls until every healthy page is in the sink with all its
// blocks and every poisoned page is reported as a per-object error, or
// until timeout (and at most biErrorGrace once the healthy pages are
// stored).
func (r *biRun) waitPoisoned(ctx context.Context, t0 time.Time, timeout time.Duration) error {
	deadline := t0.Add(timeout)
	var storedAt time.Time
	for {
		now := time.Now()
		healthyLeft := 0
		for _, p := range r.pages {
			if p.healthy() && !p.refresh(r.h.c.SyncedDir(), now) {
				healthyLeft++
			}
		}
		if healthyLeft == 0 && storedAt.IsZero() {
			storedAt = now
		}
		reportedLeft := 0
		views, err := r.h.list(ctx)
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		for _, p := range r.poisoned {
			v := views[p.conn.id]
			if msg, ok := errorFor(v, p.id); ok {
				p.message = msg
				if p.errorAt.IsZero() {
					p.errorAt = now
				}
			}
			if err != nil || poisonVerdict(p, v) != "" {
				reportedLeft++
			}
		}
		hostileLeft := len(r.hs.pages) + 1
		if err == nil {
			hostileLeft = r.hostileLeft(views)
		}
		r.sampleWorkers()
		r.maybeStopDuringWalk(ctx)
		switch {
		case healthyLeft == 0 && reportedLeft == 0 && hostileLeft == 0:
			return nil
		case !storedAt.IsZero() && now.After(storedAt.Add(biErrorGrace)):
			return fmt.Errorf("%d of %d poisoned pages and %d hostile objects not reported %v after the healthy pages were stored", reportedLeft, len(r.poisoned), hostileLeft, biErrorGrace)
		case now.After(deadline):
			return fmt.Errorf("within %v: %d healthy pages not stored, %d poisoned pages and %d hostile objects not reported", timeout, healthyLeft, reportedLeft, hostileLeft)
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return err
		}
	}
}

// reportPhase1 adds the figures and invariants of the poisoned phase.
func (r *biRun) reportPhase1(rep *Report, views map[string]connView, st sandbox.StatsResponse,
	served []notionfake.Poisoned, t0 time.Time, waitErr error) {
	h := r.h
	rep.figure("one-shot faults", "%d truncated JSON answers and %d HTML 403 pages for the first requests (pending at the end of phase 1: %d)",
		r.plan.oneShot, r.plan.oneShot, st.Faults.PendingDataFaults)
	combos := map[string]int{}
	for _, p := range r.poisoned {
		combos[string(p.poison.Target)+"/"+string(p.poison.Kind)]++
	}
	var parts []string
	for k, n := range combos {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, n))
	}
	sort.Strings(parts)
	rep.figure("poisoned pages", "%d in %d connections (target/kind: %s)", len(r.poisoned), len(r.poisonedConns()), strings.Join(parts, ", "))
	perObject := make([]int, 0, len(served))
	total := 0
	for _, p := range served {
		perObject = append(perObject, p.Served)
		total += p.Served
	}
	slices.Sort(perObject)
	if len(perObject) > 0 {
		rep.figure("requests the poisoned objects answered", "%d in %s (per object: median %d · max %d): the retries' backoff",
			total, roundD(time.Since(t0)), perObject[len(perObject)/2], perObject[len(perObject)-1])
	}

	// Healthy pages.
	stored, missing, hugeStored, hugeHealthy := 0, "", 0, 0
	unknownWant, unknownGot := 0, 0
	for _, p := range r.pages {
		if !p.healthy() {
			continue
		}
		if p.huge {
			hugeHealthy++
		}
		unknownWant++
		if p.storedAt.IsZero() {
			if missing == "" {
				missing = fmt.Sprintf(" (first missing: %s page %s, %d of %d blocks stored)", p.conn.id, p.id, p.got, p.blocks)
			}
			continue
		}
		stored++
		unknownGot += min(p.unknown, 1)
		if p.huge {
			hugeStored++
		}
	}
	var lags []time.Duration
	for _, c := range h.conns {
		last := time.Time{}
		for _, p := range r.byConn[c.id] {
			if p.healthy() && p.storedAt.After(last) {
				last = p.storedAt
			}
		}
		if !last.IsZero() {
			lags = append(lags, last.Sub(c.importedAt))
		}
	}
	rep.figure("healthy pages stored (import to all blocks in the sink)", "p50 %s · p99 %s · max %s",
		roundD(percentile(lags, 50)), roundD(percentile(lags, 99)), roundD(percentile(lags, 100)))
	if hp := r.pagesWhere(func(p *biPage) bool { return p.huge }); len(hp) > 0 {
		top := notionfake.DefaultHugePageBlocks + 1 // and the unknown block
		rep.figure("huge pages", "%d, %d blocks each: %d at the top level (%d block-children requests of 100) and nested toggles; a %d KB paragraph in %d-character rich text runs",
			len(hp), hp[0].blocks, top, (top+99)/100, notionfake.DefaultHugeTextBytes/1000, notionfake.MaxRichTextContent)
	}
	detail := fmt.Sprintf("%d of %d (huge: %d of %d)%s", stored, r.healthyCount(), hugeStored, hugeHealthy, missing)
	if waitErr != nil {
		detail += "; " + waitErr.Error()
	}
	rep.invariant(invBIHealthyStored, stored == r.healthyCount(), "%s", detail)
	rep.invariant(invBIUnknownKept, unknownGot == stored && stored > 0, "%d of %d stored pages hold their %q block", unknownGot, stored, biUnknownType)

	// Poisoned pages.
	ok, first := 0, ""
	samples := map[notionfake.PoisonKind]string{}
	var seen []time.Duration
	for _, p := range r.poisoned {
		v := views[p.conn.id]
		if !p.errorAt.IsZero() {
			seen = append(seen, p.errorAt.Sub(p.conn.importedAt))
		}
		if msg, found := errorFor(v, p.id); found && samples[p.poison.Kind] == "" {
			samples[p.poison.Kind] = msg
		}
		if why := poisonVerdict(p, v); why != "" {
			if first == "" {
				first = fmt.Sprintf(" (first: %s page %s, %s/%s: %s)", p.conn.id, p.id, p.poison.Target, p.poison.Kind, why)
			}
			continue
		}
		ok++
	}
	for _, k := range biKinds {
		rep.figure("  error for "+string(k.kind), "%q", samples[k.kind])
	}
	rep.figure("poisoned page to per-object error", "%d of %d seen · p50 %s · max %s after import",
		len(seen), len(r.poisoned), roundD(percentile(seen, 50)), roundD(percentile(seen, 100)))
	rep.invariant(invBIPerObjectError, ok == len(r.poisoned) && len(r.poisoned) > 0, "%d of %d%s", ok, len(r.poisoned), first)

	// Invalid cursors.
	injected := st.Data.InjectedInvalidCursors
	rep.figure("invalid cursors", "%d of %d injected refusals served (%d pending); %d requests refused for their cursor in all",
		injected, r.plan.invalidCursor, st.Faults.PendingInvalidCursors, st.Data.InvalidCursors)
	cursorDetail := fmt.Sprintf("%d cursors refused; %d of %d healthy huge pages complete", injected, hugeStored, hugeHealthy)
	if injected == 0 {
		cursorDetail += " (no request carried a cursor: nothing tested)"
	}
	rep.invariant(invBICursorsRefused, injected > 0 && hugeStored == hugeHealthy, "%s", cursorDetail)
}

// waitRecovered polls until every page (the formerly poisoned ones
// included) is in the sink with all its blocks and every connection is
// synced with nothing pending and no error left, or until timeout.
func (r *biRun) waitRecovered(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, c := range r.h.conns {
		c.syncedAt = time.Time{}
	}
	last := ""
	for {
		now := time.Now()
		pagesLeft := 0
		for _, p := range r.pages {
			if !p.refresh(r.h.c.SyncedDir(), now) {
				pagesLeft++
			}
		}
		views, err := r.h.list(ctx)
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		connsLeft := 0
		if err != nil {
			connsLeft = len(r.h.conns)
			last = err.Error()
		}
		for _, c := range r.h.conns {
			if err != nil {
				break
			}
			v := views[c.id]
			if v.synced(c.pages) && len(v.Sync.Errors) == 0 {
				if c.syncedAt.IsZero() {
					c.syncedAt = now
				}
				continue
			}
			connsLeft++
			if connsLeft == 1 {
				last = fmt.Sprintf("first: %s %s %+v", c.id, v.Status, v.Sync)
			}
		}
		if pagesLeft == 0 && connsLeft == 0 {
			return nil
		}
		if now.After(deadline) {
			return fmt.Errorf("within %v: %d pages not stored, %d connections not synced clean (%s)", timeout, pagesLeft, connsLeft, last)
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return err
		}
	}
}

// reportPhase2 adds the figures and invariants of the recovery.
func (r *biRun) reportPhase2(ctx context.Context, rep *Report, cleared int, liftedAt time.Time, recoverErr error) error {
	views, err := r.h.list(ctx)
	if err != nil {
		return err
	}
	stored, errorsLeft, first := 0, 0, ""
	var took []time.Duration
	for _, p := range r.poisoned {
		_, hasErr := errorFor(views[p.conn.id], p.id)
		if hasErr {
			errorsLeft++
		}
		if !p.storedAt.IsZero() {
			stored++
			took = append(took, p.storedAt.Sub(liftedAt))
		} else if first == "" {
			first = fmt.Sprintf(" (first not stored: %s page %s, %d of %d blocks)", p.conn.id, p.id, p.got, p.blocks)
		}
	}
	synced, pending, withErrors := 0, 0, 0
	for _, c := range r.h.conns {
		v := views[c.id]
		complete := !slices.ContainsFunc(r.byConn[c.id], func(p *biPage) bool { return p.storedAt.IsZero() })
		if v.synced(c.pages) && len(v.Sync.Errors) == 0 && complete {
			synced++
		}
		if v.Sync != nil {
			pending += int(v.Sync.Pending)
			if len(v.Sync.Errors) > 0 {
				withErrors++
			}
		}
	}
	rep.figure("poison lifted", "%d objects; poisoned pages stored p50 %s · max %s after (per-page retry backoff)",
		cleared, roundD(percentile(took, 50)), roundD(percentile(took, 100)))
	detail := fmt.Sprintf("%d of %d poisoned pages stored with all their blocks; %d of their errors left; %d objects pending, %d connections with errors%s",
		stored, len(r.poisoned), errorsLeft, pending, withErrors, first)
	if recoverErr != nil {
		detail += "; " + recoverErr.Error()
	}
	rep.invariant(invBIRecovered, recoverErr == nil && stored == len(r.poisoned) && errorsLeft == 0 && pending == 0, "%s", detail)
	rep.invariant(invAllSynced, synced == len(r.h.conns), "%d of %d (cursor at target, nothing pending, no error, every page stored)",
		synced, len(r.h.conns))
	return nil
}

func (r *biRun) poisonedConns() map[string]bool {
	out := map[string]bool{}
	for _, p := range r.poisoned {
		out[p.conn.id] = true
	}
	return out
}

func (r *biRun) pagesWhere(f func(*biPage) bool) []*biPage {
	var out []*biPage
	for _, p := range r.pages {
		if f(p) {
			out = append(out, p)
		}
	}
	return out
}
