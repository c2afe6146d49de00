//go:build linux

package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/notionsync/notionsync/internal/demo"
)

// The fleet runs the demo's fast tick unless told otherwise, and
// -production-timing hands the scheduler the shipped defaults (read from
// the configuration's reference, not copied), which -tick and
// -leader-lease override; -env reaches every process after the
// scenario's own settings.
func TestSchedulerTimingFlags(t *testing.T) {
	parse := func(args ...string) Config {
		t.Helper()
		var errOut bytes.Buffer
		cfg, _, _, code := parseFlags(args, &errOut)
		if code != 0 {
			t.Fatalf("%v: exit %d (%s)", args, code, errOut.String())
		}
		return cfg
	}
	scenario := demo.Options{Env: []string{"NOTIONSYNC_LOG_LEVEL=info"}}

	o := demoOptions(parse(), scenario)
	if o.SchedulerTick != 0 || o.LeaderLease != 0 {
		t.Errorf("no flags: tick %v lease %v, want the demo's (zero)", o.SchedulerTick, o.LeaderLease)
	}
	tick, lease, err := shippedTiming()
	if err != nil {
		t.Fatal(err)
	}
	if tick != 5*time.Second || lease != 15*time.Second {
		t.Errorf("shipped timing %v / %v, want the documented 5s / 15s", tick, lease)
	}
	cfg := parse("-production-timing")
	o = demoOptions(cfg, scenario)
	if o.SchedulerTick != tick || o.LeaderLease != lease {
		t.Errorf("-production-timing: tick %v lease %v, want %v %v", o.SchedulerTick, o.LeaderLease, tick, lease)
	}
	if h := newReport(ScenarioFleetSync, cfg).Header; !strings.Contains(h, "scheduler tick 5s, lease 15s") {
		t.Errorf("the report does not say which timing it ran: %s", h)
	}
	o = demoOptions(parse("-production-timing", "-tick", "2s"), scenario)
	if o.SchedulerTick != 2*time.Second || o.LeaderLease != lease {
		t.Errorf("-production-timing -tick 2s: tick %v lease %v", o.SchedulerTick, o.LeaderLease)
	}
	o = demoOptions(parse("-env", "NOTIONSYNC_LOG_LEVEL=debug", "-env", "NOTIONSYNC_WORKER_POLL_INTERVAL=5s"), scenario)
	if i, j := slices.Index(o.Env, "NOTIONSYNC_LOG_LEVEL=info"), slices.Index(o.Env, "NOTIONSYNC_LOG_LEVEL=debug"); i < 0 || j < i ||
		!slices.Contains(o.Env, "NOTIONSYNC_WORKER_POLL_INTERVAL=5s") {
		t.Errorf("-env: %v, want the flags' settings after the scenario's", o.Env)
	}

	for _, args := range [][]string{
		{"-tick", "5s"}, // the demo's 3s lease is not more than two ticks
		{"-tick", "-1s"},
		{"-env", "LOG_LEVEL=debug"},
		{"-env", "NOTIONSYNC_X"},
	} {
		var errOut bytes.Buffer
		if _, _, _, code := parseFlags(args, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%v: exit %d, want 2 with a reason (%q)", args, code, errOut.String())
		}
	}
}
