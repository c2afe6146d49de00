package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// shared is the package-wide server started by TestMain through RunMain.
var shared *Server

// helperEnv marks a run of the test binary as the helper process of
// TestServerDiesWithTestBinary.
const helperEnv = "REDISTEST_PDEATHSIG_HELPER"

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
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t *testing.T, s *Server) *redis.Client {
	t.Helper()
	rdb := s.Client()
	t.Cleanup(func() {
		if err := rdb.Close(); err != nil {
			t.Error(err)
		}
	})
	return rdb
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
	// Format: pid (comm) state ...; comm may contain spaces.
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
	return strings.HasPrefix(strings.TrimSpace(rest), "Z")
}

func TestSharedServerParallelPrefixes(t *testing.T) {
	for i := range 4 {
		t.Run(fmt.Sprint("worker", i), func(t *testing.T) {
			t.Parallel()
			ctx := ctxTimeout(t)
			rdb := newClient(t, shared)
			prefix := UniquePrefix(t)
			key := prefix + "counter"
			for range 10 {
				if err := rdb.Incr(ctx, key).Err(); err != nil {
					t.Fatal(err)
				}
			}
			got, err := rdb.Get(ctx, key).Int()
			if err != nil {
				t.Fatal(err)
			}
			if got != 10 {
				t.Fatalf("counter under %q = %d, want 10 (prefix collided with another test?)", prefix, got)
			}
		})
	}
}

func TestStartStop(t *testing.T) {
	t.Parallel()
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Stop is idempotent; this only matters when the test fails early.
	t.Cleanup(func() { _ = s.Stop() })
	ctx := ctxTimeout(t)
	rdb := newClient(t, s)
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	if want := fmt.Sprintf("127.0.0.1:%d", s.Port()); s.Addr() != want {
		t.Errorf("Addr() = %q, want %q", s.Addr(), want)
	}
	if _, err := os.Stat(s.Dir()); err != nil {
		t.Fatalf("Dir(): %v", err)
	}
	s.mu.Lock()
	pid := s.proc.cmd.Process.Pid
	s.mu.Unlock()

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !processGone(pid) {
		t.Errorf("redis-server pid %d still alive after Stop", pid)
	}
	if _, err := os.Stat(s.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dir() after Stop: err = %v, want not exist", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v, want nil", err)
	}
	if err := s.Restart(); !errors.Is(err, ErrStopped) {
		t.Errorf("Restart after Stop: err = %v, want ErrStopped", err)
	}
}

func TestKillRestart(t *testing.T) {
	tests := []struct {
		name     string
		aof      bool
		wantKept bool
	}{
		{name: "aof keeps acknowledged write", aof: true, wantKept: true},
		{name: "no persistence loses it", aof: false, wantKept: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := StartTB(t, Options{AOF: tt.aof})
			ctx := ctxTimeout(t)
			rdb := newClient(t, s)
			if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			port := s.Port()

			s.Kill()
			if err := ping(s.Addr()); err == nil {
				t.Fatal("server still answers PING after Kill")
			}
			s.Kill() // no-op on a dead server

			if err := s.Restart(); err != nil {
				t.Fatalf("Restart: %v", err)
			}
			if s.Port() != port {
				t.Fatalf("port changed across Restart: %d -> %d", port, s.Port())
			}
			got, err := rdb.Get(ctx, "k").Result()
			switch {
			case tt.wantKept && err != nil:
				t.Fatalf("GET after restart: %v, want %q", err, "v")
			case tt.wantKept && got != "v":
				t.Fatalf("GET after restart = %q, want %q", got, "v")
			case !tt.wantKept && !errors.Is(err, redis.Nil):
				t.Fatalf("GET after restart = %q, %v; want redis.Nil", got, err)
			}
		})
	}
}

func TestGracefulRestartKeepsAOF(t *testing.T) {
	t.Parallel()
	s := StartTB(t, Options{AOF: true})
	ctx := ctxTimeout(t)
	rdb := newClient(t, s)
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET after restart = %q, %v; want %q", got, err, "v")
	}
}

func TestTwoServersAreIndependent(t *testing.T) {
	t.Parallel()
	a := StartTB(t, Options{})
	b := StartTB(t, Options{})
	if a.Port() == b.Port() {
		t.Fatalf("both servers on port %d", a.Port())
	}
	if a.Dir() == b.Dir() {
		t.Fatalf("both servers in %s", a.Dir())
	}
	ctx := ctxTimeout(t)
	ra, rb := newClient(t, a), newClient(t, b)
	if err := ra.Set(ctx, "only-in-a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rb.Get(ctx, "only-in-a").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET on b of a key written to a: err = %v, want redis.Nil", err)
	}
}

func TestExtraArgs(t *testing.T) {
	t.Parallel()
	s := StartTB(t, Options{Args: []string{"--databases", "3"}})
	ctx := ctxTimeout(t)
	got, err := newClient(t, s).ConfigGet(ctx, "databases").Result()
	if err != nil {
		t.Fatal(err)
	}
	if got["databases"] != "3" {
		t.Fatalf("CONFIG GET databases = %v, want 3", got)
	}
}

func TestPasswordProtectedServerIsReady(t *testing.T) {
	t.Parallel()
	s := StartTB(t, Options{Args: []string{"--requirepass", "test-only"}})
	ctx := ctxTimeout(t)
	rdb := newClient(t, s)
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("PING without AUTH succeeded on a password-protected server")
	}
	authed := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: "test-only"})
	t.Cleanup(func() { _ = authed.Close() })
	if err := authed.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING with AUTH: %v", err)
	}
}

func TestStartFailureReportsLog(t *testing.T) {
	t.Parallel()
	_, err := Start(Options{Args: []string{"--no-such-directive", "x"}})
	if err == nil {
		t.Fatal("Start with a bad directive succeeded")
	}
	for _, want := range []string{"redis.log", "no-such-directive"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Start(Options{})
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Start without redis-server: err = %v, want ErrNotInstalled", err)
	}
	if !strings.Contains(err.Error(), "make deps") {
		t.Errorf("error %q does not tell how to install", err)
	}
}

func TestLaunchDetectsTakenPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	s.Kill()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("listener address %v", l.Addr())
	}
	s.port = addr.Port // the held port
	if err := s.Restart(); !errors.Is(err, errAddrInUse) {
		t.Fatalf("Restart on a taken port: err = %v, want errAddrInUse", err)
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
		if err := ping(srv.Addr()); err != nil {
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

func TestUniquePrefix(t *testing.T) {
	t.Parallel()
	a, b := UniquePrefix(t), UniquePrefix(t)
	if a == b {
		t.Fatalf("two prefixes are equal: %q", a)
	}
	if !strings.HasPrefix(a, "t:TestUniquePrefix:") || !strings.HasSuffix(a, ":") {
		t.Fatalf("prefix %q does not look like t:<name>:<random>:", a)
	}
	t.Run("odd {name}: é", func(t *testing.T) {
		p := UniquePrefix(t)
		name := strings.Split(p, ":")[1]
		// t.Name() is "TestUniquePrefix/odd_{name}:_é".
		if want := "TestUniquePrefix/odd__name____"; name != want {
			t.Fatalf("sanitized name = %q in %q, want %q", name, p, want)
		}
	})
	long := sanitizeName(strings.Repeat("x", 200))
	if len(long) != maxPrefixNameLen {
		t.Errorf("long name kept %d bytes, want %d", len(long), maxPrefixNameLen)
	}
}
