package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/demo"
	"github.com/notionsync/notionsync/jobs"
)

// Kill placements of kill-sync.
const (
	placeDrain = "mid-drain (a drain task that holds its connection's flag)"
	placePage  = "mid-page (a drain with page claims in flight)"
)

// healGoal is the most a single SIGKILL of a worker may stall a connection.
const healGoal = 20 * time.Second

const invHealed = "every killed worker's connection made progress again within 20s"

// runKillSync: while the connections backfill, SIGKILL the worker that
// runs one connection's drain (alternately anywhere in the drain and with
// page claims in flight), found by reading asynq's worker list and the
// connection's drain flag and claims in Redis, restart it, and measure
// how long until that connection stores a page again (its pages_synced
// moves) and until its backfill is done. The heal path is the claims' and
// the flag's expiry (NOTIONSYNC_SYNC_CLAIM_TTL) and the scheduler's reaper,
// not the next sweep (sweeps every cfg.SyncInterval) nor asynq's recovery
// of the dead task (60-120s).
func runKillSync(ctx context.Context, cfg Config) (rep *Report, err error) {
	rep = newReport(ScenarioKillSync, cfg)
	// Info logs: the scheduler's reaper logs each takeover, which times the
	// reap apart from the wait for a worker slot.
	h, err := startHarness(ctx, cfg, demo.Options{Env: []string{"NOTIONSYNC_LOG_LEVEL=info", "NOTIONSYNC_LOG_FORMAT=json"}})
	if h != nil {
		defer func() { err = errors.Join(err, stopErr(h)) }()
	}
	if err != nil {
		return nil, err
	}
	rep.figure("setup", "%d connections × %d pages; %d workers × %d tasks; %d requests/min per connection; sweeps every %v",
		cfg.Connections, cfg.Pages, cfg.Workers, cfg.Concurrency, cfg.RateLimit, cfg.SyncInterval)
	if err := h.createConnections(ctx, cfg.Connections, false); err != nil {
		return nil, fmt.Errorf("create connections: %w", err)
	}
	insp := asynq.NewInspectorFromRedisClient(h.rdb)
	kills := max(cfg.Kills, 1)
	progress := map[string][]time.Duration{}
	finished := map[string][]time.Duration{}
	var missed []string
	// Each killed connection's backfill is awaited in the background, so
	// the next kill comes while others still backfill.
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	defer wg.Wait()
	hit := map[string]bool{}
	killedAt := map[string]time.Time{}
	for round := 0; round < kills; round++ {
		place := []string{placeDrain, placePage}[round%2]
		v, err := h.findVictim(ctx, insp, place, hit, time.Minute)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			rep.figure("kills", "stopped after %d: %v", round, err)
			break
		}
		hit[v.conn] = true
		before, _ := h.rdb.HGet(ctx, jobs.SyncKey(demo.KeyPrefix, v.conn), "pages_synced").Int64()
		if err := h.c.KillWorker(v.worker); err != nil {
			return nil, err
		}
		at := time.Now()
		killedAt[v.conn] = at
		restarted := make(chan error, 1)
		go func() { restarted <- h.c.RestartWorker(ctx, v.worker) }()
		p, werr := h.waitProgress(ctx, v.conn, before, at, 3*time.Minute)
		if rerr := <-restarted; rerr != nil {
			return nil, fmt.Errorf("restart worker %d: %w", v.worker, rerr)
		}
		if werr != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			mu.Lock()
			missed = append(missed, fmt.Sprintf("%s: %v", v.conn, werr))
			mu.Unlock()
			continue
		}
		progress[place] = append(progress[place], p)
		fmt.Fprintf(cfg.Log, "fleet: kill %d (%s): worker %d, %s, %d pages waiting, %d claims: stored a page again after %v\n",
			round+1, place, v.worker, v.conn, v.todo, v.claims, roundD(p))
		wg.Go(func() {
			f, err := h.waitBackfilled(ctx, v.conn, at, cfg.SyncTimeout)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				missed = append(missed, fmt.Sprintf("%s: %v", v.conn, err))
				return
			}
			finished[place] = append(finished[place], f)
		})
	}
	wg.Wait()
	var all []time.Duration
	for _, place := range []string{placeDrain, placePage} {
		ds := progress[place]
		all = append(all, ds...)
		rep.figure("kill "+place, "%d kills · connection stored a page again p50 %s · max %s · its backfill done p50 %s · max %s",
			len(ds), roundD(percentile(ds, 50)), roundD(percentile(ds, 100)),
			roundD(percentile(finished[place], 50)), roundD(percentile(finished[place], 100)))
	}
	if reaped := h.reapedAfter(killedAt); len(reaped) > 0 {
		rep.figure("takeover (kill to the reaper starting a new drain)", "%d of %d · p50 %s · max %s (scheduler log; then the drain waits for a worker slot in its queue)",
			len(reaped), len(killedAt), roundD(percentile(reaped, 50)), roundD(percentile(reaped, 100)))
	}
	worst := percentile(all, 100)
	rep.invariant(invHealed, len(all) > 0 && len(missed) == 0 && worst <= healGoal,
		"%d kills, worst %s (bound %s)%s", len(all), roundD(worst), healGoal, prefixed(fmt.Sprint(missed)))
	syncErr := h.waitSynced(ctx, h.conns, cfg.SyncTimeout)
	// A kill must not make a backfill longer than the others' (the
	// connections backfill side by side, each at its own rate limit): from
	// the import to the last page stored (the sync state's last_sync).
	lags := map[bool][]time.Duration{}
	for _, c := range h.conns {
		ms, err := h.rdb.HGet(ctx, jobs.SyncKey(demo.KeyPrefix, c.id), "last_sync").Int64()
		if err == nil && ms > 0 {
			lags[hit[c.id]] = append(lags[hit[c.id]], time.UnixMilli(ms).Sub(c.importedAt))
		}
	}
	rep.figure("backfill (import to last page stored)", "killed connections p50 %s · max %s; the others p50 %s · max %s",
		roundD(percentile(lags[true], 50)), roundD(percentile(lags[true], 100)),
		roundD(percentile(lags[false], 50)), roundD(percentile(lags[false], 100)))
	rep.invariant(invAllSynced, syncErr == nil, "%s", orNone(errStrings(syncErr)))
	return rep, nil
}

