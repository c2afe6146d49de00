package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// ErrNotInstalled is returned (wrapped) by Start when redis-server cannot be
// found in PATH.
var ErrNotInstalled = errors.New("redis-server not found in PATH; run `make deps` (installs it with apt-get when root)")

// ErrStopped is returned by Restart after Stop.
var ErrStopped = errors.New("redistest: server already stopped")

// errAddrInUse marks a start that failed because another process took the
// port between freePort and the server's bind.
var errAddrInUse = errors.New("address already in use")

const (
	defaultReadyTimeout = 10 * time.Second
	// stopTimeout bounds the graceful SIGTERM shutdown before SIGKILL.
	stopTimeout = 10 * time.Second
	// portAttempts is how often Start picks a new port when the chosen one
	// was taken before redis-server could bind it.
	portAttempts = 5
	logFileName  = "redis.log"
	logTailBytes = 4 << 10
	// pingTimeout bounds one readiness probe.
	pingTimeout     = time.Second
	firstBackoff    = 5 * time.Millisecond
	maxProbeBackoff = 100 * time.Millisecond
)

// Options configures a server. The zero value is a plain in-memory server
// without persistence.
type Options struct {
	// AOF turns on the append-only file with appendfsync always, so every
	// acknowledged write survives Kill followed by Restart. Default: off, and
	// RDB snapshots are off too, so nothing is persisted.
	AOF bool
	// Args are extra redis-server arguments, appended after the ones this
	// package sets (for example []string{"--maxmemory", "10mb"}); for a
	// directive given twice the later one wins. Default: none.
	Args []string
	// ReadyTimeout bounds the wait for PING to be answered after a start or
	// restart. Default: 10 s.
	ReadyTimeout time.Duration
}

// Server is one redis-server process bound to 127.0.0.1.
type Server struct {
	bin          string
	dir          string
	port         int
	aof          bool
	extraArgs    []string
	readyTimeout time.Duration

	mu      sync.Mutex
	proc    *process // nil while not running
	stopped bool     // Stop was called; dir is gone
}

// process is one run of redis-server; err is valid once done is closed.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start launches redis-server on a free loopback port in a new temporary
// directory and returns once it answers PING. On error nothing is left
// running and the directory is removed.
func Start(opts Options) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", ErrNotInstalled)
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("redistest: create temp dir: %w", err)
	}
	s := &Server{
		bin:          bin,
		dir:          dir,
		aof:          opts.AOF,
		extraArgs:    append([]string(nil), opts.Args...),
		readyTimeout: opts.ReadyTimeout,
	}
	if s.readyTimeout <= 0 {
		s.readyTimeout = defaultReadyTimeout
	}
	for range portAttempts {
		if s.port, err = freePort(); err != nil {
			break
		}
		if err = s.launch(); !errors.Is(err, errAddrInUse) {
			break
		}
	}
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	return s, nil
}

// Addr returns "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port returns the TCP port the server listens on; Restart keeps it.
func (s *Server) Port() int { return s.port }

// Dir returns the server's working directory (AOF files and redis.log).
// Stop removes it.
func (s *Server) Dir() string { return s.dir }

// Client returns a new go-redis client for the server. The caller closes it.
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: s.Addr(),
		// Maintenance notifications are a Redis Cloud feature; the probe
		// only adds noise against a local server.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
}

// Stop ends the server with SIGTERM (SIGKILL if it has not exited within
// 10 s), reaps it and removes its directory. It is idempotent. It returns an
// error when the server exited abnormally or the directory could not be
// removed.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	var err error
	if s.proc != nil {
		err = s.proc.terminate()
		s.proc = nil
	}
	if rmErr := os.RemoveAll(s.dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("redistest: remove %s: %w", s.dir, rmErr))
	}
	return err
}

// Running reports whether the server process is running (not killed nor
// stopped).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// Kill simulates a crash: SIGKILL, then wait until the process is reaped.
// The directory is kept, so Restart can reload the AOF. Kill on a server that
// is not running does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
}

// Restart stops a running server gracefully (call Kill first to simulate a
// crash), starts it again on the same port and directory, so AOF data is
// reloaded, and returns once it answers PING.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if s.proc != nil {
		err := s.proc.terminate()
		s.proc = nil
		if err != nil {
			return err
		}
	}
	return s.launch()
}

