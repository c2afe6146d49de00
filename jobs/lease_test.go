package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/sync/notionclient"
)

// errKilled is what a "killed" worker's Redis commands and Notion requests
// fail with: from the outside, nothing it does reaches Redis or Notion any
// more, as after a SIGKILL (no release, no renewal, no last write).
var errKilled = errors.New("test: worker killed")

// killSwitch cuts one in-process worker off from Redis and Notion.
type killSwitch struct{ dead atomic.Bool }

func (k *killSwitch) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if k.dead.Load() {
			return nil, errKilled
		}
		return next(ctx, network, addr)
	}
}

func (k *killSwitch) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if k.dead.Load() {
			cmd.SetErr(errKilled)
			return errKilled
		}
		return next(ctx, cmd)
	}
}

func (k *killSwitch) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if k.dead.Load() {
			for _, c := range cmds {
				c.SetErr(errKilled)
			}
			return errKilled
		}
		return next(ctx, cmds)
	}
}

func (k *killSwitch) RoundTrip(r *http.Request) (*http.Response, error) {
	if k.dead.Load() {
		return nil, errKilled
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A worker killed while it syncs a connection (in the middle of its sweep's
// search, or with pages in flight in its drain) leaves its claims, its
// drain flag and its sweep's pending entry behind. They expire with the
// worker's liveness (ClaimTTL, 1s here), and the reaper (run here every
// 100ms, as the scheduler's leader does every tick) hands the work to
// the surviving workers: the connection is synced within a few seconds of
// the kill, not after the minutes the old 5-minute claim and 10-minute
// drain flag lease cost (nor after asynq's 60-120s recovery of the task,
// which never happens here: the dead worker's task ran outside asynq).
func TestKilledWorkerIsTakenOverWithinClaimTTL(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, cluster bool) {
		t.Parallel()
		const ttl = time.Second
		// progressBound: the survivors store a page within ClaimTTL, a reaper
		// pass, a dequeue and a page's requests (with room for -race on a busy
		// machine); the old 5-minute claims and 10-minute flag lease (or
		// asynq's recovery after 60-120s) would take minutes.
		const progressBound = ttl + 3*time.Second
		for _, tc := range []struct {
			name string
			// killNow reports whether the dying worker is where the case
			// wants it.
			killNow func(e *env, synced int64, claims int) bool
			leases  int // lease index entries left behind at the kill, at least
		}{
			{
				// The search has handed out its first 100 results (and taken
				// the drain flag); its second request is in flight.
				name: "mid-search",
				killNow: func(e *env, synced int64, claims int) bool {
					n, _ := e.rdb.HLen(context.Background(), jobs.SyncKey("", e.conn)+":todo").Result()
					return n > 0 && synced == 0
				},
				leases: 2, // the sweep's and the flag's
			},
			{
				// The sweep drains inline; pages are stored and some in flight.
				name: "mid-page",
				killNow: func(e *env, synced int64, claims int) bool {
					return synced >= 3 && claims > 0
				},
				leases: 1, // the flag's
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if cluster && tc.name != "mid-page" {
					// The cluster's tests run one at a time: one case
					// (claims, flag and leases left behind) keeps make
					// test fast.
					t.Skip("the cluster runs the mid-page case")
				}
				t.Parallel()
				ctx := context.Background()
				e := newEnv(t, envOpts{cluster: cluster, spec: notionfake.SeedSpec{Seed: 41, Pages: 150, BlocksPerPage: 2}, claimTTL: ttl, pagesInFlight: 3})
				e.fake.SetDataLatency(40 * time.Millisecond)

				// The dying worker: its own Redis client and Notion client, both
				// behind a kill switch.
				kill := &killSwitch{}
				drdb := e.anotherClient(16, -1)
				drdb.AddHook(kill)
				dnotion, err := notionclient.New(drdb, e.src, notionclient.Config{BaseURL: e.hs, RatePerMinute: 1_000_000, Burst: 100_000,
					Transport: kill, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 10 * time.Millisecond, MaxRetries: -1})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(dnotion.CloseIdleConnections)
				var dsynced atomic.Int64
				dying, err := jobs.New(jobs.Config{Tokens: e.src, Notion: dnotion, Sink: e.sink, Redis: drdb, Enqueuer: asynq.NewClientFromRedisClient(drdb),
					ClaimTTL: ttl, PagesInFlight: 3, Now: e.clock.Now, Logger: zap.NewNop(),
					Hooks: jobs.Hooks{OnPageSynced: func(string) { dsynced.Add(1) }}})
				if err != nil {
					t.Fatal(err)
				}
				mux := asynq.NewServeMux()
				dying.Register(mux)
				dead := make(chan error, 1)
				go func() {
					dead <- mux.ProcessTask(ctx, asynq.NewTask(jobs.TypeSweep, []byte(`{"conn_id":"`+e.conn+`"}`)))
				}()
				claims := func() int {
					ks, _ := e.keysMatching(ctx, jobs.PageClaimKey("", e.conn, "*"))
					return len(ks)
				}
				for !tc.killNow(e, dsynced.Load(), claims()) {
					select {
					case err := <-dead:
						t.Fatalf("the dying worker's sweep ended before the kill: %v", err)
					case <-time.After(2 * time.Millisecond): // polling Redis for the moment to kill
					}
				}
				kill.dead.Store(true)
				killedAt := time.Now()
				<-dead // everything it tries now fails: nothing of it reaches Redis

				left, err := e.rdb.ZRange(ctx, jobs.LeasesKeyForTest(e.conn), 0, -1).Result()
				if err != nil || len(left) < tc.leases {
					t.Fatalf("lease index after the kill: %q (%v), want at least %d entries", left, err, tc.leases)
				}
				if n, _ := e.rdb.Exists(ctx, jobs.DrainKey("", e.conn)).Result(); n != 1 {
					t.Fatal("no drain flag left behind by the killed worker: the case does not test a takeover")
				}
				stuck := claims()
				if tc.name == "mid-page" && stuck == 0 {
					t.Fatal("no claim left behind by the killed worker")
				}

				// Survivors: workers and a reaper (the scheduler's tick).
				e.startWorkers(4)
				reaper, err := jobs.NewReaper(jobs.ReaperConfig{Redis: e.rdb, Enqueuer: e.client})
				if err != nil {
					t.Fatal(err)
				}
				rctx, stopReaper := context.WithCancel(ctx)
				var reaped atomic.Int64
				reaperDone := make(chan struct{})
				go func() {
					defer close(reaperDone)
					for {
						n, err := reaper.Reap(rctx)
						if err != nil && rctx.Err() == nil {
							t.Errorf("reap: %v", err)
						}
						reaped.Add(int64(n))
						select {
						case <-rctx.Done():
							return
						case <-time.After(100 * time.Millisecond): // the scheduler's tick, shortened
						}
					}
				}()
				t.Cleanup(func() { stopReaper(); <-reaperDone })
				select {
				case <-e.pageSynced:
				case <-time.After(progressBound + time.Second - time.Since(killedAt)):
				}
				progress := time.Since(killedAt)
				e.syncTimeout = 60 * time.Second
				st := e.waitSynced()
				took := time.Since(killedAt)
				if n := reaped.Load(); n < 1 {
					t.Errorf("reaper handed on %d leases, want the dead worker's", n)
				}
				t.Logf("%s: %d claims and %d leases left by the kill; first page stored %v after it, all synced after %v (%d pages)",
					tc.name, stuck, len(left), progress.Round(time.Millisecond), took.Round(time.Millisecond), st.PagesSynced)
				if progress > progressBound {
					t.Fatalf("first page stored %v after the kill, want within %v", progress, progressBound)
				}
				e.assertComplete()
				if left, _ := e.rdb.ZCard(ctx, jobs.LeasesKeyForTest(e.conn)).Result(); left != 0 {
					// The last drain may still be releasing its flag.
					for deadline := time.Now().Add(5 * time.Second); left != 0 && time.Now().Before(deadline); {
						time.Sleep(20 * time.Millisecond) // polling the index, bounded
						left, _ = e.rdb.ZCard(ctx, jobs.LeasesKeyForTest(e.conn)).Result()
					}
					if left != 0 {
						t.Fatalf("%d leases left in the index after the sync", left)
					}
				}
			})
		}
	})
}

