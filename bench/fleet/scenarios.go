package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/notionsync/notionsync/internal/demo"
	"github.com/notionsync/notionsync/internal/sandbox"
)

// Scenario names.
const (
	ScenarioFleetSync    = "fleet-sync"
	ScenarioRefreshStorm = "refresh-storm"
	ScenarioRevocation   = "revocation"
	ScenarioBadInput     = "bad-input"
	ScenarioChaos        = "chaos"
	ScenarioTokenFaults  = "token-faults"
	ScenarioKillSync     = "kill-sync"
)

// Scenarios lists the scenarios Run knows, in the order "all" runs them.
var Scenarios = []string{ScenarioFleetSync, ScenarioRefreshStorm, ScenarioRevocation, ScenarioChaos, ScenarioTokenFaults, ScenarioBadInput}

// ScenarioKillSync is run only by name: it needs workspaces big enough to
// still be backfilling when a worker is killed (see runKillSync).

// Invariant names the test asserts on.
const (
	invAllSynced      = "every connection synced"
	invNoInvalidGrant = "invalid_grant from coordination = 0"
	invOneGrant       = "refresh grants per rotation = 1"
	invAllActive      = "no connection lost"
	invNoCrash        = "no process crashed"
	invQuiet          = "revoked connections cost zero Notion calls"
	invReauthOnce     = "each revoked connection turned needs_reauth once"
	invResumed        = "reconnected connections resume"
	invRecovered      = "no task lost: every connection swept again after each fault"
)

// Run runs one scenario.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	switch cfg.Scenario {
	case ScenarioFleetSync:
		return runFleetSync(ctx, cfg)
	case ScenarioRefreshStorm:
		return runRefreshStorm(ctx, cfg)
	case ScenarioRevocation:
		return runRevocation(ctx, cfg)
	case ScenarioBadInput:
		return runBadInput(ctx, cfg)
	case ScenarioChaos:
		return runChaos(ctx, cfg)
	case ScenarioTokenFaults:
		return runTokenFaults(ctx, cfg)
	case ScenarioKillSync:
		return runKillSync(ctx, cfg)
	case ScenarioFidelity:
		return runFidelity(ctx, cfg)
	}
	return nil, fmt.Errorf("unknown scenario %q (want one of %s, %s, %s)", cfg.Scenario, strings.Join(Scenarios, ", "), ScenarioKillSync, ScenarioFidelity)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// setup starts the harness, creates the connections and waits for their
// first complete sync, reporting creation speed and sync lag.
func setup(ctx context.Context, cfg Config, opts demo.Options, rep *Report, unknownBlocks bool) (*harness, time.Time, error) {
	h, err := startHarness(ctx, cfg, opts)
	if err != nil {
		return nil, time.Time{}, err
	}
	t0 := time.Now()
	if err := h.createConnections(ctx, cfg.Connections, unknownBlocks); err != nil {
		return h, t0, fmt.Errorf("create connections: %w", err)
	}
	took := time.Since(t0)
	rep.figure("connections created", "%d in %s (%.0f/s; seed workspace, code exchange, import API)",
		len(h.conns), roundD(took), float64(len(h.conns))/took.Seconds())
	syncErr := h.waitSynced(ctx, h.conns, cfg.SyncTimeout)
	var lags []time.Duration
	for _, c := range h.conns {
		if !c.syncedAt.IsZero() {
			lags = append(lags, c.syncedAt.Sub(c.importedAt))
		}
	}
	rep.figure("sync lag (import to cursor at target)", "p50 %s · p99 %s · max %s (polled every %v)",
		roundD(percentile(lags, 50)), roundD(percentile(lags, 99)), roundD(percentile(lags, 100)), pollEvery)
	detail := fmt.Sprintf("%d of %d", len(lags), len(h.conns))
	if syncErr != nil {
		detail += ": " + syncErr.Error()
	}
	rep.invariant(invAllSynced, syncErr == nil, "%s", detail)
	return h, t0, nil
}

// statusCount returns the data requests the sandbox answered status.
func statusCount(st sandbox.StatsResponse, status int) int { return st.Data.ByStatus[status] }

