package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

// shared is the package-wide server started by TestMain through RunMain.
var shared *Server

// helperEnv marks a run of the test binary as the helper process of
// TestServerDiesWithTestBinary.
const helperEnv = "PGTEST_PDEATHSIG_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		// The helper is killed; a shared server would leave its dir behind.
		os.Exit(m.Run())
	}
	code := RunMain(m, Options{}, func(s *Server) { shared = s })
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func ctxTimeout(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx := ctxTimeout(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := conn.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return conn
}

func databaseExists(t *testing.T, s *Server, name string) bool {
	t.Helper()
	conn := connect(t, s.DatabaseDSN("postgres"))
	var exists bool
	err := conn.QueryRow(ctxTimeout(t), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		t.Fatal(err)
	}
	return exists
}

// processGone reports whether pid no longer names a live process. A zombie
// (killed but not yet reaped by its new parent) counts as gone.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
	return strings.HasPrefix(strings.TrimSpace(rest), "Z")
}

func TestDSNConnectsToDefaultDatabase(t *testing.T) {
	t.Parallel()
	conn := connect(t, shared.DSN())
	var db, version string
	if err := conn.QueryRow(ctxTimeout(t), "SELECT current_database(), current_setting('server_version')").Scan(&db, &version); err != nil {
		t.Fatal(err)
	}
	if db != defaultDatabase {
		t.Errorf("current_database() = %q, want %q", db, defaultDatabase)
	}
	t.Logf("PostgreSQL %s on %s", version, shared.Addr())
	if !strings.HasPrefix(shared.DSN(), "postgres://postgres@127.0.0.1:") || !strings.HasSuffix(shared.DSN(), "/pgtest?sslmode=disable") {
		t.Errorf("DSN() = %q", shared.DSN())
	}
}

func TestNewDatabaseIsolatesTests(t *testing.T) {
	t.Parallel()
	var names []string
	for _, sub := range []string{"a", "b"} {
		t.Run(sub, func(t *testing.T) {
			dsn := shared.NewDatabase(t)
			conn := connect(t, dsn)
			ctx := ctxTimeout(t)
			var name string
			if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
				t.Fatal(err)
			}
			names = append(names, name)
			// Each database starts empty, so this fails if b sees a's table.
			if _, err := conn.Exec(ctx, "CREATE TABLE marker (id int)"); err != nil {
				t.Fatalf("CREATE TABLE in a fresh database: %v", err)
			}
			if !databaseExists(t, shared, name) {
				t.Fatalf("database %s not listed in pg_database", name)
			}
		})
	}
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("databases = %v, want two distinct", names)
	}
	for _, name := range names {
		if databaseExists(t, shared, name) {
			t.Errorf("database %s still exists after its test's cleanup", name)
		}
	}
}

