package systemtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// binDir holds the binaries TestMain built.
var binDir string

// binaries are the commands the tests run, by import path.
var binaries = []string{
	"github.com/notionsync/notionsync/cmd/worker",
	"github.com/notionsync/notionsync/cmd/scheduler",
	"github.com/notionsync/notionsync/cmd/notion-sandbox",
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "notionsync-systemtest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "systemtest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "systemtest:", err)
		return 1
	}
	binDir = dir
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "systemtest: goroutine leak:", err)
			return 1
		}
	}
	return code
}

// build compiles the binaries into dir, without -race: the binaries are the
// system under test here, and the race detector covers their packages' own
// tests.
func build(dir string) error {
	goBin, err := exec.LookPath("go") // go test puts GOROOT/bin first in PATH
	if err != nil {
		return fmt.Errorf("the go command is needed to build the binaries: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, append([]string{"build", "-o", dir + string(os.PathSeparator)}, binaries...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}