// A claim is renewed while its task runs, however long that is: a page
// whose sync takes several ClaimTTLs keeps its claim the whole time (no
// second task could take the page), and gives it back when it ends.
// Without the renewal the claim would expire after one ClaimTTL.
func TestClaimRenewedWhileTaskRuns(t *testing.T) {
	t.Parallel()
	const ttl = time.Second
	ctx := context.Background()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 42, Pages: 1, BlocksPerPage: 5}, claimTTL: ttl})
	e.fake.SetDataLatency(ttl) // the page and its blocks: 2+ requests, 2+ TTLs
	page := e.seed.PageIDs[0]
	done := make(chan error, 1)
	go func() { done <- e.runTask(jobs.TypePage, fmt.Sprintf(`{"conn_id":%q,"page_id":%q}`, e.conn, page)) }()
	key := jobs.PageClaimKey("", e.conn, page)
	var seen time.Time
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if seen.IsZero() || time.Since(seen) < 3*ttl/2 {
				t.Fatalf("claim first seen %v before the task ended: want a task that outlives its TTL", time.Since(seen))
			}
			if n, _ := e.rdb.Exists(ctx, key).Result(); n != 0 {
				t.Fatal("claim left behind after the task")
			}
			return
		case <-time.After(50 * time.Millisecond): // sampling the claim while the task runs
		}
		n, err := e.rdb.Exists(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case n == 1 && seen.IsZero():
			seen = time.Now()
		case n == 0 && !seen.IsZero():
			select {
			case err := <-done: // it just ended
				done <- err
			default:
				t.Fatalf("claim gone %v after it was taken, while its task still runs", time.Since(seen))
			}
		}
	}
}

