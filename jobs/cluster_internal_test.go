package jobs

import (
	"context"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/redistest"
)

// The package's Redis Cluster (3 masters, no replicas: the tests are about
// slots, not failover), started by the first test that asks for it and
// stopped by TestMain (StopClusterForTest). A cluster has one database,
// and asynq's keys have no prefix: a test that uses it holds clusterMu for
// its whole run and starts from an empty cluster.
var (
	clusterOnce sync.Once
	clusterSrv  *redistest.Cluster
	clusterErr  error
	clusterMu   sync.Mutex
)

// ClusterForTest returns a client of the package's Redis Cluster, emptied
// and held by t alone until it ends. It skips t in -short mode.
func ClusterForTest(t testing.TB) *redis.ClusterClient {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	clusterOnce.Do(func() { clusterSrv, clusterErr = redistest.StartCluster(redistest.ClusterOptions{Replicas: -1}) })
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	clusterMu.Lock()
	t.Cleanup(clusterMu.Unlock)
	rdb := clusterSrv.Client()
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	if err := rdb.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.FlushAll(ctx).Err() }); err != nil {
		t.Fatal(err)
	}
	return rdb
}

// StopClusterForTest stops the package's Redis Cluster if a test started
// it.
func StopClusterForTest() error {
	if clusterSrv == nil {
		return nil
	}
	return clusterSrv.Stop()
}