func errStrings(err error) []string {
	if err == nil {
		return nil
	}
	return []string{err.Error()}
}

// victim is the worker to kill and the connection it drains.
type victim struct {
	worker       int
	conn         string
	todo, claims int64
}

// findVictim polls until a worker runs a drain (a drain task, or a sweep
// draining inline) that still holds its connection's flag, for a
// connection not in skip with at least 10 pages waiting, and, for
// placePage, page claims in flight. asynq's worker list is refreshed every
// 5s, so the flag (which names the running task) is what says the drain
// still runs.
func (h *harness) findVictim(ctx context.Context, insp *asynq.Inspector, place string, skip map[string]bool, timeout time.Duration) (victim, error) {
	deadline := time.Now().Add(timeout)
	for {
		servers, err := insp.Servers()
		if err != nil {
			return victim{}, err
		}
		for _, srv := range servers {
			w := h.workerByPID(srv.PID)
			if w < 0 {
				continue
			}
			for _, a := range srv.ActiveWorkers {
				owner := a.TaskID
				switch a.TaskType {
				case jobs.TypeDrain:
				case jobs.TypeSweep:
					owner = "sweep:" + a.TaskID
				default:
					continue
				}
				var p struct {
					ConnID string `json:"conn_id"`
				}
				if json.Unmarshal(a.TaskPayload, &p) != nil || p.ConnID == "" || skip[p.ConnID] {
					continue
				}
				flag, _ := h.rdb.Get(ctx, jobs.DrainKey(demo.KeyPrefix, p.ConnID)).Result()
				if flag != owner {
					continue
				}
				pages, _ := h.rdb.HKeys(ctx, jobs.SyncKey(demo.KeyPrefix, p.ConnID)+":todo").Result()
				todo := int64(len(pages))
				if todo < 10 {
					continue
				}
				// The claims of the pages it holds are those of pages on
				// its to-do list: read by name, not by SCAN (which one
				// node of a cluster could not answer for all).
				claims := h.countClaims(ctx, p.ConnID, pages)
				if place == placePage && claims == 0 {
					continue
				}
				return victim{worker: w, conn: p.ConnID, todo: todo, claims: claims}, nil
			}
		}
		if time.Now().After(deadline) {
			return victim{}, fmt.Errorf("no worker running a drain %s within %v", place, timeout)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return victim{}, err
		}
	}
}

