package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/jobs"
	"github.com/notionsync/notionsync/sync/notionclient"
)

// Recovery after a Redis kill must not wait for asynq: a task whose retry
// or completion asynq could not write while Redis was down stays "active"
// until its 30 s lease and its recoverer's one-minute poll have passed (60
// to 120 s). These tests kill a real redis-server (AOF, fsync always) at
// the moment that matters and restart it.

// A sweep task fails (Notion answers 500) and Redis is killed right after,
// before asynq writes the task's retry: asynq loses the retry and keeps the
// task active for a minute or two. The failed sweep must not hold the
// connection's cursor meanwhile: its pending entry went with its lease
// when it failed, so the next slot's sweep syncs the connection at once.
// Before, the entry stayed for the retry asynq had lost, and the
// connection stayed unsynced until asynq's recoverer ran the task again.
func TestFailedSweepHoldsNothingWhenRedisLosesItsRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.StartTB(t, redistest.Options{AOF: true})
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 7, Pages: 3, BlocksPerPage: 1}, usersInterval: -1, redis: srv})

	// asynq's own warning that it could not write a task's outcome: the
	// moment Redis may come back (its later attempts use a context it has
	// already cancelled, so they never succeed).
	outcomeLost := make(chan string, 16)
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.WarnLevel),
		zap.Hooks(func(en zapcore.Entry) error {
			if strings.Contains(en.Message, "Will retry syncing") {
				select {
				case outcomeLost <- en.Message:
				default:
				}
			}
			return nil
		}))
	mux := asynq.NewServeMux()
	e.h.Register(mux)
	failing := fmt.Sprintf("sweep:%s:%d", e.conn, 2000) // jobs' sweep task id for slot 2000 ms
	var killed atomic.Bool
	handler := asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		err := mux.ProcessTask(ctx, task)
		if id, _ := asynq.GetTaskID(ctx); id == failing && err != nil && killed.CompareAndSwap(false, true) {
			srv.Kill() // asynq writes the task's retry next: to a dead Redis
		}
		return err
	})
	asrv := asynq.NewServerFromRedisClient(e.rdb, e.h.ServerConfig(asynq.Config{
		Concurrency: 4, TaskCheckInterval: 5 * time.Millisecond, DelayedTaskCheckInterval: 50 * time.Millisecond,
		Logger: jobs.AsynqLogger{L: logger}, LogLevel: asynq.WarnLevel,
	}))
	if err := asrv.Start(handler); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(asrv.Shutdown)

	client := jobs.NewClient(e.client)
	if err := client.EnqueueSweep(ctx, e.conn, time.UnixMilli(1000)); err != nil {
		t.Fatal(err)
	}
	e.waitSynced()

	// The next sweep's search fails (with the client's retries), and Redis
	// dies before asynq records that.
	e.fake.FailDataNext(1+notionclient.DefaultMaxRetries, 500)
	e.clock.Advance(time.Minute)
	if err := client.EnqueueSweep(ctx, e.conn, time.UnixMilli(2000)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-outcomeLost:
	case <-time.After(30 * time.Second):
		t.Fatalf("asynq never failed to write the failed sweep's outcome (Redis killed: %v)", killed.Load())
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}

	// The premise: asynq lost the retry; the task waits for its recoverer.
	info, err := asynq.NewInspectorFromRedisClient(e.rdb).GetTaskInfo(jobs.QueueSync, failing)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != asynq.TaskStateActive {
		t.Fatalf("the failed sweep's task is %v after the restart, want active (its retry lost)", info.State)
	}
	pending, err := e.rdb.SMembers(ctx, jobs.ConnPrefixForTest(e.conn)+"sync:"+e.conn+":pending").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 0 {
		t.Fatalf("pending after the failed sweep: %q, want nothing (the entry waits for a retry asynq lost)", pending)
	}
	if n, _ := e.rdb.ZCard(ctx, jobs.LeasesKeyForTest(e.conn)).Result(); n != 0 {
		t.Fatalf("%d leases left by a sweep that ended", n)
	}

	// The next slot's sweep syncs the connection well before asynq would
	// run the lost task again.
	e.clock.Advance(time.Minute)
	if err := client.EnqueueSweep(ctx, e.conn, time.UnixMilli(3000)); err != nil {
		t.Fatal(err)
	}
	e.syncTimeout = 15 * time.Second
	for {
		st := e.waitSynced()
		if st.LastSweep.Equal(e.clock.Now()) {
			break
		}
		select {
		case <-e.advanced:
		case <-time.After(50 * time.Millisecond): // the sweep may end without moving the cursor
		}
	}
}

