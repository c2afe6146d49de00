package pgtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrStopped is returned by operations on a server after Stop.
var ErrStopped = errors.New("pgtest: server already stopped")

// errAddrInUse marks a start that failed because another process took the
// port between freePort and the postmaster's bind.
var errAddrInUse = errors.New("address already in use")

const (
	defaultDatabase     = "pgtest"
	defaultReadyTimeout = 30 * time.Second
	// initdbTimeout bounds initdb, which fsyncs nothing (--no-sync) but
	// still writes a few dozen MB.
	initdbTimeout = 2 * time.Minute
	// stopTimeout bounds the fast shutdown (SIGINT) before SIGKILL.
	stopTimeout = 10 * time.Second
	// adminTimeout bounds one administrative statement.
	adminTimeout = 30 * time.Second
	portAttempts = 5
	superuser    = "postgres"
	logFileName  = "postgres.log"
	logTailBytes = 4 << 10
	probeTimeout = time.Second
	firstBackoff = 10 * time.Millisecond
	maxBackoff   = 200 * time.Millisecond
)

// Options configures a server. The zero value is usable.
type Options struct {
	// BinDir is the directory holding postgres and initdb. Default: PATH,
	// then the highest version under /usr/lib/postgresql/*/bin.
	BinDir string
	// Database is created at start; DSN points to it. Default: "pgtest".
	Database string
	// Args are extra postgres arguments, appended after the package's own
	// (for example []string{"-c", "max_connections=300"}). Default: none.
	Args []string
	// ReadyTimeout bounds the wait for the server to accept connections.
	// Default: 30 s.
	ReadyTimeout time.Duration
}

// Server is one PostgreSQL postmaster listening on 127.0.0.1, with trust
// authentication for the superuser "postgres".
type Server struct {
	bins     binaries
	dir      string
	dataDir  string
	port     int
	database string
	user     *serverUser // nil: run as ourselves

	mu      sync.Mutex
	proc    *process // nil once stopped
	stopped bool
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid once done is closed
}

// Start runs initdb in a new temporary directory, starts postgres on a free
// loopback port, waits until it accepts connections and creates
// opts.Database. On error nothing is left running and the directory is
// removed.
func Start(opts Options) (*Server, error) {
	bins, err := findBinaries(opts.BinDir, debianBinGlob)
	if err != nil {
		return nil, err
	}
	u, err := unprivilegedUser()
	if err != nil {
		return nil, err
	}
	dir, err := makeDir(u)
	if err != nil {
		return nil, err
	}
	s := &Server{
		bins:     bins,
		dir:      dir,
		dataDir:  filepath.Join(dir, "data"),
		database: cmp.Or(opts.Database, defaultDatabase),
		user:     u,
	}
	if err := s.start(opts); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	return s, nil
}