// A data source task whose worker stopped renewing its lease is run again:
// the reaper enqueues the same data source (and database) as a new task.
func TestDeadDataSourceTaskIsRunAgain(t *testing.T) {
	t.Parallel()
	onBoth(t, testDeadDataSourceTaskIsRunAgain)
}

func testDeadDataSourceTaskIsRunAgain(t *testing.T, cluster bool) {
	t.Parallel()
	ctx := context.Background()
	var rdb redis.UniversalClient
	if cluster {
		rdb = jobs.ClusterForTest(t)
	} else {
		single := redis.NewClient(&redis.Options{Addr: redisSrv.Addr(), DB: int(nextDB.Add(1))})
		t.Cleanup(func() { _ = single.Close() })
		rdb = single
	}
	client := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { _ = client.Close() })
	const ds, db = "da7a5000-0000-4000-8000-000000000001", "0d0d0d0d-0000-4000-8000-000000000002"
	// The lease a data source task records, its deadline long past.
	if err := rdb.ZAdd(ctx, jobs.LeasesKeyForTest("conn-x"), redis.Z{Score: 1, Member: "ds\nconn-x\ng0:ds:task\n" + ds + "\n" + db}).Err(); err != nil {
		t.Fatal(err)
	}
	reaper, err := jobs.NewReaper(jobs.ReaperConfig{Redis: rdb, Enqueuer: client})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := reaper.Reap(ctx); err != nil || n != 1 {
		t.Fatalf("Reap: %d, %v; want the data source task handed on", n, err)
	}
	tasks, err := asynq.NewInspectorFromRedisClient(rdb).ListPendingTasks(jobs.QueueSync)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"conn_id":"conn-x","data_source_id":%q,"database_id":%q}`, ds, db)
	if len(tasks) != 1 || tasks[0].Type != jobs.TypeDataSource || string(tasks[0].Payload) != want {
		for _, ti := range tasks {
			t.Logf("task %s %s", ti.Type, ti.Payload)
		}
		t.Fatalf("%d tasks pending, want one %s with %s", len(tasks), jobs.TypeDataSource, want)
	}
}
