//go:build unix

package systemtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/notionsync/notionsync/internal/demo"
	"github.com/notionsync/notionsync/jobs"
)

// Fleet timing: leases and token lifetimes short enough to see failovers
// and rotations within the test.
const (
	fleetTick          = time.Second
	fleetLease         = 3 * time.Second
	fleetTokenLifetime = 10 * time.Second // a refresh about every 6 s
	// busyLatency delays every data request of the sandbox while a worker
	// is stopped: a page task makes at least two data requests, so it runs
	// at least 2*busyLatency.
	busyLatency = 4 * time.Second
	// workerShutdown is the workers' NOTIONSYNC_SHUTDOWN_TIMEOUT: shorter
	// than a busy page task, so a stopped worker hands tasks back.
	workerShutdown = 3 * time.Second
)

// TestFleetOAuthSyncFailoverShutdown runs 3 workers and 2 schedulers
// against the sandbox and one Redis, and checks, in order:
//
//  1. a workspace connected through the real OAuth redirect flow (a
//     cookie-keeping client following redirects) syncs completely;
//  2. SIGKILL of the leader scheduler hands the lease to the other one
//     within LeaderLease + Tick (+ slack), and token rotations go on: every
//     refresh grant at the token endpoint is a rotation the store recorded
//     (grants = version - 1: no duplicate refresh), with no invalid_grant;
//  3. SIGTERM on a worker while it runs sync tasks (slow sandbox, pages
//     just edited, a sync requested through the admin API) loses no task:
//     the worker exits 0 and every edit lands in the sink.
func TestFleetOAuthSyncFailoverShutdown(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 80*time.Second)
	defer cancel()
	c := startCluster(t, ctx, demo.Options{
		Workers: 3, Schedulers: 2,
		SandboxArgs:         smallSeed,
		AccessTokenLifetime: fleetTokenLifetime,
		SchedulerTick:       fleetTick,
		LeaderLease:         fleetLease,
		RateLimit:           60_000,
		Env: []string{
			"NOTIONSYNC_SHUTDOWN_TIMEOUT=" + workerShutdown.String(),
			"NOTIONSYNC_TOKEN_CALL_TIMEOUT=1s",
			"NOTIONSYNC_REFRESH_LOCK_TTL=5s",
		},
	})

	// 1. OAuth through the redirects, then a complete sync.
	connID, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.SandboxStats(ctx); err != nil || st.Tokens.Exchanges != 1 || !st.Connected {
		t.Fatalf("after the OAuth flow the sandbox saw %+v (%v), want one code exchange and a live connection", st.Tokens, err)
	}
	eventually(t, ctx, 30*time.Second, "the workspace syncs completely", func(ctx context.Context) (bool, string, error) {
		return syncedCompletely(ctx, c, connID)
	})

	// 2. Kill the leader; the other scheduler takes over.
	leader := -1
	eventually(t, ctx, 2*fleetLease, "a scheduler leads", func(ctx context.Context) (bool, string, error) {
		var err error
		leader, err = c.Leader(ctx)
		return leader >= 0, fmt.Sprintf("leader %d", leader), err
	})
	before, err := c.Connection(ctx, connID)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.KillScheduler(leader); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	other := 1 - leader
	eventually(t, ctx, fleetLease+fleetTick+3*time.Second, "the other scheduler takes the lease", func(ctx context.Context) (bool, string, error) {
		l, err := c.Leader(ctx)
		return l == other, fmt.Sprintf("leader %d", l), err
	})
	t.Logf("scheduler-%d killed; scheduler-%d leads %v later", leader, other, time.Since(killedAt).Round(10*time.Millisecond))

	// Two more rotations under the new leader, each one grant.
	eventually(t, ctx, 4*fleetTokenLifetime, "two token rotations after the failover", func(ctx context.Context) (bool, string, error) {
		v, err := c.Connection(ctx, connID)
		if err != nil {
			return false, "", err
		}
		if v.Status != "active" {
			return false, "", fmt.Errorf("connection %s: %s (%s: %s)", connID, v.Status, v.Reason, v.Detail)
		}
		return v.Version >= before.Version+2, fmt.Sprintf("version %d (was %d)", v.Version, before.Version), nil
	})
	checkOneGrantPerRotation(t, ctx, c, connID)

	// 3. A busy worker gets SIGTERM.
	exp, err := c.Expected(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetSandboxFaults(ctx, map[string]any{"latency": busyLatency.String(), "target": "data"}); err != nil {
		t.Fatal(err)
	}
	edits := map[string]string{} // page id -> text
	for i, p := range exp.Pages[:min(8, len(exp.Pages))] {
		text := fmt.Sprintf("systemtest edit %d %d", i, time.Now().UnixNano())
		if err := c.TouchPage(ctx, p.ID, text); err != nil {
			t.Fatal(err)
		}
		edits[p.ID] = text
	}
	if err := c.SyncNow(ctx, connID); err != nil {
		t.Fatal(err)
	}
	busy, task := busyWorker(t, ctx, c)
	t.Logf("worker-%d runs %s; SIGTERM", busy, task)
	stopped := time.Now()
	if err := c.StopWorker(busy); err != nil {
		t.Fatalf("worker-%d did not stop gracefully: %v", busy, err)
	}
	t.Logf("worker-%d exited 0 after %v", busy, time.Since(stopped).Round(10*time.Millisecond))
	if err := c.SetSandboxFaults(ctx, map[string]any{"latency": "0s", "target": "data"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, 30*time.Second, "every edit lands in the sink", func(ctx context.Context) (bool, string, error) {
		landed := 0
		for id, text := range edits {
			f, err := readPageFile(c.SyncedDir(), connID, id)
			if err == nil && strings.Contains(string(f.raw), text) {
				landed++
			}
		}
		return landed == len(edits), fmt.Sprintf("%d of %d edits in the sink", landed, len(edits)), nil
	})
	eventually(t, ctx, 10*time.Second, "the workspace is still complete", func(ctx context.Context) (bool, string, error) {
		return syncedCompletely(ctx, c, connID)
	})
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: c.RedisAddr()})
	defer insp.Close()
	for _, q := range []string{jobs.QueueSync, jobs.QueueTokens} {
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			t.Fatal(err)
		}
		if info.Archived != 0 {
			t.Errorf("queue %s has %d archived (given up) tasks", q, info.Archived)
		}
	}
	checkOneGrantPerRotation(t, ctx, c, connID)

	procs := c.Processes()
	if err := c.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	assertGone(t, procs)
}