func (s *Server) start(opts Options) error {
	if err := s.initdb(); err != nil {
		return err
	}
	readyTimeout := opts.ReadyTimeout
	if readyTimeout <= 0 {
		readyTimeout = defaultReadyTimeout
	}
	var err error
	for range portAttempts {
		if s.port, err = freePort(); err != nil {
			return err
		}
		if err = s.launch(opts.Args, readyTimeout); !errors.Is(err, errAddrInUse) {
			break
		}
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := s.admin(ctx, "CREATE DATABASE "+pgx.Identifier{s.database}.Sanitize()); err != nil {
		return errors.Join(fmt.Errorf("pgtest: create database %q: %w", s.database, err), s.proc.stop())
	}
	return nil
}

// makeDir creates the server's temporary directory, owned by u when set.
func makeDir(u *serverUser) (string, error) {
	base := os.TempDir()
	if u != nil && !u.reachable(base) {
		if !u.reachable("/tmp") {
			return "", fmt.Errorf("pgtest: user %s cannot reach %s or /tmp; set TMPDIR to a directory it can traverse", u.name, base)
		}
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "pgtest-")
	if err != nil {
		return "", fmt.Errorf("pgtest: create temp dir: %w", err)
	}
	if u != nil {
		if err := os.Chown(dir, int(u.cred.Uid), int(u.cred.Gid)); err != nil {
			return "", errors.Join(fmt.Errorf("pgtest: hand %s to user %s: %w", dir, u.name, err), os.RemoveAll(dir))
		}
	}
	return dir, nil
}

// command builds a child process for bin that logs to the server's log file.
// The caller closes the returned file after cmd.Start.
func (s *Server) command(ctx context.Context, bin string, args ...string) (*exec.Cmd, *os.File, int64, error) {
	logf, err := os.OpenFile(filepath.Join(s.dir, logFileName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("pgtest: open log: %w", err)
	}
	offset, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, nil, 0, errors.Join(fmt.Errorf("pgtest: open log: %w", err), logf.Close())
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	// English messages, so that "Address already in use" can be matched.
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	var cred *syscall.Credential
	if s.user != nil {
		cred = s.user.cred
	}
	cmd.SysProcAttr = sysProcAttr(cred)
	return cmd, logf, offset, nil
}

func (s *Server) initdb() error {
	ctx, cancel := context.WithTimeout(context.Background(), initdbTimeout)
	defer cancel()
	cmd, logf, offset, err := s.command(ctx, s.bins.initdb,
		"-D", s.dataDir, "-U", superuser, "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	if err != nil {
		return err
	}
	runErr := cmd.Run()
	closeErr := logf.Close()
	if runErr != nil {
		return fmt.Errorf("pgtest: %s: %w\n--- %s (tail) ---\n%s", s.bins.initdb, runErr, logFileName, s.logTail(offset))
	}
	if closeErr != nil {
		return fmt.Errorf("pgtest: close log: %w", closeErr)
	}
	return nil
}

// launch starts the postmaster on s.port and waits until it accepts
// connections. On failure the process is reaped.
func (s *Server) launch(extra []string, readyTimeout time.Duration) error {
	args := []string{
		"-D", s.dataDir,
		"-p", strconv.Itoa(s.port),
		"-k", s.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
	}
	// The context only has to outlive the process; Stop ends it.
	cmd, logf, offset, err := s.command(context.Background(), s.bins.postgres, append(args, extra...)...)
	if err != nil {
		return err
	}
	startErr := cmd.Start()
	closeErr := logf.Close()
	if startErr != nil {
		return fmt.Errorf("pgtest: start %s: %w", s.bins.postgres, startErr)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if closeErr != nil {
		p.kill()
		return fmt.Errorf("pgtest: close log: %w", closeErr)
	}
	if err := s.waitReady(p, readyTimeout); err != nil {
		p.kill()
		tail := s.logTail(offset)
		if strings.Contains(tail, "Address already in use") {
			return fmt.Errorf("pgtest: port %d: %w", s.port, errAddrInUse)
		}
		return fmt.Errorf("pgtest: postgres on %s: %w\n--- %s (tail) ---\n%s", s.Addr(), err, logFileName, tail)
	}
	s.proc = p
	return nil
}

// waitReady polls with a connection attempt until the server answers, the
// process exits or timeout passes. Polling is the only way to learn that an
// external process is ready; it is bounded by timeout.
func (s *Server) waitReady(p *process, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	backoff := firstBackoff
	for {
		err := s.probe()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before accepting connections: %v", p.err)
		case <-deadline.C:
			return fmt.Errorf("not accepting connections within %s: %w", timeout, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (s *Server) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DatabaseDSN("postgres"))
	if err != nil {
		return err
	}
	return errors.Join(conn.Ping(ctx), conn.Close(ctx))
}

// admin runs one statement in the "postgres" maintenance database.
func (s *Server) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.DatabaseDSN("postgres"))
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, sql)
	return errors.Join(err, conn.Close(ctx))
}

// Addr returns "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port returns the TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// Dir returns the server's temporary directory: data/ (the cluster), the
// Unix socket and postgres.log. Stop removes it.
func (s *Server) Dir() string { return s.dir }

// DSN returns the connection URL of the database created at start
// (Options.Database).
func (s *Server) DSN() string { return s.DatabaseDSN(s.database) }

// DatabaseDSN returns the connection URL of database name on this server, as
// superuser "postgres" without password and without TLS.
func (s *Server) DatabaseDSN(name string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     s.Addr(),
		Path:     "/" + name,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Stop shuts the server down (fast shutdown, SIGKILL if it has not exited
// within 10 s), reaps it and removes its directory. It is idempotent. It
// returns an error when the server exited abnormally or the directory could
// not be removed.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	var err error
	if s.proc != nil {
		err = s.proc.stop()
		s.proc = nil
	}
	if rmErr := os.RemoveAll(s.dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("pgtest: remove %s: %w", s.dir, rmErr))
	}
	return err
}

// running reports ErrStopped after Stop.
func (s *Server) running() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	return nil
}

// stop requests a fast shutdown (SIGINT: abort transactions, disconnect
// clients, checkpoint) and waits; after stopTimeout it falls back to SIGKILL.
func (p *process) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.kill()
		return fmt.Errorf("pgtest: SIGINT: %w", err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		p.kill()
		return fmt.Errorf("pgtest: postgres did not exit within %s of SIGINT; killed", stopTimeout)
	}
	if p.err != nil {
		return fmt.Errorf("pgtest: postgres exited abnormally: %w", p.err)
	}
	return nil
}

// kill sends SIGKILL and waits until the process is reaped.
func (p *process) kill() {
	// The only error is "already finished", which is the desired state.
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (s *Server) logTail(from int64) string {
	f, err := os.Open(filepath.Join(s.dir, logFileName))
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

// freePort asks the kernel for a free loopback port. Another process may
// take it before the postmaster binds it; Start retries in that case.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find free port: %w", err)
	}
	addr, ok := l.Addr().(*net.TCPAddr)
	closeErr := l.Close()
	if !ok {
		return 0, fmt.Errorf("pgtest: find free port: unexpected address %v", l.Addr())
	}
	if closeErr != nil {
		return 0, fmt.Errorf("pgtest: find free port: %w", closeErr)
	}
	return addr.Port, nil
}
