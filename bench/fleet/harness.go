package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/notionsync/notionsync/internal/control"
	"github.com/notionsync/notionsync/internal/demo"
	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/sandbox"
	"github.com/notionsync/notionsync/jobs"
)

// setupParallelism bounds the concurrent code exchanges and imports.
const setupParallelism = 16

// pollEvery is how often the suite reads the connections' state.
const pollEvery = time.Second

// conn is one connection the suite created: sandbox workspace fleet-<i>,
// notionsync connection fleet-<i>.
type conn struct {
	id, workspace string
	pages         int
	importedAt    time.Time
	syncedAt      time.Time // zero until seen synced
}

// harness is a running Cluster and the connections the suite created.
type harness struct {
	cfg   Config
	c     *demo.Cluster
	rdb   redis.UniversalClient // a *redis.ClusterClient with -redis cluster
	http  *http.Client
	conns []*conn
	// masterKills are the chaos scenario's Redis master kills.
	masterKills []demo.MasterKill
	byID        map[string]*conn
	// seedExtra, when set, adds to each POST /_sandbox/workspaces request
	// (the fidelity scenario's richer content).
	seedExtra func(*sandbox.WorkspacesRequest)
}

// startHarness starts a Cluster as cfg and opts say.
func startHarness(ctx context.Context, cfg Config, opts demo.Options) (*harness, error) {
	c, err := demo.New(demoOptions(cfg, opts))
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	return &harness{
		cfg: cfg, c: c,
		rdb:  redis.NewUniversalClient(c.RedisOptions()),
		http: &http.Client{Timeout: 30 * time.Second},
		byID: map[string]*conn{},
	}, nil
}

// demoOptions is a scenario's opts completed from the run's cfg.
func demoOptions(cfg Config, opts demo.Options) demo.Options {
	opts.Dir = cfg.Dir
	opts.BinDir = cfg.BinDir
	opts.Workers = cfg.Workers
	opts.Out = cfg.Log
	opts.RateLimit = cfg.RateLimit
	opts.WorkerConcurrency = cfg.Concurrency
	opts.SyncInterval = cfg.SyncInterval
	opts.RedisCluster = cfg.Redis == redisCluster
	opts.SchedulerTick = cmp.Or(cfg.SchedulerTick, opts.SchedulerTick)
	opts.LeaderLease = cmp.Or(cfg.LeaderLease, opts.LeaderLease)
	opts.SandboxArgs = append([]string{
		"-rate-limit", strconv.Itoa(cfg.RateLimit),
		// The default workspace stays tiny: the suite's connections are
		// the fleet workspaces.
		"-pages", "1", "-databases", "0", "-log-level", "warn",
	}, opts.SandboxArgs...)
	opts.Env = append(append([]string{"NOTIONSYNC_LOG_LEVEL=warn"}, opts.Env...), cfg.Env...)
	return opts
}

// stop ends every process. Processes the suite stopped on purpose are not
// errors.
func (h *harness) stop() error {
	_ = h.rdb.Close()
	h.http.CloseIdleConnections()
	return h.c.Stop()
}

func (h *harness) redirectURI() string { return h.c.PublicURL() + control.CallbackPath }

// tokenResponse is what the suite reads of a token-endpoint answer; it
// goes straight into an import body and is never printed.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	WorkspaceID  string `json:"workspace_id"`
}

