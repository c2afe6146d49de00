package markdown

import (
	"strings"
	"time"
)

// Notion writes dates as ISO 8601: "2026-12-06" (a day), or a date-time
// with an offset ("2026-12-06T14:05:00.000+00:00", "...Z"), or, when the
// value carries a time_zone, a local date-time without offset. Readers of
// the mirror want "2026-12-06 14:05 UTC": the wall time Notion showed, with
// its zone, at minute precision as Notion displays it.

// localLayout is a date-time without offset (the value has a time_zone).
const localLayout = "2006-01-02T15:04:05.999999999"

// readableTime renders one Notion date or date-time; tz is the value's
// time_zone ("" if none). Text that is not a date is returned unchanged, so
// nothing is lost.
func readableTime(s, tz string) string {
	s = strings.TrimSpace(s)
	if len(s) == len("2006-01-02") {
		if _, err := time.Parse(time.DateOnly, s); err == nil {
			return s
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		out := t.Format(wallLayout(t))
		if _, off := t.Zone(); off == 0 {
			out += " UTC"
		} else {
			out += t.Format(" -07:00")
		}
		if tz != "" {
			out += " (" + tz + ")"
		}
		return out
	}
	if t, err := time.Parse(localLayout, s); err == nil {
		out := t.Format(wallLayout(t))
		if tz != "" {
			out += " " + tz
		}
		return out
	}
	return s
}

// wallLayout shows seconds only when they are not zero (Notion's own
// values are whole minutes; formulas and API writes may not be).
func wallLayout(t time.Time) string {
	if t.Second() != 0 {
		return "2006-01-02 15:04:05"
	}
	return "2006-01-02 15:04"
}

// readableDate renders a date value: its start, or "start → end" for a
// range. The caller escapes the result.
func readableDate(d *dateValue) string {
	tz := ""
	if d.TimeZone != nil {
		tz = *d.TimeZone
	}
	s := readableTime(d.Start, tz)
	if d.End != nil && *d.End != "" {
		s += " → " + readableTime(*d.End, tz)
	}
	return s
}
