//go:build unix

package demo

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A demo Redis Cluster: KillRedisMaster SIGKILLs the master of a slot, its
// replica is promoted and serves the slot's data, and the killed node comes
// back as a replica; Stop ends all six processes.
func TestRedisClusterKillMaster(t *testing.T) {
	c, err := New(Options{Dir: t.TempDir(), RedisCluster: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.prepareDir(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes, err := c.startRedisCluster(ctx)
	defer func() {
		if err := c.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
			for _, n := range nodes {
				b, _ := os.ReadFile(n.log)
				for _, l := range strings.Split(string(b), "\n") {
					if strings.Contains(l, "SIGTERM") || strings.Contains(l, "hutdown") || strings.Contains(l, "exit") || strings.Contains(l, "Server initialized") {
						t.Logf("%s: %s", n.addr, l)
					}
				}
			}
		}
		for _, n := range nodes {
			if !n.proc.Exited() {
				t.Errorf("redis node %s still runs after Stop", n.addr)
			}
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.started, c.redisNodes, c.redisAddr = true, nodes, nodes[0].addr
	c.mu.Unlock()
	if len(nodes) != 2*ClusterMasters {
		t.Fatalf("%d nodes", len(nodes))
	}
	masters, err := c.RedisMasters(ctx)
	if err != nil || len(masters) != ClusterMasters {
		t.Fatalf("masters %v, %v", masters, err)
	}
	env := strings.Join(c.commonEnv(), "\n")
	if !strings.Contains(env, "NOTIONSYNC_REDIS_CLUSTER_ADDRS="+nodes[0].addr+",") || !strings.Contains(env, "NOTIONSYNC_QUEUE_SHARDS=3") {
		t.Errorf("the processes are not configured for the cluster:\n%s", env)
	}

	rdb := redis.NewUniversalClient(c.RedisOptions())
	defer rdb.Close()
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		t.Fatalf("RedisOptions made a %T", rdb)
	}
	// "{b}" hashes to slot 3300, served by the first master. The write is
	// on the replica before the kill (WAIT), so the promotion keeps it.
	const key = "{b}survives"
	if err := rdb.Set(ctx, key, "yes", 0).Err(); err != nil {
		t.Fatal(err)
	}
	cc := rdb.(*redis.ClusterClient)
	master, _ := cc.MasterForKey(ctx, key)
	// Right after the creation a replica may still be in its first sync.
	for {
		n, err := master.Do(ctx, "WAIT", 1, 1000).Int()
		if err == nil && n == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("WAIT 1: %d, %v", n, err)
		}
	}

	mk, err := c.KillRedisMaster(ctx, 3300)
	if err != nil {
		t.Fatal(err)
	}
	if mk.Killed == "" || mk.Promoted == "" || mk.Killed == mk.Promoted || mk.Failover <= 0 || mk.Rejoined < mk.Failover {
		t.Errorf("MasterKill %+v", mk)
	}
	after, err := c.RedisMasters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != ClusterMasters || !contains(after, mk.Promoted) || contains(after, mk.Killed) {
		t.Errorf("masters after the kill %v; killed %s, promoted %s", after, mk.Killed, mk.Promoted)
	}
	if got, err := rdb.Get(ctx, key).Result(); err != nil || got != "yes" {
		t.Errorf("GET after the failover: %q, %v", got, err)
	}
	killed := newRedisClient(mk.Killed)
	defer killed.Close()
	if info, err := killed.Info(ctx, "replication").Result(); err != nil || !strings.Contains(info, "role:slave") {
		t.Errorf("the restarted node is not a replica: %v\n%s", err, info)
	}

	// Slot -1 picks the master that processed the most commands.
	ranges, err := slotOwners(ctx, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if busy, err := busiestMaster(ctx, ranges); err != nil || !contains(after, busy) {
		t.Errorf("busiest master %q, %v; masters %v", busy, err, after)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
