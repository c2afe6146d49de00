package jobs_test

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/tokens"
)

// The cost benchmark of issue 11: what keeping a 10,000-page workspace
// mirrored costs in Notion requests, and in minutes of a connection's
// budget at Notion's 3 requests per second.
//
//	go test -run '^$' -bench BenchmarkSyncCost -benchtime 1x -timeout 60m ./jobs/
//
// (-args -cost-pages 500 for a quick run.)
//
// Sub-benchmarks, each on a workspace that finished its first full sync:
//
//   - full-resync: the workspace read again from scratch, as a new
//     connection to it (empty sink, zero cursor) reads it: every page's
//     object and block tree. What a mirror pays today to catch up with
//     what search missed.
//   - cursor-reset: the cursor and sync state are reset and the workspace
//     swept again into the populated sink: search lists everything, but
//     pages whose stored last_edited_time is current are skipped
//     (Sink.Stat), so it costs the search listing only, and finds nothing
//     search does not return.
//   - idle-sweep: one incremental sweep when nothing changed. Goal: 1
//     request (one search page).
//   - reconcile-unchanged: one reconciliation pass over the unchanged
//     workspace, to set side by side with full-resync. It runs through
//     reconcileOnce (set in reconcile_test.go: enqueue the pass, wait for
//     its end and for whatever it handed out).
//
// The first full sync (empty sink) is reported by each as initial_requests.
// Requests are the fake's DataStats (every data request it answered).

// costPages is the workspace's size; -cost-pages makes a quick run smaller.
var costPages = flag.Int("cost-pages", 10_000, "pages of BenchmarkSyncCost's workspace")

// costSpec is the unchanged workspace: flat pages of 3 blocks.
func costSpec() notionfake.SeedSpec {
	return notionfake.SeedSpec{Seed: 7, Pages: *costPages, BlocksPerPage: 3, BlockDepth: 1, History: 30 * 24 * time.Hour}
}

// notionBudget is Notion's average rate limit per integration.
const notionBudget = 3.0 // requests per second

// reconcileOnce runs one reconciliation pass of e's connection and returns
// when it ended (reconcile_test.go sets it); nil skips reconcile-unchanged.
var reconcileOnce func(b *testing.B, e *env)

func BenchmarkSyncCost(b *testing.B) {
	for _, name := range []string{"full-resync", "cursor-reset", "idle-sweep", "reconcile-unchanged"} {
		b.Run(name, func(b *testing.B) {
			if name == "reconcile-unchanged" && reconcileOnce == nil {
				b.Skip("no reconciliation yet (issue 11 item 2): set reconcileOnce in cost_test.go")
			}
			var initial, requests int
			for b.Loop() {
				b.StopTimer()
				e := newEnv(b, envOpts{spec: costSpec()})
				e.syncTimeout = 30 * time.Minute
				e.startWorkers(benchConcurrency)
				initial += e.costOf(func() {
					e.clock.Advance(2 * time.Minute)
					e.sweep()
					e.waitSynced()
				})
				b.StartTimer()
				requests += e.costOf(func() {
					e.clock.Advance(2 * time.Minute)
					switch name {
					case "full-resync":
						conn := e.reconnect()
						e.sweepFor(conn)
						e.waitSyncedFor(conn)
					case "cursor-reset":
						e.resetSyncState()
						e.sweep()
						e.waitSynced()
					case "idle-sweep":
						e.sweep()
						e.waitSynced()
					case "reconcile-unchanged":
						reconcileOnce(b, e)
					}
				})
			}
			n := float64(b.N)
			b.ReportMetric(float64(initial)/n, "initial_requests")
			b.ReportMetric(float64(requests)/n, "requests")
			b.ReportMetric(float64(requests)/n/notionBudget/60, "budget_minutes")
		})
	}
}

// costOf returns the Notion data requests f caused, once every task it
// started has finished.
func (e *env) costOf(f func()) int {
	e.waitIdle()
	before := e.fake.DataStats().Total()
	f()
	e.waitIdle()
	return e.fake.DataStats().Total() - before
}

// reconnect connects the workspace again under a new connection id (the
// old one is revoked, as by a re-authorization) and returns that id: its
// sink and sync state are empty.
func (e *env) reconnect() string {
	e.t.Helper()
	pair := e.fake.SeedConnection(e.ws)
	conn := e.conn + "-again"
	if _, err := e.store.Connect(context.Background(), conn, &tokens.Grant{AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken},
		tokens.Timing{}, tokens.ConnectOptions{}); err != nil {
		e.t.Fatal(err)
	}
	return conn
}

// resetSyncState deletes the connection's sync state (cursor, pending work,
// checkpoints), as if it had never been swept; the sink and the tokens
// stay. The next sweep is a full re-sync into the populated sink.
func (e *env) resetSyncState() {
	e.t.Helper()
	ctx := context.Background()
	for _, pattern := range []string{"sync:%s", "sync:%s:*", "drain:%s", "ckpt:%s:*", "busy:%s:*", "capped:%s:*"} {
		keys, err := e.keysMatching(ctx, jobs.ConnPrefixForTest(e.conn)+fmt.Sprintf(pattern, e.conn))
		if err != nil {
			e.t.Fatal(err)
		}
		if len(keys) > 0 {
			if err := e.rdb.Del(ctx, keys...).Err(); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	if st, err := e.h.State(ctx, e.conn); err != nil || !st.Cursor.IsZero() {
		e.t.Fatalf("sync state after the reset: %+v (%v)", st, err)
	}
}