// reportProcs adds CPU and memory figures for each process between two
// samplings.
func reportProcs(rep *Report, before, after map[string]procSample) {
	names := make([]string, 0, len(after))
	for n := range after {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a, b := after[n], before[n]
		if b.at.IsZero() {
			continue
		}
		wall := a.at.Sub(b.at)
		rep.figure("  "+n, "CPU %.0f%% of a core · RSS %s (peak %s)",
			100*ratio(float64(a.cpu-b.cpu), float64(wall)), mib(a.rss), mib(a.hwm))
	}
}

// checkCommon adds the invariants every scenario shares: no invalid_grant
// beyond allowed, every connection active (except those in except), no
// process crashed.
func checkCommon(ctx context.Context, h *harness, rep *Report, allowedInvalid int, except map[string]bool) error {
	st, err := h.sandboxStats(ctx)
	if err != nil {
		return err
	}
	ig := st.Tokens.InvalidGrants
	rep.invariant(invNoInvalidGrant, ig <= allowedInvalid, "%d invalid_grant answers (%d expected from revocations)", ig, allowedInvalid)
	views, err := h.list(ctx)
	if err != nil {
		return err
	}
	lost := 0
	first := ""
	for _, c := range h.conns {
		v := views[c.id]
		if except[c.id] {
			continue
		}
		if v.Status != "active" {
			lost++
			if first == "" {
				first = fmt.Sprintf(" (first: %s %s %s)", c.id, v.Status, v.Reason)
			}
		}
	}
	rep.invariant(invAllActive, lost == 0, "%d of %d connections not active%s", lost, len(h.conns)-len(except), first)
	var crashed []string
	for _, p := range h.c.Processes() {
		if p.Unexpected() {
			crashed = append(crashed, fmt.Sprintf("%s (%v)", p.Name(), p.ExitErr()))
		}
	}
	rep.invariant(invNoCrash, len(crashed) == 0, "%s", orNone(crashed))
	return nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// runFleetSync: N connections at Notion's default limit synced by W
// workers; the figures of the initial sync (where there is work) and of a
// steady window without refreshes.
func runFleetSync(ctx context.Context, cfg Config) (rep *Report, err error) {
	rep = newReport(ScenarioFleetSync, cfg)
	// Access tokens outlive the run: the window measures sync overhead
	// outside refreshes.
	opts := demo.Options{AccessTokenLifetime: 6 * time.Hour}
	h, err := startHarness(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stopErr(h)) }()
	if cfg.Latency > 0 {
		if err := h.c.SetSandboxFaults(ctx, map[string]any{"latency": cfg.Latency.String(), "target": "data"}); err != nil {
			return nil, err
		}
		rep.figure("sandbox latency", "%v per data request", cfg.Latency)
	}
	procs := h.mainProcs()
	red0, err := h.redisStats(ctx)
	if err != nil {
		return nil, err
	}
	sb0, err := h.sandboxStats(ctx)
	if err != nil {
		return nil, err
	}
	rt0, err := h.redisRoundTrips(ctx)
	if err != nil {
		return nil, err
	}
	cpu0 := sampleAll(procs)
	t0 := time.Now()
	if err := h.createConnections(ctx, cfg.Connections, false); err != nil {
		return nil, fmt.Errorf("create connections: %w", err)
	}
	took := time.Since(t0)
	rep.figure("connections created", "%d in %s (%.0f/s; seed workspace, code exchange, import API)",
		len(h.conns), roundD(took), float64(len(h.conns))/took.Seconds())
	// Lag: polling the sink costs no Redis command, so the work window's
	// Redis figures are the cluster's own.
	syncErr := h.waitContent(ctx, h.conns, cfg.SyncTimeout)
	t1 := time.Now()
	sb1, err := h.sandboxStats(ctx)
	if err != nil {
		return nil, err
	}
	red1, err := h.redisStats(ctx)
	if err != nil {
		return nil, err
	}
	rt1, err := h.redisRoundTrips(ctx)
	if err != nil {
		return nil, err
	}
	cpu1 := sampleAll(procs)
	if syncErr == nil {
		// Then the sync state: every cursor at its target.
		if err := h.waitSweptAfter(ctx, time.Time{}, cfg.SyncTimeout); err != nil {
			syncErr = fmt.Errorf("pages stored, but the sync state disagrees: %w", err)
		}
	}
	var lags []time.Duration
	lastSynced := t0
	for _, c := range h.conns {
		if !c.syncedAt.IsZero() {
			lags = append(lags, c.syncedAt.Sub(c.importedAt))
			if c.syncedAt.After(lastSynced) {
				lastSynced = c.syncedAt
			}
		}
	}
	detail := fmt.Sprintf("%d of %d", len(lags), len(h.conns))
	if syncErr != nil {
		detail += ": " + syncErr.Error()
	}

	// Initial sync: the window with work, up to the poll that saw the
	// last connection synced.
	work := lastSynced.Sub(t0)
	reqs := sb1.Data.Requests - sb0.Data.Requests
	limited := statusCount(sb1, http.StatusTooManyRequests) - statusCount(sb0, http.StatusTooManyRequests)
	budget := float64(cfg.Connections*cfg.RateLimit) / 60
	achieved := float64(reqs) / work.Seconds()
	rep.figure("initial sync", "all %d connections synced %s after the first import (work window)", len(lags), roundD(lastSynced.Sub(t0)))
	rep.figure("sync lag (import to all pages in the sink)", "p50 %s · p99 %s · max %s (sink polled every %v; then every cursor checked at its target)",
		roundD(percentile(lags, 50)), roundD(percentile(lags, 99)), roundD(percentile(lags, 100)), contentPollEvery)
	rep.figure("Notion requests (work window)", "%d in %s = %.0f req/s; sum of the connections' limits %.0f req/s (%.1f%%)",
		reqs, roundD(work), achieved, budget, 100*achieved/budget)
	perConn := float64(reqs) / float64(max(len(h.conns), 1))
	burst := max(1, cfg.RateLimit/10)
	binds := perConn > float64(burst)
	rep.figure("requests per connection", "%.1f; notionsync's burst per connection is %d, so the rate limit %s",
		perConn, burst, map[bool]string{true: "binds", false: "never binds: the initial sync is CPU- and latency-bound"}[binds])
	// Per connection: what it used of the budget it had between its import
	// and its last page landing (its burst plus the rate over that time).
	// Unlike the aggregate above, connections that finished early or were
	// imported late do not dilute it, and the burst is not counted as a gain.
	var used, avail float64
	var shares []float64
	for _, c := range h.conns {
		if c.syncedAt.IsZero() {
			continue
		}
		u := float64(sb1.Data.Workspaces[c.workspace] - sb0.Data.Workspaces[c.workspace])
		a := float64(burst) + float64(cfg.RateLimit)/60*c.syncedAt.Sub(c.importedAt).Seconds()
		used, avail = used+u, avail+a
		shares = append(shares, u/a)
	}
	slices.Sort(shares)
	perConnUse := ratio(used, avail)
	if len(shares) > 0 {
		rep.figure("budget use per connection while it synced", "%.1f%% in all (%.0f requests of %.0f available: burst + rate x time from import to last page in the sink); p50 %.1f%%, min %.1f%%",
			100*perConnUse, used, avail, 100*shares[len(shares)/2], 100*shares[0])
	}
	rep.figure("429s (work window)", "%d (%.3f%% of requests)", limited, 100*ratio(float64(limited), float64(reqs)))
	workRT := roundTripsPerRequest(rt0, rt1, reqs)
	rep.figure("Redis round trips / Notion request (work window)", "%s (includes the %d imports)", workRT, len(h.conns))
	rep.figure("Redis commands / Notion request (work window)", "%.2f (%d commands as Redis counts them, Lua scripts' inner calls included)",
		ratio(float64(red1.commands-red0.commands), float64(reqs)), red1.commands-red0.commands)
	rep.figure("  top commands (work window)", "%s", topCommands(red0, red1, 6))
	rep.figure("Redis memory", "%s for %d connections = %s per 1000 connections (used_memory delta)",
		mib(red1.usedMemory-red0.usedMemory), cfg.Connections, mib((red1.usedMemory-red0.usedMemory)*1000/int64(max(cfg.Connections, 1))))
	rep.figure("processes (work window)", "")
	reportProcs(rep, cpu0, cpu1)

	// Steady state: periodic sweeps of unchanged workspaces, no polling,
	// no refreshes.
	if err := sleep(ctx, cfg.Duration); err != nil {
		return nil, err
	}
	t2 := time.Now()
	sb2, err := h.sandboxStats(ctx)
	if err != nil {
		return nil, err
	}
	red2, err := h.redisStats(ctx)
	if err != nil {
		return nil, err
	}
	rt2, err := h.redisRoundTrips(ctx)
	if err != nil {
		return nil, err
	}
	cpu2 := sampleAll(procs)
	sreqs := sb2.Data.Requests - sb1.Data.Requests
	cmds := red2.commands - red1.commands
	steadyRT := roundTripsPerRequest(rt1, rt2, sreqs)
	rep.figure("steady window", "%s, sweeps every %v, no refreshes, no polling", roundD(t2.Sub(t1)), cfg.SyncInterval)
	rep.figure("Notion requests (steady)", "%d = %.0f req/s; 429s %d", sreqs, float64(sreqs)/t2.Sub(t1).Seconds(),
		statusCount(sb2, http.StatusTooManyRequests)-statusCount(sb1, http.StatusTooManyRequests))
	rep.figure("Redis round trips / Notion request (steady)", "%s", steadyRT)
	rep.figure("Redis round trips / second (steady)", "%s (with %.1f Notion requests/s: what a fleet with nothing to sync pays per second)",
		steadyRT.perSecond(t2.Sub(t1)), float64(sreqs)/t2.Sub(t1).Seconds())
	rep.figure("Redis commands / Notion request (steady)", "%.2f (%d commands; top: %s)", ratio(float64(cmds), float64(sreqs)), cmds, topCommands(red1, red2, 6))
	rep.figure("Redis memory (end)", "%s used_memory", mib(red2.usedMemory))
	if cfg.Redis == redisCluster {
		workSpread, _ := nodeSpread(red0, red1)
		steadySpread, steadyWorst := nodeSpread(red1, red2)
		allSpread, allWorst := nodeSpread(red0, red2)
		rep.figure("commands per master (work window)", "%s", workSpread)
		rep.figure("commands per master (steady window)", "%s", steadySpread)
		rep.figure("commands per master (both windows)", "%s", allSpread)
		rep.goal("commands per master within ±20% of the mean (both windows)", allWorst <= 0.2,
			"largest deviation %.1f%% (steady window alone %.1f%%)", 100*allWorst, 100*steadyWorst)
	}
	rep.figure("processes (steady window)", "")
	reportProcs(rep, cpu1, cpu2)

	rep.invariant(invAllSynced, syncErr == nil, "%s", detail)
	if err := checkCommon(ctx, h, rep, 0, nil); err != nil {
		return nil, err
	}
	note := ""
	if !binds {
		note = fmt.Sprintf("; not a test of the limit: %.1f requests per connection fit in its burst of %d", perConn, burst)
	}
	rep.goal("≥95% of the aggregate rate-limit budget used while there is work", achieved >= 0.95*budget && perConnUse >= 0.95,
		"%.1f%% per connection while it synced (burst counted as budget, import-to-last-page polled every %v); %.1f%% of the sum of the limits over the work window (%.0f of %.0f req/s)%s",
		100*perConnUse, contentPollEvery, 100*achieved/budget, achieved, budget, note)
	rep.goal("<0.1% of requests answered 429", float64(limited) < 0.001*float64(max(reqs, 1)),
		"%.3f%% (%d of %d)", 100*ratio(float64(limited), float64(reqs)), limited, reqs)
	for _, w := range []struct {
		name string
		rt   rtBreakdown
	}{{"work window", workRT}, {"steady window", steadyRT}} {
		rep.goal(fmt.Sprintf("≤1 Redis round trip of scheduling and tokens per Notion request (%s)", w.name), w.rt.overhead() <= 1,
			"%.2f (queue %.2f + schedule %.2f + tokens %.2f); with the rate limiter and sync state, %.2f in all",
			w.rt.overhead(), w.rt.per["queue"], w.rt.per["schedule"], w.rt.per["tokens"], w.rt.total())
	}
	return rep, nil
}