// The reaper takes a dead sweep's lease and Redis is killed before its
// reply arrives (the script ran, the reply is lost). The lease must fall
// due again and be acted on by a later reap. Before, the reap script took
// the lease out of the index, so nobody ever released the dead sweep's
// pending entry and the connection stayed unsynced.
func TestReaperActsAgainWhenItsReplyIsLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.StartTB(t, redistest.Options{AOF: true})
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 8, Pages: 3, BlocksPerPage: 1}, usersInterval: -1, redis: srv})
	e.startWorkers(4)
	client := jobs.NewClient(e.client)
	if err := client.EnqueueSweep(ctx, e.conn, time.UnixMilli(1000)); err != nil {
		t.Fatal(err)
	}
	e.waitSynced()

	// A sweep whose worker died just after it began.
	const ttl = 50 * time.Millisecond
	if err := jobs.BeginSweepForTest(ctx, e.rdb, e.conn, "sweep:dead", ttl, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)

	lose := &loseReapReply{srv: srv, lost: make(chan struct{})}
	rrdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	rrdb.AddHook(lose)
	t.Cleanup(func() { rrdb.Close() })
	reaper, err := jobs.NewReaper(jobs.ReaperConfig{Redis: rrdb, Enqueuer: e.client, Hold: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	var reaped atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			n, _ := reaper.Reap(rctx) // fails while Redis is down
			reaped.Add(int64(n))
			select {
			case <-rctx.Done():
				return
			case <-time.After(50 * time.Millisecond): // the scheduler's tick, shortened
			}
		}
	}()
	t.Cleanup(func() { stop(); <-done })

	select {
	case <-lose.lost:
	case <-time.After(30 * time.Second):
		t.Fatal("the reaper never took the dead sweep's lease")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	e.syncTimeout = 15 * time.Second
	// The reaper releases the dead sweep's pending entry and then a new
	// sweep runs: between the two nothing is pending, so wait for the new
	// sweep, not merely for "synced" (under load the gap is long enough to
	// be seen).
	deadline := time.Now().Add(e.syncTimeout)
	for {
		st := e.waitSynced()
		if st.LastSweep.Equal(e.clock.Now()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("synced without a new sweep: last sweep %v", st.LastSweep)
		}
		time.Sleep(20 * time.Millisecond) // polling the state, bounded by deadline
	}
	if n := reaped.Load(); n != 1 {
		t.Fatalf("reaper handed on %d leases after the lost reply, want the dead sweep's once", n)
	}
}

// loseReapReply kills the Redis server right after the first reap
// pipeline that hands out a sweep's lease has run, and reports its replies
// as lost.
type loseReapReply struct {
	srv  *redistest.Server
	once atomic.Bool
	lost chan struct{}
}

var errReplyLost = errors.New("test: connection reset before the reply")

func (l *loseReapReply) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (l *loseReapReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}

// ProcessPipelineHook: the reaper runs its script on every shard of the
// lease index in one pipeline (runScripts).
func (l *loseReapReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if !l.handsOutSweep(cmds) || !l.once.CompareAndSwap(false, true) {
			return err
		}
		l.srv.Kill()
		close(l.lost)
		for _, c := range cmds {
			c.SetErr(errReplyLost)
		}
		return errReplyLost
	}
}

// handsOutSweep says whether one of cmds is a reap script that returned a
// sweep's lease.
func (l *loseReapReply) handsOutSweep(cmds []redis.Cmder) bool {
	for _, cmd := range cmds {
		c, ok := cmd.(*redis.Cmd)
		if !ok || c.Err() != nil || (cmd.Name() != "evalsha" && cmd.Name() != "eval") {
			continue
		}
		vals, _ := c.Val().([]any)
		if len(vals) == 0 {
			continue
		}
		if m, _ := vals[0].(string); strings.HasPrefix(m, "sweep\n") {
			return true
		}
	}
	return false
}

// A task whose page is in the sink records it even when its context ends
// right then (a worker's graceful shutdown cancels running tasks): else a
// retry finds the page stored, skips it, and the page is never counted.
func TestFinishSurvivesACancelledTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{spec: notionfake.SeedSpec{Seed: 9, Pages: 1, BlocksPerPage: 1}, usersInterval: -1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := jobs.MarkDoneForTest(ctx, e.h, e.conn, "page:x", 1); err != nil {
		t.Fatalf("recording a stored page after the task's context ended: %v", err)
	}
	st, err := e.h.State(context.Background(), e.conn)
	if err != nil {
		t.Fatal(err)
	}
	if st.PagesSynced != 1 {
		t.Fatalf("pages synced %d, want 1", st.PagesSynced)
	}
}
