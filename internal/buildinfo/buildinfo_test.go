package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	t.Parallel()
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/notionsync/notionsync", Version: "v1.2.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0cd3d1f2a9c1"}, {Key: "vcs.modified", Value: "true"},
			{Key: "vcs.time", Value: "2026-12-06T20:01:00Z"}, {Key: "GOOS", Value: "linux"}}}
	want := "worker github.com/notionsync/notionsync v1.2.0, revision 0cd3d1f2a9c1 (modified), committed 2026-12-06T20:01:00Z, go1.26.0"
	if got := Format("worker", bi); got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	bi.Settings = []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}
	if got := Format("worker", bi); strings.Contains(got, "modified") || !strings.Contains(got, "revision abc,") {
		t.Fatalf("clean tree: %q", got)
	}
	bi.Settings, bi.Main.Version = nil, ""
	if got := Format("demo", bi); got != "demo github.com/notionsync/notionsync (unknown), revision unknown, go1.26.0" {
		t.Fatalf("no vcs information: %q", got)
	}
}

func TestStringReadsThisBinary(t *testing.T) {
	t.Parallel()
	// A test binary has build information (its Go version at least).
	if got := String("x"); !strings.HasPrefix(got, "x ") || !strings.Contains(got, "go1.") {
		t.Fatalf("String = %q", got)
	}
}
