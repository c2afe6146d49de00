package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap/zaptest"

	"github.com/notionsync/notionsync/config"
	"github.com/notionsync/notionsync/internal/app"
	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/jobs"
)

// One Redis Cluster for the package, started by the first test that needs
// it (about 3 s) and stopped by TestMain. Tests that use it do not run in
// parallel with each other: one of them kills a master.
var (
	clusterOnce sync.Once
	cluster     *redistest.Cluster
	clusterErr  error
)

// clusterNodeTimeout is long enough for a test to see a killed master
// before its replica is promoted.
const clusterNodeTimeout = 4 * time.Second

func testCluster(t *testing.T) *redistest.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		cluster, clusterErr = redistest.StartCluster(redistest.ClusterOptions{NodeTimeout: clusterNodeTimeout})
	})
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	return cluster
}

func stopCluster() {
	if cluster != nil {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop cluster:", err)
		}
	}
}

// connInShard returns a connection id of shard i.
func connInShard(i int) string {
	for k := 0; ; k++ {
		if id := fmt.Sprintf("conn-%d", k); keyspace.ShardOf(id) == i {
			return id
		}
	}
}

// With NOTIONSYNC_QUEUE_SHARDS=3 on a 3-master cluster, each base queue's
// three parts sit on three different masters, every connection's task is
// in its part, and a worker serving the base weights (jobs.ServedQueues)
// drains all of them.
func TestSpreadQueuesOnCluster(t *testing.T) {
	cl := testCluster(t)
	rdb := cl.Client()
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Queue names of this test's own (asynq's keys have no prefix).
	weights := map[string]int{"t-tokens": 6, "t-sync": 3, "t-backfill": 1}
	const parts = 3
	for base := range weights {
		masters := map[string]bool{}
		for j := range parts {
			q := keyspace.SpreadName(base, j, parts)
			m, err := cl.MasterOf(ctx, keyspace.Slot("asynq:{"+q+"}:pending"))
			if err != nil {
				t.Fatal(err)
			}
			masters[m.Addr()] = true
		}
		if len(masters) != parts {
			t.Errorf("the %d parts of %s are on %d master(s), want %d", parts, base, len(masters), parts)
		}
	}

	client := asynq.NewClientFromRedisClient(rdb)
	enq := jobs.SpreadQueues(client, parts)
	type task struct{ id, queue string }
	var tasks []task
	for shard := range keyspace.Shards {
		conn := connInShard(shard)
		for base := range weights {
			b, _ := json.Marshal(map[string]string{"conn_id": conn})
			id := fmt.Sprintf("%s:%s", base, conn)
			if _, err := enq.EnqueueContext(ctx, asynq.NewTask("probe", b), asynq.Queue(base), asynq.TaskID(id)); err != nil {
				t.Fatal(err)
			}
			tasks = append(tasks, task{id: id, queue: jobs.QueueFor(base, conn, parts)})
		}
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	perQueue := map[string]int{}
	for _, tk := range tasks {
		if _, err := insp.GetTaskInfo(tk.queue, tk.id); err != nil {
			t.Fatalf("task %s not in queue %s: %v", tk.id, tk.queue, err)
		}
		perQueue[tk.queue]++
	}
	if len(perQueue) != len(weights)*parts {
		t.Errorf("tasks in %d queues, want %d: %v", len(perQueue), len(weights)*parts, perQueue)
	}

	existing, err := insp.Queues()
	if err != nil {
		t.Fatal(err)
	}
	var done atomic.Int64
	all := make(chan struct{})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 8, Queues: jobs.ServedQueues(weights, parts, existing), LogLevel: asynq.FatalLevel,
	})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		if done.Add(1) == int64(len(tasks)) {
			close(all)
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	select {
	case <-all:
	case <-ctx.Done():
		t.Fatalf("the worker ran %d of %d tasks", done.Load(), len(tasks))
	}
}

// A worker runs on a cluster with spread queues, and /readyz asks every
// master: while a killed master is not yet replaced it answers 503 on every
// probe (a PING of one random node would pass two times in three), and 200
// again once the replica is promoted.
func TestWorkerOnClusterReadiness(t *testing.T) {
	cl := testCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := freeAddr(t)
	vars := env(t, "0")
	vars["NOTIONSYNC_REDIS_URL"] = "redis://ignored:1/0"
	vars["NOTIONSYNC_REDIS_CLUSTER_ADDRS"] = cl.Addrs()[0]
	vars["NOTIONSYNC_QUEUE_SHARDS"] = "3"
	vars["NOTIONSYNC_HTTP_ADDR"] = addr
	cfg, err := config.LoadWorkerFrom(config.MapLookup(vars))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.RunWorker(ctx, cfg, zaptest.NewLogger(t)) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunWorker: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("worker did not stop in time")
		}
	}()
	ready := "http://" + addr + "/readyz"
	waitHTTP(t, ready, done)

	victim, err := cl.MasterOf(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	victim.Kill()
	killed := time.Now()
	for i := range 5 {
		if code, body := get(t, ready, ""); code != http.StatusServiceUnavailable {
			if time.Since(killed) >= clusterNodeTimeout {
				t.Skipf("probe %d came after the failover could start (%v): too slow a machine to tell", i, time.Since(killed))
			}
			t.Fatalf("probe %d after killing master %s: %d %q, want 503", i, victim.Addr(), code, body)
		}
	}
	hctx, hcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer hcancel()
	if err := cl.WaitHealthy(hctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	waitHTTP(t, ready, done)
	// The killed node rejoins as a replica of its promoted replica.
	if err := victim.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitHealthy(hctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
}
