package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// ErrNoRedisCLI is returned (wrapped) by StartCluster when redis-cli, which
// creates the cluster, cannot be found in PATH.
var ErrNoRedisCLI = errors.New("redis-cli not found in PATH; run `make deps` (installs redis-server and redis-tools with apt-get when root)")

// ClusterOptions configures a cluster. The zero value is 3 masters with one
// replica each, without persistence.
type ClusterOptions struct {
	// Masters is the number of masters. Default 3 (Redis Cluster's minimum).
	Masters int
	// Replicas is the number of replicas per master. Default 1; negative
	// means none.
	Replicas int
	// AOF turns on the append-only file on every node (see Options.AOF).
	AOF bool
	// NodeTimeout is cluster-node-timeout: how long a master must be
	// unreachable before its replica is promoted. Default 2 s (Redis's
	// default, 15 s, makes failover tests slow).
	NodeTimeout time.Duration
	// Args are extra redis-server arguments for every node.
	Args []string
	// ReadyTimeout bounds the wait for the cluster to report
	// cluster_state:ok after creation. Default 30 s.
	ReadyTimeout time.Duration
}

// Cluster is a Redis Cluster of redis-server processes on 127.0.0.1, made
// with redis-cli --cluster create: each master owns one contiguous, equal
// range of the 16,384 slots (the first master the lowest).
type Cluster struct {
	nodes []*Server // masters first, in slot order, then replicas
	opts  ClusterOptions
}

// StartCluster starts Masters*(1+Replicas) nodes, creates the cluster and
// returns once every node reports cluster_state:ok. On error nothing is
// left running.
func StartCluster(opts ClusterOptions) (*Cluster, error) {
	if opts.Masters == 0 {
		opts.Masters = 3
	}
	if opts.Replicas == 0 {
		opts.Replicas = 1
	} else if opts.Replicas < 0 {
		opts.Replicas = 0
	}
	if opts.NodeTimeout <= 0 {
		opts.NodeTimeout = 2 * time.Second
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", ErrNoRedisCLI)
	}
	c := &Cluster{opts: opts}
	n := opts.Masters * (1 + opts.Replicas)
	args := append([]string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.FormatInt(opts.NodeTimeout.Milliseconds(), 10),
		// A replica of a killed master is promoted even when it lagged.
		"--cluster-replica-validity-factor", "0",
	}, opts.Args...)
	for range n {
		s, err := Start(Options{AOF: opts.AOF, Args: args})
		if err != nil {
			return nil, errors.Join(err, c.Stop())
		}
		c.nodes = append(c.nodes, s)
	}
	create := []string{"--cluster", "create"}
	for _, s := range c.nodes {
		create = append(create, s.Addr())
	}
	create = append(create, "--cluster-replicas", strconv.Itoa(opts.Replicas), "--cluster-yes")
	cmd := exec.Command(cli, create...)
	cmd.Env = withoutEnv(os.Environ(), "REDISCLI_AUTH") // these nodes have no password
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, errors.Join(fmt.Errorf("redistest: redis-cli --cluster create: %w\n%s", err, out), c.Stop())
	}
	if err := c.WaitHealthy(context.Background(), opts.ReadyTimeout); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	return c, nil
}

// Addrs returns every node's host:port, masters first: the seed list for a
// cluster client.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		out[i] = s.Addr()
	}
	return out
}

// Nodes returns the nodes, masters first (in slot order, as created), then
// replicas. Roles change after a failover; ask the node (ROLE) when it
// matters.
func (c *Cluster) Nodes() []*Server { return append([]*Server(nil), c.nodes...) }

// Client returns a new cluster client for the cluster. The caller closes it.
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                    c.Addrs(),
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
}

// UniversalOptions returns options for redis.NewUniversalClient that make a
// cluster client (more than one address).
func (c *Cluster) UniversalOptions() *redis.UniversalOptions {
	return &redis.UniversalOptions{Addrs: c.Addrs(), IsClusterMode: true}
}

