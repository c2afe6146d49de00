package keymigrate

import (
	"strings"
	"testing"

	"github.com/notionsync/notionsync/internal/keyspace"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		rest string
		id   string
		kind kind
	}{
		{"conn:c1", "c1", kindFixed},
		{"conn:c1:events", "c1", kindFixed},
		{"conn:c1:other", "", kindUnknown},
		{"lock:c1", "c1", kindLock},
		{"sync:c1", "c1", kindFixed},
		{"sync:c1:todo", "c1", kindFixed},
		{"sync:c1:users", "c1", kindFixed},
		{"sync:c1:nope", "", kindUnknown},
		{"sync:errored", "", kindIndex},
		{"busy:leases", "", kindIndex},
		{"busy:c1:page:p1", "c1", kindVariable},
		{"busy:c1", "", kindUnknown},
		{"ckpt:c1:search:listing:0a1b", "c1", kindVariable},
		{"capped:c1:p1", "c1", kindVariable},
		{"reauth-notified:c1:7", "c1", kindVariable},
		{"drain:c1", "c1", kindFixed},
		{"recon:c1:seen", "c1", kindFixed},
		{"notion:{c1}:gcra", "c1", kindFixed},
		{"notion:{c1}:other", "", kindUnknown},
		{"notion:c1:gcra", "", kindUnknown},
		{"webhook:notion:dedup:c1:page-1", "c1", kindVariable},
		{"webhook:notion:dedup:bad id:x", "", kindUnknown},
		{"webhook:notion:event:00ff", "", kindKept},
		{"oauth:state:00ff", "", kindOAuthState},
		{"oauth:states", "", kindOAuthIndex},
		{"due", "", kindIndex},
		{"status:needs_reauth", "", kindIndex},
		{"status:indexed", "", kindKept},
		{"sweeps:cursor", "", kindKept},
		{"workspace:w:connections", "", kindKept},
		{"{s7.113}:conn:c1", "", kindNew},
		{"conn:bad.id", "", kindUnknown},
		{"whatever", "", kindUnknown},
	} {
		id, k := classify(tc.rest)
		if id != tc.id || k != tc.kind {
			t.Errorf("classify(%q) = %q, %d; want %q, %d", tc.rest, id, k, tc.id, tc.kind)
		}
	}
}

func TestNewName(t *testing.T) {
	tag := keyspace.Conn("p:", "c1")
	for old, want := range map[string]string{
		"conn:c1":                   tag + "conn:c1",
		"notion:{c1}:gcra":          tag + "notion:c1:gcra",
		"busy:c1:page:p1":           tag + "busy:c1:page:p1",
		"webhook:notion:dedup:c1:e": tag + "webhook:notion:dedup:c1:e",
	} {
		if got := newName("p:", "c1", old); got != want {
			t.Errorf("newName(%q) = %q, want %q", old, got, want)
		}
	}
	// Every fixed key of a connection is classified as its own, so the
	// script's key list and discovery agree.
	for _, k := range fixedKeys("c1") {
		if id, kd := classify(k); id != "c1" || kd != kindFixed {
			t.Errorf("fixed key %q classified %q, %d", k, id, kd)
		}
		if keyspace.Slot(newName("p:", "c1", k)) != keyspace.Slot(tag) {
			t.Errorf("%q lands outside the connection's slot", k)
		}
	}
}

func TestGlobEscape(t *testing.T) {
	if got := globEscape(`a*b?[c]\`); got != `a\*b\?\[c\]\\` {
		t.Errorf("globEscape = %q", got)
	}
	if strings.ContainsAny(globEscape("notionsync:"), `\`) {
		t.Error("a plain prefix was escaped")
	}
}