// topCommands names the n commands with the most calls between a and b.
func topCommands(a, b redisStats, n int) string {
	type kv struct {
		name string
		n    int64
	}
	var all []kv
	for name, v := range b.byCommand {
		if d := v - a.byCommand[name]; d > 0 {
			all = append(all, kv{name, d})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n })
	var parts []string
	for _, e := range all[:min(n, len(all))] {
		parts = append(parts, fmt.Sprintf("%s %d", e.name, e.n))
	}
	return strings.Join(parts, ", ")
}

func stopErr(h *harness) error {
	if err := h.stop(); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}

// lockWait sums the workers' refresh_lock_wait_seconds histograms and
// returns p50 and p99 as bucket upper bounds, and the count.
func (h *harness) lockWait(ctx context.Context) (p50, p99 string, n int64) {
	buckets := map[float64]int64{}
	for i := 0; h.c.Worker(i) != nil; i++ {
		addr := h.c.WorkerAddr(i)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
		if err != nil {
			continue
		}
		resp, err := h.http.Do(req)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			rest, ok := strings.CutPrefix(line, "notionsync_refresh_lock_wait_seconds_bucket{")
			if !ok {
				continue
			}
			i := strings.Index(rest, `le="`)
			j := strings.LastIndex(rest, " ")
			if i < 0 || j < 0 {
				continue
			}
			leStr := rest[i+4:]
			leStr = leStr[:strings.IndexByte(leStr, '"')]
			le, err := strconv.ParseFloat(leStr, 64)
			if err != nil {
				continue
			}
			v, _ := strconv.ParseFloat(rest[j+1:], 64)
			buckets[le] += int64(v)
		}
		resp.Body.Close()
	}
	les := make([]float64, 0, len(buckets))
	for le := range buckets {
		les = append(les, le)
	}
	slices.Sort(les)
	if len(les) == 0 {
		return "n/a", "n/a", 0
	}
	n = buckets[les[len(les)-1]] // +Inf is cumulative total
	q := func(p float64) string {
		for _, le := range les {
			if float64(buckets[le]) >= p*float64(n) {
				return "≤ " + strconv.FormatFloat(le, 'g', -1, 64) + "s"
			}
		}
		return "n/a"
	}
	return q(0.5), q(0.99), n
}

