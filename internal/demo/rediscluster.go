package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// A Redis Cluster for the demo and the fleet suite (Options.RedisCluster):
// ClusterMasters masters with one replica each, made by redis-cli --cluster
// create, so each master owns one contiguous third of the slots and the
// key scheme's shards (internal/keyspace) spread evenly over them.
const (
	// ClusterMasters is the number of masters of a demo Redis Cluster, and
	// the NOTIONSYNC_QUEUE_SHARDS its processes get.
	ClusterMasters = 3
	// clusterNodeTimeout is cluster-node-timeout: how long a master is
	// unreachable before its replica is promoted. Redis's default (15 s)
	// would make every master kill a 20-second outage for a third of the
	// connections; 3 s still tolerates a loaded two-core machine.
	clusterNodeTimeout = 3 * time.Second
)

// ErrRedisCLINotInstalled is returned (wrapped) by Start when a Redis
// Cluster is asked for and redis-cli, which creates it, is not in PATH.
var ErrRedisCLINotInstalled = errors.New("redis-cli not found in PATH; run `make deps` or scripts/ensure-deps.sh redis")

// redisNode is one redis-server of a demo Redis Cluster.
type redisNode struct {
	name string // redis-<i>, its process's and log's name
	proc *Process
	addr string
	dir  string // its data: AOF and nodes.conf (its identity in the cluster)
	log  string
}

// clusterNodeArgs are the redis-server arguments of a cluster node.
func clusterNodeArgs(port int, dir string) []string {
	return []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--daemonize", "no", "--logfile", "", "--save", "",
		"--appendonly", "yes", "--appendfsync", "always",
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.FormatInt(clusterNodeTimeout.Milliseconds(), 10),
		// A replica whose master was SIGKILLed is promoted even if it
		// lagged: the demo's point is that the cluster goes on.
		"--cluster-replica-validity-factor", "0",
		// On SIGTERM a master waits this long (default 10 s) for its
		// replicas to catch up; Stop ends them together.
		"--shutdown-timeout", "1",
	}
}

// startRedisCluster starts 2*ClusterMasters nodes under redis/node-<i>,
// creates the cluster and returns once every slot is served.
func (c *Cluster) startRedisCluster(ctx context.Context) ([]*redisNode, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", ErrRedisNotInstalled)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", ErrRedisCLINotInstalled)
	}
	var nodes []*redisNode
	for i := range 2 * ClusterMasters {
		name := fmt.Sprintf("redis-%d", i)
		n := &redisNode{name: name, dir: c.path(RedisDir, fmt.Sprintf("node-%d", i)), log: c.logPath(name)}
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		var lastErr error
		for range portAttempts {
			port, err := freePort()
			if err != nil {
				return nil, err
			}
			n.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			if n.proc, lastErr = c.startClusterNode(ctx, bin, n); lastErr == nil || ctx.Err() != nil {
				break
			}
		}
		if lastErr != nil {
			return nil, lastErr
		}
		nodes = append(nodes, n)
	}
	args := []string{"--cluster", "create"}
	for _, n := range nodes {
		args = append(args, n.addr)
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "REDISCLI_AUTH=") })
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("demo: redis-cli --cluster create: %w\n%s", err, out)
	}
	if err := waitClusterHealthy(ctx, nodes, c.opts.StartTimeout); err != nil {
		return nil, err
	}
	return nodes, nil
}

// startClusterNode runs redis-server for n on n.addr, tracked by the
// Cluster, and returns once it answers PING.
func (c *Cluster) startClusterNode(ctx context.Context, bin string, n *redisNode) (*Process, error) {
	_, portStr, _ := net.SplitHostPort(n.addr)
	port, _ := strconv.Atoi(portStr)
	p, err := startProcess(n.name, bin, clusterNodeArgs(port, n.dir), nil, n.dir, n.log, nil)
	if err != nil {
		return nil, err
	}
	if err := c.track(p); err != nil {
		return nil, err
	}
	if err := waitRedis(ctx, p, n.addr, c.opts.StartTimeout); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// waitClusterHealthy waits until every running node reports
// cluster_state:ok with all 16,384 slots served.
func waitClusterHealthy(ctx context.Context, nodes []*redisNode, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := clusterHealthy(ctx, nodes)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: Redis Cluster not healthy after %v: %w", timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func clusterHealthy(ctx context.Context, nodes []*redisNode) error {
	for _, n := range nodes {
		if n.proc == nil || n.proc.Exited() {
			continue
		}
		rdb := newRedisClient(n.addr)
		info, err := rdb.ClusterInfo(ctx).Result()
		_ = rdb.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", n.addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			return fmt.Errorf("%s: not ok yet", n.addr)
		}
	}
	return nil
}

