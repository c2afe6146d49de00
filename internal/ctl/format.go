package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// relative describes t as seen from now: "in 42m", "3h5m ago", "now"; "-"
// for the zero time.
func relative(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now)
	switch {
	case d > -time.Second && d < time.Second:
		return "now"
	case d > 0:
		return "in " + shortDuration(d)
	default:
		return shortDuration(-d) + " ago"
	}
}

// shortDuration renders a positive duration with its two largest units,
// rounded to the nearest of the smaller one: "45s", "1m29s", "42m", "1h",
// "3h5m", "2d", "2d4h". Minutes keep their seconds: truncating 89 s to "1m"
// hid a third of the duration from an operator reading a retry time.
func shortDuration(d time.Duration) string {
	const day = 24 * time.Hour
	two := func(big, small int, bu, su string) string {
		if small == 0 {
			return strconv.Itoa(big) + bu
		}
		return strconv.Itoa(big) + bu + strconv.Itoa(small) + su
	}
	// Round unit by unit, so that 23h59m50s becomes 1d, not 23h60m.
	d = d.Round(time.Second)
	if d >= time.Hour {
		d = d.Round(time.Minute)
	}
	if d >= day {
		d = d.Round(time.Hour)
	}
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return two(int(d/time.Minute), int(d%time.Minute/time.Second), "m", "s")
	case d < day:
		return two(int(d/time.Hour), int(d%time.Hour/time.Minute), "h", "m")
	default:
		return two(int(d/day), int(d%day/time.Hour), "d", "h")
	}
}

// timestamp renders t in UTC with its distance from now:
// "2026-05-01T10:00:00Z (in 42m)".
func timestamp(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339) + " (" + relative(t, now) + ")"
}

// clean makes a string from the server safe to print on a terminal: one
// holding control characters (escape sequences, newlines, tabs) or invalid
// UTF-8 is quoted.
func clean(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
	}) {
		return strconv.Quote(s)
	}
	return s
}

// cell is clean for a table cell, with "-" for an empty value.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return clean(s)
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

// row adds a row; cells must already be clean (no tabs or newlines).
func (t *table) row(cells ...string) { fmt.Fprintln(t.tw, strings.Join(cells, "\t")) }

func (t *table) flush() error { return t.tw.Flush() }

// syncInfo is the "sync" field of a connection: whatever the server's
// SyncInfo returned (jobs.SyncState in the scheduler), read tolerantly. Its
// keys are normalized to snake_case, so "LastSync" and "last_sync" both
// read as "last_sync".
type syncInfo map[string]json.RawMessage

// parseSync returns nil when raw is absent, null or not an object.
func parseSync(raw json.RawMessage) syncInfo {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	out := make(syncInfo, len(m))
	for k, v := range m {
		out[snake(k)] = v
	}
	return out
}

// time returns the time under key; ok is false when the key is absent or
// not a time. A zero time ("never") is returned with ok true.
func (s syncInfo) time(key string) (time.Time, bool) {
	raw, found := s[key]
	if !found {
		return time.Time{}, false
	}
	return jsonTime(raw)
}

func jsonTime(raw json.RawMessage) (time.Time, bool) {
	var str string
	if json.Unmarshal(raw, &str) != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, str)
	if err != nil {
		return time.Time{}, false
	}
	if t.Year() <= 1 { // Go's zero time, as encoding/json writes it
		return time.Time{}, true
	}
	return t, true
}

// int returns the integer under key.
func (s syncInfo) int(key string) (int64, bool) {
	raw, found := s[key]
	if !found {
		return 0, false
	}
	var n int64
	if json.Unmarshal(raw, &n) != nil {
		return 0, false
	}
	return n, true
}

// count returns the number of entries of the object or array under key; 0
// when the key is absent, null or neither.
func (s syncInfo) count(key string) int {
	raw := bytes.TrimSpace(s[key])
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) == nil {
		return len(m)
	}
	var a []json.RawMessage
	if json.Unmarshal(raw, &a) == nil {
		return len(a)
	}
	return 0
}

// syncKeyOrder is the order show prints the known keys of jobs.SyncState
// in; other keys follow alphabetically. error_details (each error's kind,
// permanent or transient, and since) follows the messages.
var syncKeyOrder = []string{"last_sync", "last_sweep", "cursor", "target", "pending", "pages_synced", "errors", "error_details"}

// lines renders the sync info as key: value pairs under prefix.
func (s syncInfo) lines(prefix string, now time.Time) [][2]string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ia, ib := slices.Index(syncKeyOrder, a), slices.Index(syncKeyOrder, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})
	var out [][2]string
	for _, k := range keys {
		out = append(out, jsonLines(prefix+clean(k), s[k], now)...)
	}
	return out
}

// jsonLines renders one JSON value as key: value pairs: times with their
// distance from now (the zero time as "never"), objects flattened with
// dotted keys, empty objects and null as "-".
func jsonLines(key string, raw json.RawMessage, now time.Time) [][2]string {
	raw = bytes.TrimSpace(raw)
	if t, ok := jsonTime(raw); ok {
		if t.IsZero() {
			return [][2]string{{key, "never"}}
		}
		return [][2]string{{key, timestamp(t, now)}}
	}
	if len(raw) > 0 && raw[0] == '{' {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) == nil {
			if len(m) == 0 {
				return [][2]string{{key, "-"}}
			}
			var out [][2]string
			for _, k := range slices.Sorted(maps.Keys(m)) {
				out = append(out, jsonLines(key+"."+clean(k), m[k], now)...)
			}
			return out
		}
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return [][2]string{{key, cell(str)}}
	}
	if string(raw) == "null" {
		return [][2]string{{key, "-"}}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return [][2]string{{key, clean(string(raw))}}
	}
	return [][2]string{{key, clean(buf.String())}}
}

// snake turns "LastSync" into "last_sync" and leaves "last_sync" alone.
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			prevLower := i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]))
			acronymEnd := i > 0 && unicode.IsUpper(rs[i-1]) && i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if prevLower || acronymEnd {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// writePairs writes key: value lines, aligned.
func writePairs(w io.Writer, pairs [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, p := range pairs {
		fmt.Fprintf(tw, "%s:\t%s\n", p[0], p[1])
	}
	return tw.Flush()
}