// MasterOf returns the node that serves slot now, by asking the nodes
// (CLUSTER SHARDS is not in every version; CLUSTER SLOTS is).
func (c *Cluster) MasterOf(ctx context.Context, slot int) (*Server, error) {
	for _, s := range c.nodes {
		rdb := s.Client()
		slots, err := rdb.ClusterSlots(ctx).Result()
		_ = rdb.Close()
		if err != nil {
			continue
		}
		for _, r := range slots {
			if int(r.Start) <= slot && slot <= int(r.End) && len(r.Nodes) > 0 {
				for _, n := range c.nodes {
					if n.Addr() == r.Nodes[0].Addr {
						return n, nil
					}
				}
			}
		}
	}
	return nil, fmt.Errorf("redistest: no live node knows the master of slot %d", slot)
}

// WaitHealthy waits until every running node reports cluster_state:ok and
// agrees that every slot is served. Polling is the only way to learn a
// cluster's state; it is bounded by timeout.
func (c *Cluster) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	backoff := firstBackoff
	var last error
	for {
		if last = c.healthy(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redistest: cluster not healthy within %s: %w", timeout, last)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxProbeBackoff)
	}
}

func (c *Cluster) healthy(ctx context.Context) error {
	running := map[string]bool{}
	for _, s := range c.nodes {
		if s.Running() {
			running[s.Addr()] = true
		}
	}
	for _, s := range c.nodes {
		if !running[s.Addr()] {
			continue
		}
		rdb := s.Client()
		info, err := rdb.ClusterInfo(ctx).Result()
		var slots []redis.ClusterSlot
		if err == nil {
			slots, err = rdb.ClusterSlots(ctx).Result()
		}
		_ = rdb.Close()
		if err != nil {
			return fmt.Errorf("node %s: %w", s.Addr(), err)
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			return fmt.Errorf("node %s: not ok yet", s.Addr())
		}
		// After a kill, the others say ok until they notice (node
		// timeout): healthy means every slot is served by a live master.
		for _, r := range slots {
			if len(r.Nodes) == 0 || !running[r.Nodes[0].Addr] {
				return fmt.Errorf("node %s: slots %d-%d still served by a stopped node", s.Addr(), r.Start, r.End)
			}
		}
	}
	return nil
}

// Stop stops every node and removes their directories.
func (c *Cluster) Stop() error {
	var errs []error
	for _, s := range c.nodes {
		errs = append(errs, s.Stop())
	}
	return errors.Join(errs...)
}

// StartClusterTB starts a cluster for one test and stops it in tb.Cleanup.
func StartClusterTB(tb interface {
	Helper()
	Fatal(...any)
	Cleanup(func())
	Error(...any)
}, opts ClusterOptions) *Cluster {
	tb.Helper()
	c, err := StartCluster(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return c
}

// withoutEnv returns env without the variable name.
func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// LazyCluster is a test package's shared cluster: started by the first test
// that calls Get (starting one takes seconds, so one per package run, each
// test keeping apart by key prefix) and stopped by TestMain with Stop.
type LazyCluster struct {
	// Options configure the cluster when it starts.
	Options ClusterOptions

	once sync.Once
	c    *Cluster
	err  error
}

// Get returns the cluster, starting it on first use; it fails tb when the
// cluster cannot start.
func (l *LazyCluster) Get(tb interface {
	Helper()
	Fatalf(string, ...any)
}) *Cluster {
	tb.Helper()
	l.once.Do(func() { l.c, l.err = StartCluster(l.Options) })
	if l.err != nil {
		tb.Fatalf("start the redis cluster: %v", l.err)
	}
	return l.c
}

// Stop stops the cluster if Get started one. Call it from TestMain after
// the tests have run.
func (l *LazyCluster) Stop() error {
	if l.c == nil {
		return nil
	}
	return l.c.Stop()
}
