package systemtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/demo"
)

// pollEvery is the interval of the bounded polls of external state.
const pollEvery = 100 * time.Millisecond

// eventually polls cond until it reports done, fails the test when cond
// returns an error, and fails it with cond's last status when timeout
// passes first.
func eventually(t *testing.T, ctx context.Context, timeout time.Duration, what string, cond func(ctx context.Context) (done bool, status string, err error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(pollEvery)
	defer ticker.Stop()
	status := "(not polled yet)"
	for {
		done, st, err := cond(ctx)
		if err != nil && ctx.Err() == nil {
			t.Fatalf("%s: %v", what, err)
		}
		if st != "" {
			status = st
		}
		if done && err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %v; last: %s", what, timeout, status)
		case <-ticker.C:
		}
	}
}

// startCluster starts a Cluster of the built binaries in a temporary
// directory and stops it when the test ends (if the test has not).
func startCluster(t *testing.T, ctx context.Context, opts demo.Options) *demo.Cluster {
	t.Helper()
	opts.Dir = filepath.Join(t.TempDir(), "demo")
	opts.BinDir = binDir
	opts.Out = t.Output()
	c, err := demo.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if t.Failed() {
			logTails(t, c)
		}
	})
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// logTails shows the end of every process log of a failed test.
func logTails(t *testing.T, c *demo.Cluster) {
	t.Helper()
	for _, p := range c.Processes() {
		data, err := os.ReadFile(p.LogPath())
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		t.Logf("--- %s (pid %d, exited %v: %v) ---\n%s", p.Name(), p.Pid(), p.Exited(), p.ExitErr(), strings.Join(lines, "\n"))
	}
}

// pageFile is what the tests read of a file-sink page document, decoded
// independently of package demo.
type pageFile struct {
	deleted bool
	blocks  int
	raw     []byte
}

// readPageFile reads <synced>/<conn>/pages/<id>.json.
func readPageFile(synced, connID, pageID string) (pageFile, error) {
	raw, err := os.ReadFile(filepath.Join(synced, connID, "pages", strings.ToLower(pageID)+".json"))
	if err != nil {
		return pageFile{}, err
	}
	var doc struct {
		Meta *struct {
			Deleted bool `json:"deleted"`
		} `json:"_notionsync"`
		Blocks []any `json:"blocks"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return pageFile{}, fmt.Errorf("%s: %w", pageID, err)
	}
	if doc.Meta == nil {
		return pageFile{}, fmt.Errorf("%s: no _notionsync member", pageID)
	}
	return pageFile{deleted: doc.Meta.Deleted, blocks: countBlocks(doc.Blocks), raw: raw}, nil
}

// countBlocks counts a block tree's nodes: each block and, recursively, its
// "children".
func countBlocks(blocks []any) int {
	n := 0
	for _, b := range blocks {
		n++
		if m, ok := b.(map[string]any); ok {
			if children, ok := m["children"].([]any); ok {
				n += countBlocks(children)
			}
		}
	}
	return n
}

// syncedCompletely reports whether every page the sandbox expects is in the
// sink, live, with its block count, and no other live page is.
func syncedCompletely(ctx context.Context, c *demo.Cluster, connID string) (bool, string, error) {
	exp, err := c.Expected(ctx)
	if err != nil {
		return false, "", err
	}
	missing, wrong := 0, 0
	var first string
	note := func(s string) {
		if first == "" {
			first = s
		}
	}
	want := map[string]bool{}
	for _, e := range exp.Pages {
		want[strings.ToLower(e.ID)] = true
		f, err := readPageFile(c.SyncedDir(), connID, e.ID)
		switch {
		case errors.Is(err, os.ErrNotExist):
			missing++
			note(e.ID + " missing")
		case err != nil:
			return false, "", err
		case f.deleted:
			wrong++
			note(e.ID + " stored as deleted")
		case f.blocks != e.Blocks:
			wrong++
			note(fmt.Sprintf("%s has %d of %d blocks", e.ID, f.blocks, e.Blocks))
		}
	}
	entries, err := os.ReadDir(filepath.Join(c.SyncedDir(), connID, "pages"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, "", err
	}
	extra := 0
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(id, ".") || want[id] {
			continue
		}
		if f, err := readPageFile(c.SyncedDir(), connID, id); err == nil && !f.deleted {
			extra++
			note(id + " is live in the sink but not in the sandbox")
		}
	}
	status := fmt.Sprintf("%d pages expected: %d missing, %d incomplete, %d extra (first: %s)",
		exp.PageCount, missing, wrong, extra, first)
	return missing == 0 && wrong == 0 && extra == 0 && exp.PageCount > 0, status, nil
}

// assertGone fails the test for every pid that still names a process. The
// Cluster reaps its children, so a pid that answers signal 0 is a process
// left behind.
func assertGone(t *testing.T, procs []*demo.Process) {
	t.Helper()
	if len(procs) == 0 {
		t.Fatal("no processes to check")
	}
	for _, p := range procs {
		if !p.Exited() {
			t.Errorf("%s (pid %d) has not exited", p.Name(), p.Pid())
		}
		if err := syscall.Kill(p.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s: pid %d still exists after Stop (kill 0: %v)", p.Name(), p.Pid(), err)
		}
	}
}