// args is the redis-server command line.
func (s *Server) args() []string {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "", // stdout, which is redis.log
		"--save", "",
	}
	if s.aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	return append(args, s.extraArgs...)
}

// launch starts the process and waits for readiness. The caller holds s.mu
// (or owns s exclusively, as in Start). On failure the process is reaped.
func (s *Server) launch() error {
	logPath := filepath.Join(s.dir, logFileName)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("redistest: open log: %w", err)
	}
	logStart, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		return errors.Join(fmt.Errorf("redistest: open log: %w", err), logf.Close())
	}
	cmd := exec.Command(s.bin, s.args()...)
	cmd.Dir = s.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	startErr := cmd.Start()
	// The child holds its own descriptor; ours is no longer needed.
	closeErr := logf.Close()
	if startErr != nil {
		return fmt.Errorf("redistest: start %s: %w", s.bin, startErr)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if closeErr != nil {
		p.kill()
		return fmt.Errorf("redistest: close log: %w", closeErr)
	}
	if err := waitReady(s.Addr(), p, s.readyTimeout); err != nil {
		p.kill()
		tail := readTail(logPath, logStart)
		if strings.Contains(tail, "Address already in use") {
			return fmt.Errorf("redistest: port %d: %w", s.port, errAddrInUse)
		}
		return fmt.Errorf("redistest: redis-server on %s: %w\n--- redis.log (tail) ---\n%s", s.Addr(), err, tail)
	}
	s.proc = p
	return nil
}

// terminate asks the process to exit with SIGTERM and waits; after
// stopTimeout it falls back to SIGKILL. It reports an abnormal exit.
func (p *process) terminate() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.kill()
		return fmt.Errorf("redistest: SIGTERM: %w", err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		p.kill()
		return fmt.Errorf("redistest: redis-server did not exit within %s of SIGTERM; killed", stopTimeout)
	}
	if p.err != nil {
		return fmt.Errorf("redistest: redis-server exited abnormally: %w", p.err)
	}
	return nil
}

// kill sends SIGKILL and waits until the process is reaped.
func (p *process) kill() {
	// The only error is "already finished", which is the desired state.
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitReady polls addr with PING until it answers PONG, the process exits,
// or timeout passes. Polling is the only way to learn that an external
// process is ready; it is bounded by timeout.
func waitReady(addr string, p *process, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	backoff := firstBackoff
	for {
		err := ping(addr)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before answering PING: %v", p.err)
		case <-deadline.C:
			return fmt.Errorf("no PONG within %s: %w", timeout, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxProbeBackoff)
	}
}

// ping sends one RESP PING on a fresh connection and expects +PONG (or
// -NOAUTH from a password-protected server).
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, pingTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(pingTimeout)); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, "*1\r\n$4\r\nPING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	// A server started with --requirepass refuses PING before AUTH, which
	// still proves it is up and done loading.
	switch reply := strings.TrimRight(line, "\r\n"); {
	case reply == "+PONG", strings.HasPrefix(reply, "-NOAUTH"):
		return nil
	default:
		return fmt.Errorf("PING answered %q", reply)
	}
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the server binds it; Start retries in that case.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: find free port: %w", err)
	}
	addr, ok := l.Addr().(*net.TCPAddr)
	closeErr := l.Close()
	if !ok {
		return 0, fmt.Errorf("redistest: find free port: unexpected address %v", l.Addr())
	}
	if closeErr != nil {
		return 0, fmt.Errorf("redistest: find free port: %w", closeErr)
	}
	return addr.Port, nil
}

// readTail returns at most logTailBytes of the log written after offset from.
func readTail(path string, from int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(log unavailable: %v)", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(log unavailable: %v)", err)
	}
	from = max(from, info.Size()-logTailBytes)
	b, err := io.ReadAll(io.NewSectionReader(f, from, info.Size()-from))
	if err != nil {
		return fmt.Sprintf("(log unavailable: %v)", err)
	}
	if len(b) == 0 {
		return "(empty)"
	}
	return string(b)
}
