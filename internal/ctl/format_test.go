package ctl

import (
	"encoding/json"
	"testing"
	"time"
)

func TestRelative(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		0:                                     "now",
		999 * time.Millisecond:                "now",
		-999 * time.Millisecond:               "now",
		time.Second:                           "in 1s",
		59 * time.Second:                      "in 59s",
		42*time.Minute + 59*time.Second:       "in 42m59s",
		89 * time.Second:                      "in 1m29s",
		-89 * time.Second:                     "1m29s ago",
		59*time.Second + 600*time.Millisecond: "in 1m",
		3*time.Hour + 5*time.Minute + 40*time.Second:   "in 3h6m",
		23*time.Hour + 59*time.Minute + 50*time.Second: "in 1d",
		2*24*time.Hour + 4*time.Hour + 31*time.Minute:  "in 2d5h",
		-42 * time.Minute:                "42m ago",
		time.Hour:                        "in 1h",
		3*time.Hour + 5*time.Minute:      "in 3h5m",
		-(23*time.Hour + 59*time.Minute): "23h59m ago",
		48 * time.Hour:                   "in 2d",
		-(50*time.Hour + 29*time.Minute): "2d2h ago",
		-(50*time.Hour + 30*time.Minute): "2d3h ago",
		400 * 24 * time.Hour:             "in 400d",
	} {
		if got := relative(now.Add(d), now); got != want {
			t.Errorf("relative(%v) = %q, want %q", d, got, want)
		}
	}
	if got := relative(time.Time{}, now); got != "-" {
		t.Errorf("relative(zero) = %q", got)
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain":            "plain",
		"Acmé ✓":           "Acmé ✓",
		"":                 "",
		"a\tb":             `"a\tb"`,
		"line\nbreak":      `"line\nbreak"`,
		"\x1b[31mred":      `"\x1b[31mred"`,
		"\xff":             `"\xff"`,
		"\u202eevil":       `"\u202eevil"`,
		"c1\r":             `"c1\r"`,
		"\u0085next-line":  `"\u0085next-line"`,
		"quote \" is fine": "quote \" is fine",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %s, want %s", in, got, want)
		}
	}
	if cell("") != "-" || cell("x") != "x" {
		t.Error("cell")
	}
}

func TestSnake(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"LastSync": "last_sync", "last_sync": "last_sync", "PagesSynced": "pages_synced",
		"Pending": "pending", "HTTPCode": "http_code", "V2Cursor": "v2_cursor", "": "",
	} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseSyncReadsBothKeyStyles(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		`{"LastSync":"2026-05-01T11:55:00Z","Pending":3}`,
		`{"last_sync":"2026-05-01T11:55:00Z","pending":3}`,
	} {
		s := parseSync(json.RawMessage(raw))
		ts, ok := s.time("last_sync")
		n, nok := s.int("pending")
		if !ok || !nok || n != 3 || !ts.Equal(time.Date(2026, 5, 1, 11, 55, 0, 0, time.UTC)) {
			t.Errorf("%s: last_sync %v %v, pending %d %v", raw, ts, ok, n, nok)
		}
	}
	s := parseSync(json.RawMessage(`{"LastSync":"0001-01-01T00:00:00Z"}`))
	if ts, ok := s.time("last_sync"); !ok || !ts.IsZero() {
		t.Errorf("zero time: %v %v", ts, ok)
	}
	for _, raw := range []string{``, `null`, `"text"`, `[1]`, `{bad`} {
		if s := parseSync(json.RawMessage(raw)); s != nil {
			t.Errorf("parseSync(%s) = %v, want nil", raw, s)
		}
	}
}
