package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/notionsync/notionsync/internal/demo"
)

// Check kinds: an invariant failing makes the run fail; a goal is a target
// the report measures against and says by how much it was missed.
const (
	kindInvariant = "invariant"
	kindGoal      = "goal"
)

// Check is one pass/fail line of a report.
type Check struct {
	Kind   string
	Name   string
	OK     bool
	Detail string
}

// Report is what a scenario measured.
type Report struct {
	Scenario string
	Header   string
	Figures  [][2]string // name, value, in order
	Checks   []Check
}

func newReport(scenario string, cfg Config) *Report {
	return &Report{Scenario: scenario, Header: fmt.Sprintf(
		"scenario %s · %d connections · %d workers (concurrency %d) · rate limit %d/min per connection · %d pages of %d blocks per workspace · Redis %s · %s%s",
		scenario, cfg.Connections, cfg.Workers, cfg.Concurrency, cfg.RateLimit, cfg.Pages, cfg.Blocks, cmp.Or(cfg.Redis, redisSingle),
		timing(cfg), time.Now().UTC().Format(time.RFC3339))}
}

// timing names the scheduler's tick and lease, and the extra settings, so
// that a report says whether it ran the demo's fast tick or the shipped one.
func timing(cfg Config) string {
	s := fmt.Sprintf("scheduler tick %v, lease %v · ", cmp.Or(cfg.SchedulerTick, demo.DefaultSchedulerTick), cmp.Or(cfg.LeaderLease, demo.DefaultLeaderLease))
	if len(cfg.Env) > 0 {
		s += strings.Join(cfg.Env, " ") + " · "
	}
	return s
}

func (r *Report) figure(name, format string, args ...any) {
	r.Figures = append(r.Figures, [2]string{name, fmt.Sprintf(format, args...)})
}

func (r *Report) check(kind, name string, ok bool, format string, args ...any) {
	r.Checks = append(r.Checks, Check{Kind: kind, Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
}

func (r *Report) invariant(name string, ok bool, format string, args ...any) {
	r.check(kindInvariant, name, ok, format, args...)
}

func (r *Report) goal(name string, ok bool, format string, args ...any) {
	r.check(kindGoal, name, ok, format, args...)
}

// Failed reports whether an invariant failed.
func (r *Report) Failed() bool {
	return slices.ContainsFunc(r.Checks, func(c Check) bool { return c.Kind == kindInvariant && !c.OK })
}

// Invariant returns the named invariant check, if any.
func (r *Report) Invariant(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Kind == kindInvariant && c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// Print writes the report as plain text.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\n== %s\n", r.Header)
	width := 0
	for _, f := range r.Figures {
		width = max(width, len(f[0]))
	}
	for _, f := range r.Figures {
		fmt.Fprintf(w, "  %-*s  %s\n", width, f[0], f[1])
	}
	for _, c := range r.Checks {
		verdict := ""
		switch {
		case c.Kind == kindInvariant && c.OK:
			verdict = "PASS"
		case c.Kind == kindInvariant:
			verdict = "FAIL"
		case c.OK:
			verdict = "GOAL met"
		default:
			verdict = "GOAL missed"
		}
		fmt.Fprintf(w, "  %-11s %s: %s\n", verdict, c.Name, c.Detail)
	}
	if r.Failed() {
		fmt.Fprintf(w, "== %s: FAIL\n", r.Scenario)
	} else {
		fmt.Fprintf(w, "== %s: PASS\n", r.Scenario)
	}
}

// percentile returns the p-th percentile (0..100) of ds by nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

func roundD(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, strings.TrimSuffix(word, "s"))
}
