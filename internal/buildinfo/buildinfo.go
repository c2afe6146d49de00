// Package buildinfo answers -version for every binary in cmd/: what was
// built (module version), from which commit (vcs.revision, and whether the
// work tree had uncommitted changes, vcs.modified) and with which Go, all
// read from the binary's own build information (runtime/debug), so nothing
// has to be stamped in with -ldflags.
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// String is the -version line of the binary name, e.g.
//
//	worker github.com/notionsync/notionsync v1.2.0, revision 0cd3d1f2a9c1 (modified), built 2026-12-06T20:01:00Z, go1.26.0
//
// A binary built without version control information (go run, go test, a
// build outside the repository) says "revision unknown".
func String(name string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return name + " (no build information)"
	}
	return Format(name, bi)
}

// Format is String for given build information.
func Format(name string, bi *debug.BuildInfo) string {
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", name, bi.Main.Path, orUnknown(bi.Main.Version))
	if rev := settings["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, ", revision %s", rev)
		if settings["vcs.modified"] == "true" {
			b.WriteString(" (modified)")
		}
		if t := settings["vcs.time"]; t != "" {
			fmt.Fprintf(&b, ", committed %s", t)
		}
	} else {
		b.WriteString(", revision unknown")
	}
	fmt.Fprintf(&b, ", %s", orUnknown(bi.GoVersion))
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// IsVersionArg reports whether arg asks for the version: -version,
// --version or version.
func IsVersionArg(arg string) bool {
	return arg == "-version" || arg == "--version" || arg == "version"
}
