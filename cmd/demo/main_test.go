package main

import (
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out strings.Builder
	if code := run([]string{"-version"}, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if s := out.String(); !strings.HasPrefix(s, "demo ") || !strings.Contains(s, "go1.") || strings.Count(s, "\n") != 1 {
		t.Fatalf("printed %q", s)
	}
}
