package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
)

// RestartWorker starts worker i again after its process has exited
// (KillWorker, StopWorker or a crash): a new process with the same
// environment, on a new port, appending to the same log. It returns once
// the new worker answers GET /readyz, and fails if the old one still runs.
// Restarts of the same node must not run concurrently with each other.
func (c *Cluster) RestartWorker(ctx context.Context, i int) error {
	return c.restartNode(ctx, &c.workers, "worker", WorkerBinary, i, false, c.workerEnv)
}

// RestartScheduler starts scheduler i again after its process has exited,
// on the same address (scheduler 0's is the public URL), like
// RestartWorker.
func (c *Cluster) RestartScheduler(ctx context.Context, i int) error {
	return c.restartNode(ctx, &c.schedulers, "scheduler", SchedulerBinary, i, true, c.schedulerEnv)
}

func (c *Cluster) restartNode(ctx context.Context, nodes *[]node, kind, binName string, i int, sameAddr bool, envFor func(string) []string) error {
	c.mu.Lock()
	if !c.started || c.stopping {
		c.mu.Unlock()
		return errors.New("demo: restart needs a started, running Cluster")
	}
	if i < 0 || i >= len(*nodes) {
		c.mu.Unlock()
		return fmt.Errorf("demo: no %s %d", kind, i)
	}
	old := (*nodes)[i]
	c.mu.Unlock()
	if !old.proc.Exited() {
		return fmt.Errorf("demo: %s %d still runs (pid %d); kill or stop it first", kind, i, old.proc.Pid())
	}
	addr := ""
	if sameAddr {
		addr = old.addr
	}
	n, err := c.startNode(ctx, old.proc.Name(), binName, addr, envFor)
	if n.proc != nil {
		c.mu.Lock()
		(*nodes)[i] = n
		c.mu.Unlock()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.opts.Out, "demo: %s restarted on %s (pid %d)\n", n.proc.Name(), n.addr, n.proc.Pid())
	return nil
}

// RestartRedis SIGKILLs redis-server, a crash (its append-only file is
// fsynced on every write, so no acknowledged write is lost), and starts it
// again on the same port with the same data, returning once it answers
// PING. The other processes' clients reconnect by themselves.
func (c *Cluster) RestartRedis(ctx context.Context) error {
	c.mu.Lock()
	if !c.started || c.stopping || c.redis == nil {
		cluster := len(c.redisNodes) > 0
		c.mu.Unlock()
		if cluster {
			return errors.New("demo: RestartRedis crashes a single node; with a Redis Cluster use KillRedisMaster")
		}
		return errors.New("demo: restart needs a started, running Cluster")
	}
	old, addr := c.redis, c.redisAddr
	c.mu.Unlock()
	old.Kill()
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("demo: redis address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("demo: redis address %q: %w", addr, err)
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return fmt.Errorf("demo: %w", ErrRedisNotInstalled)
	}
	p, err := startRedisOn(ctx, bin, c.path(RedisDir), c.logPath("redis"), port, c.opts.StartTimeout)
	if err != nil {
		return err
	}
	if err := c.track(p); err != nil {
		return err
	}
	c.mu.Lock()
	c.redis = p
	c.mu.Unlock()
	fmt.Fprintf(c.opts.Out, "demo: redis-server restarted on %s (pid %d)\n", addr, p.Pid())
	return nil
}
