package jobs_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/notionsync/notionsync/sync/files"
	"github.com/notionsync/notionsync/sync/sink/filesink"
)

// The README's "What the mirror looks like" tree is this test's output:
// it syncs a seeded sandbox workspace (the pages, databases and rows of
// TestSyncedMirrorHasNoBrokenLinks, with hosted files and users) into a
// file sink and lists the connection's folder. It fails when the README's
// tree differs; UPDATE_README=1 rewrites it:
//
//	UPDATE_README=1 go test -run TestREADMEMirrorTree ./jobs/
func TestREADMEMirrorTree(t *testing.T) {
	t.Parallel()
	spec := smallSpec
	spec.Files = true
	e := newEnv(t, envOpts{spec: spec, files: &files.Config{}, workspace: "ws-readme"})
	e.startWorkers(4)
	e.sweep()
	e.waitSynced()
	e.waitIdle()
	fs := e.sink.(*filesink.Sink)
	if err := fs.FlushIndex(context.Background(), e.conn); err != nil {
		t.Fatal(err)
	}
	tree := mirrorTree(t, filepath.Join(fs.Root(), e.conn), "data/"+e.conn+"/")

	const start, end = "<!-- mirror-tree:start (UPDATE_README=1 go test -run TestREADMEMirrorTree ./jobs/) -->\n```text\n", "```\n<!-- mirror-tree:end -->"
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(readme, []byte(start)), bytes.Index(readme, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("README.md has no mirror-tree block (%q ... %q)", start, end)
	}
	if got := string(readme[i+len(start) : j]); got != tree {
		if os.Getenv("UPDATE_README") == "" {
			t.Fatalf("README.md's mirror tree is not what a sync produces; run UPDATE_README=1 go test -run TestREADMEMirrorTree ./jobs/\nwant:\n%s", tree)
		}
		out := slices.Concat(readme[:i+len(start)], []byte(tree), readme[j:])
		if err := os.WriteFile("../README.md", out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// mirrorTree lists dir like tree(1), hidden entries (.locks, .keys, the
// collector's state) left out and long subdirectories abridged to their
// first entries and a count.
func mirrorTree(t *testing.T, dir, label string) string {
	t.Helper()
	const shown = 4
	var b strings.Builder
	b.WriteString(label + "\n")
	var walk func(dir, indent string)
	walk = func(dir, indent string) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		entries = slices.DeleteFunc(entries, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), ".") })
		// Directories last, as they are the bigger part.
		slices.SortStableFunc(entries, func(a, b os.DirEntry) int {
			switch {
			case a.IsDir() == b.IsDir():
				return strings.Compare(a.Name(), b.Name())
			case a.IsDir():
				return 1
			}
			return -1
		})
		n := len(entries)
		if indent != "" && n > shown+1 { // the connection's folder in full
			entries = entries[:shown]
		}
		for k, e := range entries {
			last := k == len(entries)-1 && n == len(entries)
			branch, next := "├── ", "│   "
			if last {
				branch, next = "└── ", "    "
			}
			if e.IsDir() {
				sub, _ := os.ReadDir(filepath.Join(dir, e.Name()))
				sub = slices.DeleteFunc(sub, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), ".") })
				fmt.Fprintf(&b, "%s%s%s/ (%d)\n", indent, branch, e.Name(), len(sub))
				walk(filepath.Join(dir, e.Name()), indent+next)
				continue
			}
			fmt.Fprintf(&b, "%s%s%s\n", indent, branch, e.Name())
		}
		if n > len(entries) {
			fmt.Fprintf(&b, "%s└── … %d more\n", indent, n-len(entries))
		}
	}
	walk(dir, "")
	return b.String()
}