// runRefreshStorm: every connection's access token lives a few seconds for
// cfg.Duration; one grant per rotation, no invalid_grant, no expired token
// seen by a data call.
func runRefreshStorm(ctx context.Context, cfg Config) (rep *Report, err error) {
	rep = newReport(ScenarioRefreshStorm, cfg)
	life := cfg.TokenLifetime
	h, _, err := setup(ctx, cfg, demo.Options{AccessTokenLifetime: life}, rep, false)
	if h != nil {
		defer func() { err = errors.Join(err, stopErr(h)) }()
	}
	if err != nil {
		return nil, err
	}
	sb1, err := h.sandboxStats(ctx)
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	if err := sleep(ctx, cfg.Duration); err != nil {
		return nil, err
	}
	// Stop the workers (they run the refreshes) so that the versions stand
	// still, then compare grants with rotations.
	var wg sync.WaitGroup
	for i := 0; h.c.Worker(i) != nil; i++ {
		wg.Go(func() { _ = h.c.StopWorker(i) })
	}
	p50, p99, waits := h.lockWait(ctx) // before the workers are gone
	wg.Wait()
	t2 := time.Now()
	views, st, qerr := h.quietVersions(ctx, 30*time.Second)
	if views == nil {
		return nil, qerr
	}
	var rotations int64
	for _, c := range h.conns {
		rotations += views[c.id].Version - 1
	}
	grants := int64(st.Tokens.RefreshGrants)
	stormGrants := st.Tokens.RefreshGrants - sb1.Tokens.RefreshGrants
	unauthorized := statusCount(st, http.StatusUnauthorized)
	rep.figure("token lifetime", "%v (refresh margin %v, jitter %v)", life, (life / 3).Round(100*time.Millisecond), (life / 9).Round(100*time.Millisecond))
	rep.figure("storm window", "%s: %d refresh grants = %.1f/s; %d data requests", roundD(t2.Sub(t1)), stormGrants,
		float64(stormGrants)/t2.Sub(t1).Seconds(), st.Data.Requests-sb1.Data.Requests)
	rep.figure("rotations stored (sum of version-1)", "%d; refresh grants at the token endpoint %d", rotations, grants)
	rep.figure("refresh lock wait", "p50 %s · p99 %s over %d waits (workers' histogram; bucket bounds)", p50, p99, waits)
	rep.figure("token endpoint", "requests %d · invalid_grant %d · dropped %d · 429 %d",
		st.Tokens.TokenRequests, st.Tokens.InvalidGrants, st.Tokens.Dropped, st.Tokens.RateLimited)
	detail := fmt.Sprintf("%d grants for %d rotations", grants, rotations)
	if qerr != nil {
		detail += " (" + qerr.Error() + ")"
	}
	rep.invariant(invOneGrant, grants == rotations && qerr == nil, "%s", detail)
	if err := checkCommon(ctx, h, rep, 0, nil); err != nil {
		return nil, err
	}
	rep.goal("data calls never saw an expired token (sandbox 401s)", unauthorized == 0, "%d data requests answered 401", unauthorized)
	return rep, nil
}

