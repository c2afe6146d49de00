package linkcheck_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/notionsync/notionsync/internal/linkcheck"
)

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "index.md"), "- [A](pages/a.md)\n- [Gone](pages/gone.md)\n- [Out](../outside.md)\n"+
		"- [Web](https://example.com/x) <https://example.org>\n- [Top](#top)\n- `[not](a link.md)`\n")
	write(t, filepath.Join(root, "pages", "a.md"), "# A\n\n[Home](../index.md#x) ![img](../files/missing.png)\n\n| c |\n| --- |\n| [DB](../databases/d.md) |\n")
	write(t, filepath.Join(root, "databases", "d.md"), "# D\n")
	write(t, filepath.Join(root, "..", "outside.md"), "outside\n")
	r, err := linkcheck.Check(root)
	if err != nil {
		t.Fatal(err)
	}
	if r.Files != 3 || len(r.Local) != 6 || len(r.External) != 2 {
		t.Fatalf("files %d, local %d, external %d; want 3, 6, 2: %+v", r.Files, len(r.Local), len(r.External), r)
	}
	broken := map[string]bool{}
	for _, l := range r.Broken {
		broken[l.File+" "+l.Dest] = true
	}
	for _, want := range []string{"index.md pages/gone.md", "index.md ../outside.md", "pages/a.md ../files/missing.png"} {
		if !broken[want] {
			t.Errorf("%q not reported broken: %v", want, r.Broken)
		}
	}
	if len(r.Broken) != 3 || r.Err() == nil {
		t.Errorf("broken = %v", r.Broken)
	}
	if !r.Targets["databases/d.md"] || !r.Targets["index.md"] || !r.Targets["pages/a.md"] {
		t.Errorf("targets = %v", r.Targets)
	}
}