// exchange trades an authorization code at the sandbox's token endpoint,
// as notionsync's OAuth callback would.
func (h *harness) exchange(ctx context.Context, code string) (tokenResponse, error) {
	body, _ := json.Marshal(map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": h.redirectURI()})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.c.SandboxURL()+"/v1/oauth/token", bytes.NewReader(body))
	if err != nil {
		return tokenResponse{}, err
	}
	req.SetBasicAuth(notionfake.DefaultClientID, notionfake.DefaultClientSecret)
	req.Header.Set("Notion-Version", "2022-06-28")
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.http.Do(req)
	if err != nil {
		return tokenResponse{}, fmt.Errorf("code exchange: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return tokenResponse{}, fmt.Errorf("code exchange: %s", resp.Status) // never the body
	}
	var tr tokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil {
		return tokenResponse{}, fmt.Errorf("code exchange: decode: %w", err)
	}
	return tr, nil
}

// importPair stores a token pair as connection id through the admin API.
func (h *harness) importPair(ctx context.Context, id string, tr tokenResponse) error {
	return h.c.Admin(ctx, http.MethodPost, "/api/v1/connections/import", control.ImportRequest{
		ConnectionID: id, AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken,
		ExpiresIn: tr.ExpiresIn, Meta: map[string]string{control.MetaWorkspaceID: tr.WorkspaceID},
	}, nil)
}

// createConnections seeds n workspaces in the sandbox and connects each
// through a code exchange and the import API.
func (h *harness) createConnections(ctx context.Context, n int, unknownBlocks bool) error {
	const batch = 500
	var seeded []sandbox.FleetWorkspace
	for start := 0; start < n; start += batch {
		var resp sandbox.WorkspacesResponse
		req := sandbox.WorkspacesRequest{
			Count: min(batch, n-start), Start: start, Prefix: "fleet-",
			Pages: &h.cfg.Pages, BlocksPerPage: &h.cfg.Blocks, UnknownBlocks: unknownBlocks,
			RedirectURI: h.redirectURI(),
		}
		if h.seedExtra != nil {
			h.seedExtra(&req)
		}
		err := h.c.SandboxAdmin(ctx, http.MethodPost, "/_sandbox/workspaces", req, &resp)
		if err != nil {
			return err
		}
		seeded = append(seeded, resp.Workspaces...)
	}
	conns := make([]*conn, len(seeded))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(setupParallelism)
	for i, ws := range seeded {
		g.Go(func() error {
			tr, err := h.exchange(gctx, ws.Code)
			if err != nil {
				return fmt.Errorf("%s: %w", ws.WorkspaceID, err)
			}
			c := &conn{id: ws.WorkspaceID, workspace: ws.WorkspaceID, pages: ws.Pages}
			if err := h.importPair(gctx, c.id, tr); err != nil {
				return err
			}
			c.importedAt = time.Now()
			conns[i] = c
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	h.conns = conns
	for _, c := range conns {
		h.byID[c.id] = c
	}
	return nil
}

// syncState is the admin API's "sync" field (jobs.SyncState).
type syncState struct {
	Cursor      time.Time         `json:"cursor"`
	Target      time.Time         `json:"target"`
	Pending     int64             `json:"pending"`
	LastSweep   time.Time         `json:"last_sweep"`
	PagesSynced int64             `json:"pages_synced"`
	Errors      map[string]string `json:"errors"`
	// Reconcile is the connection's reconciliation (jobs.ReconcileStatus).
	Reconcile *struct {
		Running      bool                 `json:"running"`
		LastFinished time.Time            `json:"last_finished"`
		Last         jobs.ReconcileCounts `json:"last"`
	} `json:"reconcile"`
}

// connView is what the suite reads of a connection.
type connView struct {
	ID      string     `json:"id"`
	Status  string     `json:"status"`
	Reason  string     `json:"reason"`
	Version int64      `json:"version"`
	Sync    *syncState `json:"sync"`
}

// synced: the first sweep has finished (the cursor reached its target with
// nothing pending) and at least pages pages were stored.
func (v connView) synced(pages int) bool {
	s := v.Sync
	return v.Status == "active" && s != nil && !s.Cursor.IsZero() && s.Pending == 0 &&
		!s.Cursor.Before(s.Target) && s.PagesSynced >= int64(pages)
}

// list returns every connection of the admin API.
func (h *harness) list(ctx context.Context) (map[string]connView, error) {
	out := map[string]connView{}
	after := ""
	for {
		var page struct {
			Connections []connView `json:"connections"`
			Next        string     `json:"next"`
		}
		if err := h.c.Admin(ctx, http.MethodGet, "/api/v1/connections?limit=1000&after="+url.QueryEscape(after), nil, &page); err != nil {
			return nil, err
		}
		for _, v := range page.Connections {
			out[v.ID] = v
		}
		if page.Next == "" {
			return out, nil
		}
		after = page.Next
	}
}

// waitSynced polls until every connection in conns is synced, recording
// when each was first seen so, or until timeout.
func (h *harness) waitSynced(ctx context.Context, conns []*conn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(pollEvery)
	defer ticker.Stop()
	last := ""
	for {
		views, err := h.list(ctx)
		now := time.Now()
		if err == nil {
			left := 0
			for _, c := range conns {
				if c.syncedAt.IsZero() && views[c.id].synced(c.pages) {
					c.syncedAt = now
				}
				if c.syncedAt.IsZero() {
					left++
					if left == 1 {
						v := views[c.id]
						last = fmt.Sprintf("%d of %d not synced (first: %s %s %+v)", left, len(conns), c.id, v.Status, v.Sync)
					}
				}
			}
			if left == 0 {
				return nil
			}
			last = fmt.Sprintf("%d of %d not synced%s", left, len(conns), last[strings.Index(last, " not synced")+len(" not synced"):])
		} else if ctx.Err() == nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not every connection synced within %v: %s", timeout, last)
		case <-ticker.C:
		}
	}
}

// waitContent polls the file sink (no Redis command) until every
// connection in conns has its pages stored, recording when each was first
// seen so, or until timeout.
func (h *harness) waitContent(ctx context.Context, conns []*conn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(contentPollEvery)
	defer ticker.Stop()
	for {
		now := time.Now()
		left := 0
		for _, c := range conns {
			if !c.syncedAt.IsZero() {
				continue
			}
			entries, _ := os.ReadDir(filepath.Join(h.c.SyncedDir(), c.id, "pages"))
			n := 0
			for _, e := range entries {
				if name := e.Name(); strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, ".") {
					n++
				}
			}
			if n >= c.pages {
				c.syncedAt = now
			} else {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d connections without all their pages in the sink within %v", left, len(conns), timeout)
		case <-ticker.C:
		}
	}
}

// contentPollEvery is how often waitContent reads the sink.
const contentPollEvery = 250 * time.Millisecond

// Values of Config.Redis (-redis).
const (
	redisSingle  = "single"
	redisCluster = "cluster"
)

// redisStats are the server-wide counters the report uses, summed over the
// masters of a Redis Cluster.
type redisStats struct {
	commands   int64 // sum of INFO commandstats calls (Lua scripts' inner calls included)
	byCommand  map[string]int64
	usedMemory int64
	// byNode is each master's share of commands (one entry for a single
	// node), by address.
	byNode map[string]int64
}

func (h *harness) redisStats(ctx context.Context) (redisStats, error) {
	st := redisStats{byCommand: map[string]int64{}, byNode: map[string]int64{}}
	cc, ok := h.rdb.(*redis.ClusterClient)
	if !ok {
		info, err := h.rdb.Info(ctx, "commandstats", "memory").Result()
		if err != nil {
			return st, fmt.Errorf("redis INFO: %w", err)
		}
		st.byNode[h.c.RedisAddr()] = st.add(info)
		return st, nil
	}
	var mu sync.Mutex
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		info, err := node.Info(ctx, "commandstats", "memory").Result()
		if err != nil {
			return fmt.Errorf("redis INFO on %s: %w", node.Options().Addr, err)
		}
		mu.Lock()
		defer mu.Unlock()
		st.byNode[node.Options().Addr] = st.add(info)
		return nil
	})
	return st, err
}

// add adds one node's INFO commandstats and memory to st and returns the
// node's commands.
func (st *redisStats) add(info string) int64 {
	var nodeCommands int64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "cmdstat_"); ok {
			name, fields, _ := strings.Cut(rest, ":")
			for f := range strings.SplitSeq(fields, ",") {
				if v, ok := strings.CutPrefix(f, "calls="); ok {
					n, _ := strconv.ParseInt(v, 10, 64)
					st.commands += n
					nodeCommands += n
					st.byCommand[name] += n
				}
			}
		}
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			st.usedMemory += n
		}
	}
	return nodeCommands
}