// runRevocation: revoke 10% of the connections mid-run, check they turn
// needs_reauth once and go quiet while the rest go on, then reconnect them.
func runRevocation(ctx context.Context, cfg Config) (rep *Report, err error) {
	rep = newReport(ScenarioRevocation, cfg)
	h, _, err := setup(ctx, cfg, demo.Options{AccessTokenLifetime: 6 * time.Hour}, rep, false)
	if h != nil {
		defer func() { err = errors.Join(err, stopErr(h)) }()
	}
	if err != nil {
		return nil, err
	}
	var revoked []*conn
	isRevoked := map[string]bool{}
	for i, c := range h.conns {
		if i%10 == 0 {
			revoked = append(revoked, c)
			isRevoked[c.id] = true
		}
	}
	revokedAt := time.Now()
	for _, c := range revoked {
		if err := h.c.SandboxAdmin(ctx, http.MethodPost, "/_sandbox/revoke?workspace="+url.QueryEscape(c.workspace), nil, nil); err != nil {
			return nil, err
		}
	}
	// Wait for needs_reauth.
	turned := map[string]time.Duration{}
	deadline := time.Now().Add(3*cfg.SyncInterval + 30*time.Second)
	for len(turned) < len(revoked) && time.Now().Before(deadline) {
		views, err := h.list(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range revoked {
			if _, ok := turned[c.id]; !ok && views[c.id].Status == "needs_reauth" {
				turned[c.id] = time.Since(revokedAt)
			}
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return nil, err
		}
	}
	var detect []time.Duration
	for _, d := range turned {
		detect = append(detect, d)
	}
	rep.figure("revoked", "%d of %d connections", len(revoked), len(h.conns))
	rep.figure("revocation to needs_reauth", "%d of %d · p50 %s · max %s", len(turned), len(revoked),
		roundD(percentile(detect, 50)), roundD(percentile(detect, 100)))

	// Quiet: no data request, no token error for them over a few sweeps.
	before, err := h.sandboxStats(ctx)
	if err != nil {
		return nil, err
	}
	quiet := max(3*cfg.SyncInterval, 10*time.Second)
	if err := sleep(ctx, quiet); err != nil {
		return nil, err
	}
	after, err := h.sandboxStats(ctx)
	if err != nil {
		return nil, err
	}
	noisy, othersGrew := 0, 0
	for _, c := range h.conns {
		d := after.Data.Workspaces[c.workspace] - before.Data.Workspaces[c.workspace]
		if isRevoked[c.id] && d != 0 {
			noisy++
		}
		if !isRevoked[c.id] && d > 0 {
			othersGrew++
		}
	}
	igDelta := after.Tokens.InvalidGrants - before.Tokens.InvalidGrants
	rep.figure("quiet window", "%s: revoked connections made %d data requests in total, %d new invalid_grant; %d of %d others kept syncing",
		roundD(quiet), sumGrowth(h, before, after, isRevoked, true), igDelta, othersGrew, len(h.conns)-len(revoked))
	rep.invariant(invQuiet, len(turned) == len(revoked) && noisy == 0 && igDelta == 0,
		"%d of %d turned needs_reauth; %d still made requests; %d token errors in the window", len(turned), len(revoked), noisy, igDelta)
	once := 0
	for _, c := range revoked {
		var ev struct {
			Events []struct {
				Kind string `json:"kind"`
			} `json:"events"`
		}
		if err := h.c.Admin(ctx, http.MethodGet, "/api/v1/connections/"+url.PathEscape(c.id)+"/events", nil, &ev); err != nil {
			return nil, err
		}
		n := 0
		for _, e := range ev.Events {
			if e.Kind == "needs_reauth" {
				n++
			}
		}
		if n == 1 {
			once++
		}
	}
	rep.invariant(invReauthOnce, once == len(revoked), "%d of %d have exactly one needs_reauth event", once, len(revoked))
	if err := checkCommon(ctx, h, rep, len(revoked), isRevoked); err != nil {
		return nil, err
	}

	// Reconnect: a new code per workspace, exchanged and imported.
	reconnectAt := time.Now()
	for _, c := range revoked {
		var cr sandbox.CodeResponse
		if err := h.c.SandboxAdmin(ctx, http.MethodPost, "/_sandbox/workspaces/"+url.PathEscape(c.workspace)+"/code",
			sandbox.CodeRequest{RedirectURI: h.redirectURI()}, &cr); err != nil {
			return nil, err
		}
		tr, err := h.exchange(ctx, cr.Code)
		if err != nil {
			return nil, err
		}
		if err := h.importPair(ctx, c.id, tr); err != nil {
			return nil, err
		}
		c.importedAt, c.syncedAt = time.Now(), time.Time{}
	}
	resumed := 0
	deadline = time.Now().Add(cfg.SyncTimeout)
	for time.Now().Before(deadline) {
		views, err := h.list(ctx)
		if err != nil {
			return nil, err
		}
		resumed = 0
		for _, c := range revoked {
			v := views[c.id]
			if v.synced(c.pages) && v.Sync.LastSweep.After(reconnectAt.Add(-time.Second)) {
				resumed++
			}
		}
		if resumed == len(revoked) {
			break
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return nil, err
		}
	}
	rep.figure("reconnect", "%d of %d resumed and caught up within %s", resumed, len(revoked), roundD(time.Since(reconnectAt)))
	rep.invariant(invResumed, resumed == len(revoked), "%d of %d active and swept after reconnecting", resumed, len(revoked))
	return rep, nil
}

// taskErrors counts the workers' "task did not complete" log lines and
// their distinct error messages (ids masked).
func taskErrors(logDir string) (summary string, total int) {
	files, _ := filepath.Glob(filepath.Join(logDir, "worker-*.log"))
	ids := regexp.MustCompile(`fleet-[0-9]+|[0-9a-f]{8}-[0-9a-f-]{27}|[0-9]{10,}`)
	counts := map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			if !strings.Contains(line, "task did not complete") {
				continue
			}
			_, msg, ok := strings.Cut(line, `"error": "`)
			if !ok {
				continue
			}
			counts[ids.ReplaceAllString(strings.TrimSuffix(msg, `"}`), "…")]++
			total++
		}
	}
	var parts []string
	for m, n := range counts {
		parts = append(parts, fmt.Sprintf("%d× %s", n, m))
	}
	sort.Strings(parts)
	return orNone(parts), total
}

