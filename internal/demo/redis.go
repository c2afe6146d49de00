package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// ErrRedisNotInstalled is returned (wrapped) by Start when redis-server is
// not in PATH.
var ErrRedisNotInstalled = errors.New("redis-server not found in PATH; run `make deps` or scripts/ensure-deps.sh redis")

// portAttempts is how often a start is retried on a new port when the one
// picked was taken before the child could bind it.
const portAttempts = 3

// startRedis runs redis-server on a free loopback port with its data in
// dataDir (append-only file, fsync on every write: an acknowledged token
// write survives a crash) and returns once it answers PING.
//
// It does not use internal/redistest: that package starts servers in the
// test binary's process group, where a Ctrl-C in the terminal would stop
// Redis before the workers had handed their tasks back.
func startRedis(ctx context.Context, dataDir, logPath string, timeout time.Duration) (*Process, string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", fmt.Errorf("demo: %w", ErrRedisNotInstalled)
	}
	var lastErr error
	for range portAttempts {
		port, err := freePort()
		if err != nil {
			return nil, "", err
		}
		var p *Process
		if p, lastErr = startRedisOn(ctx, bin, dataDir, logPath, port, timeout); lastErr == nil {
			return p, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", lastErr
}

// startRedisOn runs redis-server bin on 127.0.0.1:port with its data in
// dataDir and returns once it answers PING; on failure the process is
// gone.
func startRedisOn(ctx context.Context, bin, dataDir, logPath string, port int, timeout time.Duration) (*Process, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dataDir,
		"--daemonize", "no", "--logfile", "", "--save", "",
		"--appendonly", "yes", "--appendfsync", "always",
	}
	p, err := startProcess("redis", bin, args, nil, dataDir, logPath, nil)
	if err != nil {
		return nil, err
	}
	if err := waitRedis(ctx, p, addr, timeout); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// newRedisClient returns a client for addr.
func newRedisClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: addr,
		// A Redis Cloud feature; against a local server it only adds noise.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
}

// waitRedis waits until the server at addr answers PING, p exits, or the
// timeout passes.
func waitRedis(ctx context.Context, p *Process, addr string, timeout time.Duration) error {
	rdb := newRedisClient(addr)
	defer rdb.Close()
	return poll(ctx, p, timeout, "redis-server to answer PING", func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return rdb.Ping(pctx).Err()
	})
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("demo: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// poll calls probe until it succeeds, p exits, ctx ends or timeout passes,
// backing off from 10ms to 200ms between attempts.
func poll(ctx context.Context, p *Process, timeout time.Duration, what string, probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wait := 10 * time.Millisecond
	for {
		err := probe(ctx)
		if err == nil {
			return nil
		}
		timer := time.NewTimer(wait)
		select {
		case <-p.Done():
			timer.Stop()
			return fmt.Errorf("demo: %s exited while waiting for %s: %w (log %s)\n%s",
				p.name, what, p.err, p.logPath, indent(logTail(p.logPath, logTailLines)))
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("demo: waiting for %s: %w (last: %v; log %s)\n%s",
				what, context.Cause(ctx), err, p.logPath, indent(logTail(p.logPath, logTailLines)))
		case <-timer.C:
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}