// nodeSpread describes how the commands between a and b spread over the
// masters: each master's commands and its deviation from the mean, and the
// largest deviation (0 for one node). A master that was not one at a (a
// promoted replica) counts from zero.
func nodeSpread(a, b redisStats) (string, float64) {
	nodes := slices.Sorted(maps.Keys(b.byNode))
	if len(nodes) == 0 {
		return "none", 0
	}
	var total int64
	for _, n := range nodes {
		total += b.byNode[n] - a.byNode[n]
	}
	mean := float64(total) / float64(len(nodes))
	parts := make([]string, 0, len(nodes))
	worst := 0.0
	for _, n := range nodes {
		d := b.byNode[n] - a.byNode[n]
		dev := 0.0
		if mean > 0 {
			dev = (float64(d) - mean) / mean
		}
		worst = max(worst, math.Abs(dev))
		parts = append(parts, fmt.Sprintf("%s %d (%+.1f%%)", n, d, 100*dev))
	}
	return fmt.Sprintf("%s; mean %.0f, largest deviation %.1f%%", strings.Join(parts, " · "), mean, 100*worst), worst
}

// procSample is one reading of a process's CPU time and memory.
type procSample struct {
	at       time.Time
	cpu      time.Duration // user + system
	rss, hwm int64         // bytes
}

// clockTick is USER_HZ, 100 on every Linux the suite runs on.
const clockTick = 100

// sampleProc reads /proc/<pid>/stat and /proc/<pid>/status.
func sampleProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return s, err
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.cpu = time.Duration(ut+st) * time.Second / clockTick
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return s, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			s.rss = n << 10
		case "VmHWM":
			s.hwm = n << 10
		}
	}
	return s, nil
}