func TestNewDatabaseParallel(t *testing.T) {
	t.Parallel()
	for i := range 6 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			conn := connect(t, shared.NewDatabase(t))
			if err := conn.Ping(ctxTimeout(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRunsAsUnprivilegedUser(t *testing.T) {
	t.Parallel()
	info, err := os.Stat(filepath.Join(shared.Dir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		t.Fatalf("no stat_t for %s", info.Name())
	}
	owner := st.Uid
	if os.Geteuid() == 0 && owner == 0 {
		t.Fatalf("data directory owned by root; PostgreSQL must run unprivileged")
	}
	if os.Geteuid() != 0 && owner != uint32(os.Geteuid()) {
		t.Fatalf("data directory owned by uid %d, want our uid %d", owner, os.Geteuid())
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("data directory mode %v, PostgreSQL wants no group/other access", perm)
	}
}

func TestStartStop(t *testing.T) {
	t.Parallel()
	s, err := Start(Options{Database: "custom"})
	if err != nil {
		t.Fatal(err)
	}
	// Stop is idempotent; this only matters when the test fails early.
	t.Cleanup(func() { _ = s.Stop() })
	conn := connect(t, s.DSN())
	var db string
	if err := conn.QueryRow(ctxTimeout(t), "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	if db != "custom" {
		t.Errorf("current_database() = %q, want custom", db)
	}
	s.mu.Lock()
	pid := s.proc.cmd.Process.Pid
	s.mu.Unlock()

	// A relaunch on a port someone else holds is recognised as such, so
	// Start can retry with another port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("listener address %v", l.Addr())
	}
	s.mu.Lock()
	if err := s.proc.stop(); err != nil {
		s.mu.Unlock()
		t.Fatalf("stop before relaunch (client still connected): %v", err)
	}
	s.proc = nil
	s.port = addr.Port
	err = s.launch(nil, 10*time.Second)
	s.mu.Unlock()
	if !errors.Is(err, errAddrInUse) {
		t.Fatalf("launch on a taken port: err = %v, want errAddrInUse", err)
	}
	if !processGone(pid) {
		t.Errorf("postmaster pid %d alive after stop", pid)
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop of a server that is not running: %v", err)
	}
	if _, err := os.Stat(s.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dir() after Stop: err = %v, want not exist", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v, want nil", err)
	}
	if err := s.running(); !errors.Is(err, ErrStopped) {
		t.Errorf("running() after Stop = %v, want ErrStopped", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := conn.Ping(ctx); err == nil {
		t.Error("old connection still works after the server stopped")
	}
}

func TestStartTB(t *testing.T) {
	t.Parallel()
	var dir string
	t.Run("inner", func(t *testing.T) {
		s := StartTB(t, Options{})
		dir = s.Dir()
		connect(t, s.NewDatabase(t)) // dropped before the server stops
	})
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("server dir %s left after the test: %v", dir, err)
	}
}

func TestStartFailureReportsLog(t *testing.T) {
	t.Parallel()
	_, err := Start(Options{Args: []string{"-c", "no_such_setting=1"}})
	if err == nil {
		t.Fatal("Start with an unknown setting succeeded")
	}
	for _, want := range []string{logFileName, "no_such_setting"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestMissingBinaries(t *testing.T) {
	t.Parallel()
	_, err := Start(Options{BinDir: t.TempDir()})
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Start with an empty BinDir: err = %v, want ErrNotInstalled", err)
	}
	for _, want := range []string{"make deps", "postgresql-15"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestFindBinaries(t *testing.T) {
	root := t.TempDir()
	mk := func(version string, progs ...string) string {
		dir := filepath.Join(root, version, "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range progs {
			if err := os.WriteFile(filepath.Join(dir, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	mk("9.6", "postgres", "initdb")
	want := mk("15", "postgres", "initdb")
	mk("16", "postgres") // incomplete: no initdb
	mk("main", "postgres", "initdb")
	glob := filepath.Join(root, "*", "bin")

	t.Setenv("PATH", t.TempDir()) // nothing in PATH
	got, err := findBinaries("", glob)
	if err != nil {
		t.Fatal(err)
	}
	if got.postgres != filepath.Join(want, "postgres") || got.initdb != filepath.Join(want, "initdb") {
		t.Errorf("findBinaries = %+v, want the ones in %s", got, want)
	}

	inPath := mk("path", "postgres", "initdb")
	t.Setenv("PATH", inPath)
	if got, err := findBinaries("", glob); err != nil || got.postgres != filepath.Join(inPath, "postgres") {
		t.Errorf("findBinaries with PATH = %+v, %v; want PATH to win", got, err)
	}

	if got, err := findBinaries(want, filepath.Join(root, "none", "*")); err != nil || got.initdb != filepath.Join(want, "initdb") {
		t.Errorf("findBinaries with BinDir = %+v, %v", got, err)
	}

	t.Setenv("PATH", t.TempDir())
	if _, err := findBinaries("", filepath.Join(root, "none", "*")); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("findBinaries with nothing installed: err = %v, want ErrNotInstalled", err)
	}
}

func TestSortByVersionDesc(t *testing.T) {
	t.Parallel()
	in := []string{"/p/9.6/bin", "/p/main/bin", "/p/15/bin", "/p/16/bin", "/p/10/bin"}
	want := []string{"/p/16/bin", "/p/15/bin", "/p/10/bin", "/p/9.6/bin", "/p/main/bin"}
	if got := sortByVersionDesc(in); !slices.Equal(got, want) {
		t.Errorf("sortByVersionDesc = %v, want %v", got, want)
	}
}

func TestDatabaseName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		test string
		want string // prefix before the random suffix
	}{
		{test: "TestSink", want: "t_testsink_"},
		{test: "TestSink/upsert page (v2)", want: "t_testsink_upsert_page__v2__"},
		{test: strings.Repeat("X", 100), want: "t_" + strings.Repeat("x", 44)},
	}
	for _, tt := range tests {
		a, b := databaseName(tt.test), databaseName(tt.test)
		if a == b {
			t.Errorf("databaseName(%q) repeated %q", tt.test, a)
		}
		if !strings.HasPrefix(a, tt.want) {
			t.Errorf("databaseName(%q) = %q, want prefix %q", tt.test, a, tt.want)
		}
		if len(a) > maxIdentifierLen {
			t.Errorf("databaseName(%q) = %q is %d bytes, limit %d", tt.test, a, len(a), maxIdentifierLen)
		}
	}
}

type fakeM struct {
	run func() int
}

func (m fakeM) Run() int { return m.run() }

func TestRunMain(t *testing.T) {
	t.Parallel()
	var srv *Server
	code := RunMain(fakeM{run: func() int {
		if srv == nil {
			t.Error("bind not called before Run")
			return 0
		}
		if err := srv.probe(); err != nil {
			t.Errorf("server not answering during Run: %v", err)
		}
		return 3
	}}, Options{}, func(s *Server) { srv = s })
	if code != 3 {
		t.Errorf("RunMain = %d, want the code of Run (3)", code)
	}
	if srv == nil {
		t.Fatal("bind never called")
	}
	if _, err := os.Stat(srv.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("server dir still present after RunMain: %v", err)
	}
}
