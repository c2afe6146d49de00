//go:build unix

package demo

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/notionsync/notionsync/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseSandboxReady(t *testing.T) {
	t.Parallel()
	for line, want := range map[string]string{
		"notion-sandbox listening on http://127.0.0.1:41234 (client_id=fake-client-id, workspace=sandbox-ws)": "127.0.0.1:41234",
		"notion-sandbox listening on http://[::1]:80 (x)":                                                     "[::1]:80",
		"notion-sandbox listening on http://":                                                                 "",
		"notion-sandbox: admin API http://127.0.0.1:1/_sandbox/ (stats)":                                      "",
		"": "",
	} {
		got, ok := ParseSandboxReady(line)
		if got != want || ok != (want != "") {
			t.Errorf("ParseSandboxReady(%q) = %q, %v; want %q", line, got, ok, want)
		}
	}
}

func TestInstancePID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]int{
		"vm-1234-deadbeef":             1234,
		"my-host-name-42-0a1b2c3d":     42,
		"host-0-aa":                    0,
		"host-x-aa":                    0,
		"1234-aa":                      0,
		"":                             0,
		"scheduler-7-00000000":         7,
		"ip-10-0-0-1.internal-99-abcd": 99,
	} {
		got, ok := InstancePID(id)
		if got != want && ok || ok != (want > 0) {
			t.Errorf("InstancePID(%q) = %d, %v; want %d", id, got, ok, want)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Dir != DefaultDir || o.Workers != 3 || o.Schedulers != 1 || o.BinDir != "bin" ||
		o.AccessTokenLifetime != 90*time.Second || o.RefreshMargin != 30*time.Second || o.RefreshJitter != 10*time.Second ||
		o.SyncInterval != 15*time.Second || o.SchedulerTick != time.Second || o.LeaderLease != 3*time.Second || o.Out == nil ||
		o.ProgressHeartbeat != 30*time.Second {
		t.Fatalf("defaults: %+v", o)
	}
	// The demo's workers run the slots the docs describe: the workers' own
	// documented default.
	for _, v := range config.WorkerReference() {
		if v.Name == "NOTIONSYNC_WORKER_CONCURRENCY" && v.Default != strconv.Itoa(o.WorkerConcurrency) {
			t.Errorf("demo workers run %d slots; NOTIONSYNC_WORKER_CONCURRENCY defaults to %s", o.WorkerConcurrency, v.Default)
		}
	}
	o, err = Options{AccessTokenLifetime: 20 * time.Second}.withDefaults()
	if err != nil || o.RefreshMargin != 6700*time.Millisecond || o.RefreshJitter != 2200*time.Millisecond {
		t.Fatalf("scaled margin and jitter: %v %v (%v)", o.RefreshMargin, o.RefreshJitter, err)
	}
	for name, bad := range map[string]Options{
		"negative workers":   {Workers: -1},
		"too many workers":   {Workers: maxProcesses + 1},
		"margin >= lifetime": {AccessTokenLifetime: 10 * time.Second, RefreshMargin: 10 * time.Second},
		"lease <= 2 ticks":   {SchedulerTick: 2 * time.Second, LeaderLease: 4 * time.Second},
		"negative duration":  {StopTimeout: -time.Second},
		"env without =":      {Env: []string{"NOTIONSYNC_X"}},
		"interval < tick":    {SyncInterval: 500 * time.Millisecond},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestProgressString(t *testing.T) {
	t.Parallel()
	p := Progress{PagesSynced: 87, PagesExpected: 120, RefreshGrants: 3, Status: "active"}
	if got, want := p.String(), "pages synced 87/120 · token refreshes 3 · invalid_grant 0 · status active"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := (Progress{}).String(); !strings.HasSuffix(got, "status not connected") {
		t.Fatalf("before Connect: %q", got)
	}
}

func TestReadSyncedPages(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "conn-1", "pages")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		// Two top-level blocks, the first with two children, one of which
		// has a child: 5 blocks.
		"a.json": `{"_notionsync":{"id":"AAAA","deleted":false},"object":"page","id":"aaaa",
			"blocks":[{"type":"paragraph","children":[{"children":[{}]},{"children":[]}]},{"type":"divider"}]}`,
		"b.json":        `{"_notionsync":{"id":"bbbb","deleted":true},"id":"bbbb","blocks":[]}`,
		".c.json.tmp-1": `{`, // a sink temporary file: ignored
		"notes.md":      `# not a document`,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadSyncedPages(root, "conn-1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]SyncedPage{"aaaa": {ID: "aaaa", Blocks: 5}, "bbbb": {ID: "bbbb", Deleted: true}}
	if len(got) != len(want) || got["aaaa"] != want["aaaa"] || got["bbbb"] != want["bbbb"] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if none, err := ReadSyncedPages(root, "no-such-connection"); err != nil || len(none) != 0 {
		t.Fatalf("missing folder: %v, %v", none, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.json"), []byte(`{"blocks":`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSyncedPages(root, "conn-1"); err == nil {
		t.Fatal("a corrupt document was not reported")
	}
}

func TestPrepareDirRefusesForeignDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.prepareDir(); err == nil || !strings.Contains(err.Error(), "not created by the demo") {
		t.Fatalf("a foreign non-empty directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "precious.txt")); err != nil {
		t.Fatalf("the directory was touched: %v", err)
	}

	// A demo directory is reused: its sub-directories are emptied.
	demoDir := t.TempDir()
	old := filepath.Join(demoDir, SyncedDir, "old.json")
	for _, f := range []string{filepath.Join(demoDir, markerFile), old} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err = New(Options{Dir: demoDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.prepareDir(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an old synced file survived: %v", err)
	}
}

// A second demo in the directory of a running one must not empty its logs,
// synced files and Redis AOF: it is refused, naming the running demo.
//
// Not parallel: a child that another test forks inherits the locked file
// until it execs (Go opens files close-on-exec, but a fork in that window
// still shares the lock for a moment), which could make the final re-lock
// fail for a reason that has nothing to do with the demo. A real second
// demo is another process, started while the first one is not forking.
func TestSecondDemoInSameDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	first, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.prepareDir(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Stop() })
	live := filepath.Join(dir, RedisDir, "appendonly.aof")
	if err := os.WriteFile(live, []byte("live"), 0o644); err != nil {
		t.Fatal(err)
	}

	second, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	err = second.prepareDir()
	if err == nil || !strings.Contains(err.Error(), "another demo (pid "+strconv.Itoa(os.Getpid())+") is running in "+dir) ||
		!strings.Contains(err.Error(), "-dir") {
		t.Fatalf("a second demo in the same directory: %v", err)
	}
	if b, err := os.ReadFile(live); err != nil || string(b) != "live" {
		t.Fatalf("the running demo's files were touched: %q, %v", b, err)
	}

	// Once the first has stopped, the directory is free again.
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := second.prepareDir(); err != nil {
		t.Fatalf("after the first demo stopped: %v", err)
	}
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
}

func sleepBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatalf("sleep(1) is needed: %v", err)
	}
	return bin
}

func TestProcessLifecycle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := sleepBinary(t)

	p, err := startProcess("sleeper", bin, []string{"60"}, nil, dir, filepath.Join(dir, "sleeper.log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Exited() || p.Unexpected() || p.ExitErr() != nil {
		t.Fatal("a running process reports an exit")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// sleep(1) dies of SIGTERM: a non-zero exit, reported.
	if err := p.Terminate(ctx); err == nil {
		t.Fatal("Terminate: death by SIGTERM not reported")
	}
	if !p.Exited() || p.Unexpected() {
		t.Fatalf("after Terminate: exited %v, unexpected %v", p.Exited(), p.Unexpected())
	}
	if err := syscall.Kill(p.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("pid %d still exists: %v", p.Pid(), err)
	}

	// A process that exits by itself is unexpected; Kill after exit is a no-op.
	q, err := startProcess("short", bin, []string{"0"}, nil, dir, filepath.Join(dir, "short.log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	<-q.Done()
	if !q.Unexpected() || q.ExitErr() != nil {
		t.Fatalf("exited by itself: unexpected %v, err %v", q.Unexpected(), q.ExitErr())
	}
	q.Kill()

	// Output lines reach onLine and the log.
	lines := make(chan string, 10)
	echo, err := exec.LookPath("echo")
	if err != nil {
		t.Fatal(err)
	}
	e, err := startProcess("echo", echo, []string{"hello"}, nil, dir, filepath.Join(dir, "echo.log"), func(l string) { lines <- l })
	if err != nil {
		t.Fatal(err)
	}
	<-e.Done()
	if got := <-lines; got != "hello" {
		t.Fatalf("onLine got %q", got)
	}
	if tail := logTail(e.LogPath(), 5); tail != "hello" {
		t.Fatalf("log tail %q", tail)
	}
}

// TestStartFailureLeavesNothing starts a Cluster whose sandbox binary exits
// at once: Start fails after Redis is up, and stops Redis again.
func TestStartFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	for _, name := range []string{SandboxBinary, SchedulerBinary, WorkerBinary} {
		script := "#!/bin/sh\necho \"$0: broken on purpose\" >&2\nexit 3\n"
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c, err := New(Options{Dir: t.TempDir(), BinDir: bin, StartTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "notion-sandbox exited before it was ready") ||
		!strings.Contains(err.Error(), "broken on purpose") {
		t.Fatalf("Start with a broken sandbox: %v", err)
	}
	procs := c.Processes()
	if len(procs) != 2 || procs[0].Name() != "redis" || procs[1].Name() != SandboxBinary {
		t.Fatalf("processes %v, want redis and the sandbox", procs)
	}
	for _, p := range procs {
		if err := syscall.Kill(p.Pid(), 0); !errors.Is(err, syscall.ESRCH) || !p.Exited() {
			t.Fatalf("%s (pid %d) left running after a failed Start: %v", p.Name(), p.Pid(), err)
		}
	}
	if err := c.Stop(); err == nil || !strings.Contains(err.Error(), "notion-sandbox had exited by itself") {
		t.Fatalf("Stop after a failed Start does not report the crash: %v", err)
	}
	if err := c.Start(t.Context()); err == nil {
		t.Fatal("a second Start succeeded")
	}
}

func TestStartWithoutBinaries(t *testing.T) {
	t.Parallel()
	c, err := New(Options{Dir: t.TempDir(), BinDir: filepath.Join(t.TempDir(), "none")})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("Start without binaries: %v", err)
	}
	if n := len(c.Processes()); n != 0 {
		t.Fatalf("%d processes started", n)
	}
}

func TestStopBeforeStart(t *testing.T) {
	t.Parallel()
	c, err := New(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
	if _, err := c.Leader(t.Context()); err == nil {
		t.Fatal("Leader before Start succeeded")
	}
	if _, err := c.Connect(t.Context()); err == nil {
		t.Fatal("Connect before Start succeeded")
	}
}

func TestRestartNeedsARunningCluster(t *testing.T) {
	t.Parallel()
	c, err := New(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for name, restart := range map[string]func(context.Context) error{
		"worker":    func(ctx context.Context) error { return c.RestartWorker(ctx, 0) },
		"scheduler": func(ctx context.Context) error { return c.RestartScheduler(ctx, 0) },
		"redis":     c.RestartRedis,
	} {
		if err := restart(t.Context()); err == nil {
			t.Errorf("restart %s before Start succeeded", name)
		}
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartWorker(t.Context(), 0); err == nil {
		t.Error("RestartWorker after Stop succeeded")
	}
}

// The progress line is written when it changes, and an unchanged one again
// only after the heartbeat.
func TestProgressPrinterPrintsOnChangeAndHeartbeat(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	p := &progressPrinter{out: &out, heartbeat: 30 * time.Second}
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		at    time.Duration
		line  string
		wrote bool
	}{
		{0, "pages synced 0/10", true},
		{2 * time.Second, "pages synced 0/10", false},
		{4 * time.Second, "pages synced 3/10", true},
		{6 * time.Second, "pages synced 3/10", false},
		{32 * time.Second, "pages synced 3/10", false}, // 28 s after the last line
		{34 * time.Second, "pages synced 3/10", true},  // the heartbeat
		{36 * time.Second, "pages synced 3/10", false},
		{38 * time.Second, "progress unavailable: x", true},
		{40 * time.Second, "progress unavailable: x", false},
	}
	for _, s := range steps {
		if got := p.print(t0.Add(s.at), s.at.String(), s.line); got != s.wrote {
			t.Fatalf("at %v %q: wrote %v, want %v", s.at, s.line, got, s.wrote)
		}
	}
	if n := strings.Count(out.String(), "\n"); n != 4 {
		t.Fatalf("%d lines written, want 4:\n%s", n, out.String())
	}
}

// The banner gives the exact export lines that point notionsyncctl at the
// demo, and the worker slots it runs.
func TestBannerShowsNotionsyncctlExports(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	c, err := New(Options{Dir: t.TempDir(), Out: &out, BinDir: "/opt/ns/bin"})
	if err != nil {
		t.Fatal(err)
	}
	c.publicURL = "http://127.0.0.1:43210"
	c.PrintBanner()
	for _, want := range []string{
		"export NOTIONSYNC_CONTROL_URL=http://127.0.0.1:43210\n",
		"export NOTIONSYNC_ADMIN_TOKEN=" + c.AdminToken() + "\n",
		"/opt/ns/bin/notionsyncctl list\n",
		"3 worker(s) of 50 slots",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, out.String())
		}
	}
}
