package redistest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestPdeathsigHelper is not a test of its own: TestServerDiesWithTestBinary
// runs the test binary again with helperEnv set, and this function then
// starts a server, reports it and blocks until it is killed.
func TestPdeathsigHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process for TestServerDiesWithTestBinary")
	}
	s, err := Start(Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	s.mu.Lock()
	fmt.Println("server", s.proc.cmd.Process.Pid, s.Dir())
	s.mu.Unlock()
	select {} // until the parent kills this process
}

func TestServerDiesWithTestBinary(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPdeathsigHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("reading helper output: %v", err)
	}
	var pid int
	var dir string
	if _, err := fmt.Sscanf(line, "server %d %s", &pid, &dir); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper said %q: %v", strings.TrimSpace(line), err)
	}
	// The helper cannot clean up after SIGKILL; do it for it.
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if processGone(pid) {
		t.Fatalf("redis-server pid %d not running while the helper lives", pid)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // "signal: killed" is expected

	// The kernel delivers the parent-death signal asynchronously; poll the
	// external process with a bound.
	deadline := time.Now().Add(10 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server pid %d survived its test binary", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
