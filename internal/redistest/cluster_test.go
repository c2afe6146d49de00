package redistest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/keyspace"
)

// A real cluster: keys of one shard work together in a script, keys of two
// shards are refused (CROSSSLOT), the shards spread over the three masters,
// and a killed master's replica takes over.
func TestClusterShardsAndFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six redis-server processes")
	}
	c := StartClusterTB(t, ClusterOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rdb := c.Client()
	defer rdb.Close()

	shard := keyspace.ShardOf("x")
	same := []string{keyspace.Shard("t:", shard) + "due", keyspace.Conn("t:", "x") + "conn:x"}
	if err := rdb.Eval(ctx, `redis.call('SET', KEYS[1], 1); return redis.call('SET', KEYS[2], 2)`, same).Err(); err != nil {
		t.Fatalf("script over one shard: %v", err)
	}
	other := []string{keyspace.Shard("t:", shard) + "due", keyspace.Shard("t:", (shard+32)%keyspace.Shards) + "due"}
	err := rdb.Eval(ctx, `redis.call('SET', KEYS[1], 1); return redis.call('SET', KEYS[2], 2)`, other).Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("script over two shards: %v, want CROSSSLOT", err)
	}

	masters := map[string]int{}
	for i := range keyspace.Shards {
		m, err := c.MasterOf(ctx, keyspace.Slot(keyspace.Shard("t:", i)))
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Addr()]++
	}
	if len(masters) != 3 {
		t.Fatalf("shards on %d masters, want 3: %v", len(masters), masters)
	}
	for addr, n := range masters {
		if n < 20 || n > 23 {
			t.Errorf("master %s serves %d of 64 shards", addr, n)
		}
	}

	slot := keyspace.Slot(same[0])
	old, err := c.MasterOf(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	old.Kill()
	if err := c.WaitHealthy(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	promoted, err := c.MasterOf(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	if promoted == old {
		t.Fatal("the killed master still serves the slot")
	}
	fresh := c.Client() // the old client's slot map names the dead master
	defer fresh.Close()
	if err := fresh.Set(ctx, same[0], "after", 0).Err(); err != nil {
		t.Fatalf("write after failover: %v", err)
	}
	if err := old.Restart(); err != nil { // rejoins as a replica
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}