func sumGrowth(h *harness, before, after sandbox.StatsResponse, set map[string]bool, in bool) int {
	n := 0
	for _, c := range h.conns {
		if set[c.id] == in {
			n += after.Data.Workspaces[c.workspace] - before.Data.Workspaces[c.workspace]
		}
	}
	return n
}

// rtBreakdown is Redis round trips per Notion request, by component
// (metrics.RedisComponent*), over a window.
type rtBreakdown struct {
	per      map[string]float64
	requests int
}

// overhead is what scheduling and tokens cost: the task queue (asynq),
// the scheduler's own state and the token store.
func (b rtBreakdown) overhead() float64 { return b.per["queue"] + b.per["schedule"] + b.per["tokens"] }

func (b rtBreakdown) total() float64 {
	t := 0.0
	for _, v := range b.per {
		t += v
	}
	return t
}

func (b rtBreakdown) String() string {
	names := slices.Sorted(maps.Keys(b.per))
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f", n, b.per[n]))
	}
	return fmt.Sprintf("%.2f in all over %d requests: %s", b.total(), b.requests, strings.Join(parts, ", "))
}

// perSecond renders the window's round trips per second by component.
func (b rtBreakdown) perSecond(window time.Duration) string {
	names := slices.Sorted(maps.Keys(b.per))
	parts := make([]string, 0, len(names))
	total := 0.0
	for _, n := range names {
		v := b.per[n] * float64(b.requests) / window.Seconds()
		total += v
		parts = append(parts, fmt.Sprintf("%s %.1f", n, v))
	}
	return fmt.Sprintf("%.1f in all: %s", total, strings.Join(parts, ", "))
}

// roundTripsPerRequest turns two scrapes of the round-trip counters into
// round trips per Notion request.
func roundTripsPerRequest(before, after map[string]float64, requests int) rtBreakdown {
	b := rtBreakdown{per: map[string]float64{}, requests: requests}
	for k, v := range after {
		b.per[k] = ratio(v-before[k], float64(requests))
	}
	return b
}