// checkOneGrantPerRotation waits for a moment when no refresh is half done
// (the connection's version is the same before and after reading the
// sandbox's counters) and checks that the token endpoint granted exactly
// one refresh per stored rotation (version - 1: the code exchange made
// version 1) and answered no invalid_grant. A duplicate refresh would leave
// more grants than rotations for good.
func checkOneGrantPerRotation(t *testing.T, ctx context.Context, c *demo.Cluster, connID string) {
	t.Helper()
	eventually(t, ctx, 5*time.Second, "one refresh grant per rotation", func(ctx context.Context) (bool, string, error) {
		v1, err := c.Connection(ctx, connID)
		if err != nil {
			return false, "", err
		}
		st, err := c.SandboxStats(ctx)
		if err != nil {
			return false, "", err
		}
		v2, err := c.Connection(ctx, connID)
		if err != nil {
			return false, "", err
		}
		tk := st.Tokens
		status := fmt.Sprintf("version %d..%d, refresh grants %d, invalid_grant %d", v1.Version, v2.Version, tk.WorkspaceRefreshGrants, tk.InvalidGrants)
		if tk.InvalidGrants != 0 {
			return false, status, fmt.Errorf("the token endpoint answered invalid_grant: %s", status)
		}
		return v1.Version == v2.Version && int64(tk.WorkspaceRefreshGrants) == v1.Version-1, status, nil
	})
}

// busyWorker waits until a worker is certainly running a sync:page task
// and returns its index. asynq publishes each server's running tasks with
// its heartbeat (every 5 s), so the list may be stale: a page task that
// started less than 2*busyLatency - 1s ago is still in its data requests,
// and the heartbeat shows a task at most 5 s after it started.
func busyWorker(t *testing.T, ctx context.Context, c *demo.Cluster) (int, string) {
	t.Helper()
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: c.RedisAddr()})
	defer insp.Close()
	var pids []int
	for i := 0; c.Worker(i) != nil; i++ {
		pids = append(pids, c.Worker(i).Pid())
	}
	busy, task := -1, ""
	eventually(t, ctx, 20*time.Second, "a worker syncs pages (a sweep syncing what it found, or a drain)", func(ctx context.Context) (bool, string, error) {
		servers, err := insp.Servers()
		if err != nil {
			return false, "", err
		}
		for _, s := range servers {
			i := slices.Index(pids, s.PID)
			if i < 0 || c.Worker(i).Exited() {
				continue
			}
			for _, w := range s.ActiveWorkers {
				if (w.TaskType == jobs.TypeSweep || w.TaskType == jobs.TypeDrain || w.TaskType == jobs.TypePage) && time.Since(w.Started) < 2*busyLatency-time.Second {
					busy, task = i, w.TaskType+" "+w.TaskID
					return true, "", nil
				}
			}
		}
		return false, fmt.Sprintf("%d asynq servers, none with a fresh sweep or drain task", len(servers)), nil
	})
	return busy, task
}