// countClaims counts the pages of conn among pages that a task holds a
// claim on, in one pipelined round trip.
func (h *harness) countClaims(ctx context.Context, conn string, pages []string) int64 {
	pipe := h.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(pages))
	for i, id := range pages {
		cmds[i] = pipe.Exists(ctx, jobs.PageClaimKey(demo.KeyPrefix, conn, id))
	}
	_, _ = pipe.Exec(ctx)
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n
}

func (h *harness) workerByPID(pid int) int {
	for i := range h.cfg.Workers {
		if p := h.c.Worker(i); p != nil && !p.Exited() && p.Pid() == pid {
			return i
		}
	}
	return -1
}

// waitProgress polls the connection's pages_synced in Redis (every 100ms)
// until it passes before; it returns the time since at.
func (h *harness) waitProgress(ctx context.Context, conn string, before int64, at time.Time, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		n, _ := h.rdb.HGet(ctx, jobs.SyncKey(demo.KeyPrefix, conn), "pages_synced").Int64()
		if n > before {
			return time.Since(at), nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return 0, fmt.Errorf("no page stored %v after the kill (pages_synced %d)", timeout, n)
		}
	}
}

// waitBackfilled polls the connection's sync state in Redis (every 100ms)
// until its backfill is done (cursor at its target, nothing pending); it
// returns the time since at.
func (h *harness) waitBackfilled(ctx context.Context, conn string, at time.Time, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	key := jobs.SyncKey(demo.KeyPrefix, conn)
	for {
		m, _ := h.rdb.HMGet(ctx, key, "cursor", "target").Result()
		pending, _ := h.rdb.SCard(ctx, key+":pending").Result()
		var cur, tgt int64
		if len(m) == 2 {
			cur, _ = strconv.ParseInt(fmt.Sprint(m[0]), 10, 64)
			tgt, _ = strconv.ParseInt(fmt.Sprint(m[1]), 10, 64)
		}
		if cur > 0 && cur >= tgt && pending == 0 {
			return time.Since(at), nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return 0, fmt.Errorf("backfill not done %v after the kill (pending %d)", timeout, pending)
		}
	}
}

// reapedAfter reads the schedulers' logs for the reaper's takeover of each
// killed connection's drain and returns the times from the kills.
func (h *harness) reapedAfter(killedAt map[string]time.Time) []time.Duration {
	first := map[string]time.Time{}
	for i := 0; ; i++ {
		p := h.c.Scheduler(i)
		if p == nil {
			break
		}
		f, err := os.Open(p.LogPath())
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			var l struct {
				TS   float64 `json:"ts"`
				Msg  string  `json:"msg"`
				Conn string  `json:"conn_id"`
			}
			if json.Unmarshal(sc.Bytes(), &l) != nil || !strings.Contains(l.Msg, "started a new drain") {
				continue
			}
			at, ok := killedAt[l.Conn]
			ts := time.UnixMilli(int64(l.TS * 1000))
			if ok && ts.After(at) && (first[l.Conn].IsZero() || ts.Before(first[l.Conn])) {
				first[l.Conn] = ts
			}
		}
		f.Close()
	}
	var out []time.Duration
	for conn, ts := range first {
		out = append(out, ts.Sub(killedAt[conn]))
	}
	return out
}