func (h *harness) mainProcs() []*demo.Process {
	var ps []*demo.Process
	for _, p := range h.c.Processes() {
		if !p.Exited() {
			ps = append(ps, p)
		}
	}
	return ps
}

// redisRoundTripsMetric is the counter redisRoundTrips sums
// (metrics.RedisHook, component label).
const redisRoundTripsMetric = "notionsync_redis_round_trips_total"

// redisRoundTrips scrapes /metrics of every running worker and scheduler
// and returns notionsync_redis_round_trips_total summed per component
// (metrics.RedisComponent* values). Take it before and after a window and
// subtract: the counters are per process and start at zero with it, so a
// node killed and restarted (chaos) loses what it had counted and its
// replacement starts again from zero; a window spanning a restart then
// undercounts (a difference can even come out negative). A node that
// has exited and not been restarted is skipped; a running one that cannot
// be scraped is an error.
func (h *harness) redisRoundTrips(ctx context.Context) (map[string]float64, error) {
	type target struct {
		proc *demo.Process
		url  string
	}
	var targets []target
	for i := 0; h.c.Worker(i) != nil; i++ {
		targets = append(targets, target{h.c.Worker(i), "http://" + h.c.WorkerAddr(i) + "/metrics"})
	}
	for i := 0; h.c.Scheduler(i) != nil; i++ {
		targets = append(targets, target{h.c.Scheduler(i), h.c.SchedulerMetricsURL(i)})
	}
	sums := map[string]float64{}
	var errs []error
	for _, t := range targets {
		if t.proc.Exited() {
			continue
		}
		err := scrapeRedisRoundTrips(ctx, h.http, t.url, sums)
		if err != nil && !t.proc.Exited() { // one that died meanwhile is skipped too
			errs = append(errs, fmt.Errorf("%s: %w", t.proc.Name(), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return sums, nil
}

// scrapeRedisRoundTrips adds the redisRoundTripsMetric samples served at
// metricsURL to sums, by component. Nothing is added when the scrape fails.
func scrapeRedisRoundTrips(ctx context.Context, hc *http.Client, metricsURL string, sums map[string]float64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", metricsURL, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", metricsURL, err)
	}
	mf, ok := mfs[redisRoundTripsMetric]
	if !ok {
		return fmt.Errorf("GET %s: no %s", metricsURL, redisRoundTripsMetric)
	}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "component" {
				sums[l.GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	return nil
}

// sampleAll reads every running process, by name.
func sampleAll(procs []*demo.Process) map[string]procSample {
	out := map[string]procSample{}
	for _, p := range procs {
		if p.Exited() {
			continue
		}
		if s, err := sampleProc(p.Pid()); err == nil {
			out[p.Name()] = s
		}
	}
	return out
}

// sandboxStats returns the sandbox's counters.
func (h *harness) sandboxStats(ctx context.Context) (sandbox.StatsResponse, error) {
	return h.c.SandboxStats(ctx)
}

// stopWorkersAndCount stops every worker, so that no refresh is left in
// flight, then reads the connections and the sandbox's counters at a quiet
// moment (quietVersions). Views are nil only when nothing could be read.
func (h *harness) stopWorkersAndCount(ctx context.Context) (map[string]connView, sandbox.StatsResponse, error) {
	var wg sync.WaitGroup
	for i := 0; h.c.Worker(i) != nil; i++ {
		wg.Go(func() { _ = h.c.StopWorker(i) })
	}
	wg.Wait()
	return h.quietVersions(ctx, 30*time.Second)
}

// quietVersions waits (up to timeout) for a moment when no rotation is
// half done: the versions read before and after the sandbox's counters
// agree. It returns both.
func (h *harness) quietVersions(ctx context.Context, timeout time.Duration) (map[string]connView, sandbox.StatsResponse, error) {
	deadline := time.Now().Add(timeout)
	for {
		v1, err := h.list(ctx)
		if err != nil {
			return nil, sandbox.StatsResponse{}, err
		}
		st, err := h.sandboxStats(ctx)
		if err != nil {
			return nil, st, err
		}
		v2, err := h.list(ctx)
		if err != nil {
			return nil, st, err
		}
		same := len(v1) == len(v2)
		for id, a := range v1 {
			if v2[id].Version != a.Version {
				same = false
				break
			}
		}
		if same {
			return v2, st, nil
		}
		if time.Now().After(deadline) {
			return v2, st, errors.New("the versions never stood still")
		}
		select {
		case <-ctx.Done():
			return nil, st, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