// clusterSeeds returns the nodes' addresses, for NOTIONSYNC_REDIS_CLUSTER_ADDRS.
func clusterSeeds(nodes []*redisNode) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.addr
	}
	return out
}

// RedisOptions returns go-redis options that reach the Cluster's Redis:
// a single node, or a Redis Cluster client seeded with every node.
func (c *Cluster) RedisOptions() *redis.UniversalOptions {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.redisOptionsLocked()
}

func (c *Cluster) redisOptionsLocked() *redis.UniversalOptions {
	o := &redis.UniversalOptions{
		Addrs:                    []string{c.redisAddr},
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if len(c.redisNodes) > 0 {
		o.Addrs, o.IsClusterMode = clusterSeeds(c.redisNodes), true
	}
	return o
}

// RedisCluster reports whether the Cluster runs Redis as a Redis Cluster.
func (c *Cluster) RedisCluster() bool { return c.opts.RedisCluster }

// RedisMasters returns the addresses of the Redis masters serving slots
// now: the one node without a Redis Cluster.
func (c *Cluster) RedisMasters(ctx context.Context) ([]string, error) {
	c.mu.Lock()
	nodes := slices.Clone(c.redisNodes)
	single := c.redisAddr
	c.mu.Unlock()
	if len(nodes) == 0 {
		return []string{single}, nil
	}
	ranges, err := slotOwners(ctx, nodes)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range ranges {
		if !slices.Contains(out, r.master) {
			out = append(out, r.master)
		}
	}
	slices.Sort(out)
	return out, nil
}

type slotRange struct {
	start, end int
	master     string
}

// slotOwners asks a live node for the slot map (CLUSTER SLOTS).
func slotOwners(ctx context.Context, nodes []*redisNode) ([]slotRange, error) {
	var lastErr error
	for _, n := range nodes {
		if n.proc == nil || n.proc.Exited() {
			continue
		}
		rdb := newRedisClient(n.addr)
		slots, err := rdb.ClusterSlots(ctx).Result()
		_ = rdb.Close()
		if err != nil {
			lastErr = err
			continue
		}
		out := make([]slotRange, 0, len(slots))
		for _, s := range slots {
			if len(s.Nodes) > 0 {
				out = append(out, slotRange{start: s.Start, end: s.End, master: s.Nodes[0].Addr})
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("demo: no live Redis node answers CLUSTER SLOTS: %v", lastErr)
}

// MasterKill is what KillRedisMaster did.
type MasterKill struct {
	Killed   string        // the SIGKILLed master's address
	Promoted string        // the replica that serves its slots now
	Failover time.Duration // from the kill to every slot served again
	Rejoined time.Duration // from the kill to the restarted node back as a replica
}

// KillRedisMaster SIGKILLs the Redis Cluster master that serves slot (or,
// when slot is negative, the master that processed the most commands), waits
// until its replica is promoted and every slot is served again, then
// restarts the killed node on its port with its data: it rejoins as a
// replica of the promoted one. Acknowledged writes the replica had not yet
// received are lost, as in any Redis Cluster failover. It fails without a
// Redis Cluster (RestartRedis crashes a single node).
func (c *Cluster) KillRedisMaster(ctx context.Context, slot int) (MasterKill, error) {
	var mk MasterKill
	c.mu.Lock()
	if !c.started || c.stopping || len(c.redisNodes) == 0 {
		c.mu.Unlock()
		return mk, errors.New("demo: KillRedisMaster needs a started, running Cluster with Options.RedisCluster")
	}
	nodes := slices.Clone(c.redisNodes)
	c.mu.Unlock()
	ranges, err := slotOwners(ctx, nodes)
	if err != nil {
		return mk, err
	}
	if slot >= 0 {
		for _, r := range ranges {
			if slot >= r.start && slot <= r.end {
				mk.Killed = r.master
			}
		}
	} else {
		mk.Killed, err = busiestMaster(ctx, ranges)
		if err != nil {
			return mk, err
		}
	}
	var victim *redisNode
	for _, n := range nodes {
		if n.addr == mk.Killed {
			victim = n
		}
	}
	if victim == nil {
		return mk, fmt.Errorf("demo: no node of this Cluster serves slot %d (masters %v)", slot, ranges)
	}
	if mk.Promoted, err = replicaOf(ctx, victim.addr); err != nil {
		return mk, err
	}
	start := time.Now()
	victim.proc.Kill()
	<-victim.proc.Done()
	// The promotion: the survivors notice the kill only after the node
	// timeout, so wait until the slot map names the replica instead of
	// the killed master and every live node reports cluster_state:ok.
	failoverTimeout := 10*clusterNodeTimeout + c.opts.StartTimeout
	if err := waitFailover(ctx, nodes, mk.Killed, mk.Promoted, failoverTimeout); err != nil {
		return mk, err
	}
	mk.Failover = time.Since(start)
	fmt.Fprintf(c.opts.Out, "demo: redis master %s killed; %s promoted in %s\n", mk.Killed, mk.Promoted, mk.Failover.Round(time.Millisecond))

	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return mk, fmt.Errorf("demo: %w", ErrRedisNotInstalled)
	}
	p, err := c.startClusterNode(ctx, bin, victim)
	if err != nil {
		return mk, fmt.Errorf("demo: restart killed master %s: %w", victim.addr, err)
	}
	c.mu.Lock()
	victim.proc = p
	c.mu.Unlock()
	if err := waitReplica(ctx, victim.addr, failoverTimeout); err != nil {
		return mk, err
	}
	if err := waitClusterHealthy(ctx, nodes, failoverTimeout); err != nil {
		return mk, err
	}
	mk.Rejoined = time.Since(start)
	fmt.Fprintf(c.opts.Out, "demo: redis node %s restarted as a replica (pid %d) %s after the kill\n", victim.addr, p.Pid(), mk.Rejoined.Round(time.Millisecond))
	return mk, nil
}

// waitFailover waits until no slot is served by killed, some by promoted,
// and the cluster is healthy.
func waitFailover(ctx context.Context, nodes []*redisNode, killed, promoted string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := failedOver(ctx, nodes, killed, promoted)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: no failover of %s after %v: %w", killed, timeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func failedOver(ctx context.Context, nodes []*redisNode, killed, promoted string) error {
	ranges, err := slotOwners(ctx, nodes)
	if err != nil {
		return err
	}
	served := false
	for _, r := range ranges {
		if r.master == killed {
			return fmt.Errorf("killed master %s still serves slots %d-%d", killed, r.start, r.end)
		}
		served = served || r.master == promoted
	}
	if !served {
		return fmt.Errorf("replica %s serves no slot yet", promoted)
	}
	return clusterHealthy(ctx, nodes)
}

// replicaOf returns the address of the first replica of the master at addr
// (INFO replication's slave0).
func replicaOf(ctx context.Context, addr string) (string, error) {
	rdb := newRedisClient(addr)
	defer rdb.Close()
	info, err := rdb.Info(ctx, "replication").Result()
	if err != nil {
		return "", fmt.Errorf("demo: INFO replication of %s: %w", addr, err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "slave0:")
		if !ok {
			continue
		}
		var ip, port string
		for f := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(f, "ip="); ok {
				ip = v
			} else if v, ok := strings.CutPrefix(f, "port="); ok {
				port = v
			}
		}
		if ip != "" && port != "" {
			return net.JoinHostPort(ip, port), nil
		}
	}
	return "", fmt.Errorf("demo: master %s has no replica to promote", addr)
}

// busiestMaster returns the master with the most commands processed.
func busiestMaster(ctx context.Context, ranges []slotRange) (string, error) {
	best, bestN := "", int64(-1)
	seen := map[string]bool{}
	for _, r := range ranges {
		if seen[r.master] {
			continue
		}
		seen[r.master] = true
		n, err := CommandsProcessed(ctx, r.master)
		if err != nil {
			return "", err
		}
		if n > bestN {
			best, bestN = r.master, n
		}
	}
	return best, nil
}

// CommandsProcessed returns INFO stats total_commands_processed of the
// Redis node at addr.
func CommandsProcessed(ctx context.Context, addr string) (int64, error) {
	rdb := newRedisClient(addr)
	defer rdb.Close()
	info, err := rdb.Info(ctx, "stats").Result()
	if err != nil {
		return 0, fmt.Errorf("demo: INFO stats of %s: %w", addr, err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("demo: INFO stats of %s has no total_commands_processed", addr)
}

// waitReplica waits until the node at addr reports role:slave with its
// link to the master up and its initial AOF written: until then the node
// refuses SIGTERM ("Writing initial AOF, can't exit"), which would stall
// Stop if its master were stopped first.
func waitReplica(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rdb := newRedisClient(addr)
	defer rdb.Close()
	for {
		info, err := rdb.Info(ctx, "replication", "persistence").Result()
		if err == nil && strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up") &&
			strings.Contains(info, "aof_rewrite_in_progress:0") && strings.Contains(info, "aof_rewrite_scheduled:0") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: restarted node %s not a synced replica after %v (last: %v)", addr, timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
