//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// binDir holds the binaries TestMain built.
var binDir string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "notionsync-fleet-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Without -race: the binaries are the system under test; the race
	// detector covers their packages' own tests.
	if err := buildBinaries(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		return 1
	}
	binDir = dir
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "fleet: goroutine leak:", err)
			return 1
		}
	}
	return code
}

func shortConfig(t *testing.T, scenario string) Config {
	return Config{
		Scenario: scenario, Connections: 50, Workers: 4, Concurrency: 10, RateLimit: 180,
		Pages: 3, Blocks: 4, SyncInterval: 5 * time.Second, SyncTimeout: 30 * time.Second,
		BinDir: binDir, Dir: filepath.Join(t.TempDir(), scenario), Log: t.Output(),
	}
}

// runShort runs a scenario, prints its report and checks that it passed
// and holds the named invariants, each passed.
func runShort(t *testing.T, cfg Config, want ...string) {
	t.Helper()
	// A bound, not a goal: under a loaded CI machine (every package's tests
	// run beside this one) bad-input alone took over 150 s.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if rep != nil {
		var b bytes.Buffer
		rep.Print(&b)
		t.Log(b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() {
		t.Errorf("%s: an invariant failed", cfg.Scenario)
	}
	for _, name := range want {
		c, ok := rep.Invariant(name)
		switch {
		case !ok:
			t.Errorf("%s: no invariant %q in the report", cfg.Scenario, name)
		case !c.OK:
			t.Errorf("%s: %s: %s", cfg.Scenario, name, c.Detail)
		}
	}
}

// TestFleetShort is the CI version of the suite: fleet-sync and a brief
// refresh storm with 50 connections on 4 workers, bad input, and chaos on a
// Redis Cluster.
func TestFleetShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	t.Run(ScenarioFleetSync, func(t *testing.T) {
		cfg := shortConfig(t, ScenarioFleetSync)
		cfg.Duration = 3 * time.Second
		runShort(t, cfg, invAllSynced, invNoInvalidGrant, invAllActive, invNoCrash)
	})
	t.Run(ScenarioRefreshStorm, func(t *testing.T) {
		cfg := shortConfig(t, ScenarioRefreshStorm)
		cfg.TokenLifetime = 3 * time.Second
		cfg.Duration = 12 * time.Second
		runShort(t, cfg, invAllSynced, invOneGrant, invNoInvalidGrant, invAllActive, invNoCrash)
	})
	t.Run(ScenarioBadInput, func(t *testing.T) {
		cfg := shortConfig(t, ScenarioBadInput)
		cfg.Connections = 20
		runShort(t, cfg, invBIHealthyStored, invBIUnknownKept, invBIPerObjectError, invBICursorsRefused,
			invBIHostileError, invBIHostileStop, invBIMemory, invBIRecovered, invAllSynced, invNoCrash, invBIRunning)
	})
	// The same binaries on a 3-master Redis Cluster (3 replicas,
	// NOTIONSYNC_QUEUE_SHARDS=3): each chaos fault once, a worker, the
	// leader scheduler and the busiest Redis master SIGKILLed (its replica
	// promoted), with short token lifetimes so refreshes race the faults.
	t.Run("cluster/"+ScenarioChaos, func(t *testing.T) {
		cfg := shortConfig(t, ScenarioChaos)
		cfg.Redis = redisCluster
		cfg.Connections = 30
		cfg.TokenLifetime = 4 * time.Second
		cfg.Duration = 0 // every fault once
		cfg.SyncTimeout = time.Minute
		runShort(t, cfg, invRecovered, invOneGrant, invNoInvalidGrant, invAllActive, invNoCrash)
	})
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond, 0: time.Millisecond} {
		if got := percentile(ds, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("empty: %v", got)
	}
}

func TestSampleProcReadsThisProcess(t *testing.T) {
	s, err := sampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.rss <= 0 || s.hwm < s.rss {
		t.Errorf("rss %d, peak %d: want 0 < rss <= peak", s.rss, s.hwm)
	}
	if _, err := sampleProc(-1); err == nil {
		t.Error("no error for pid -1")
	}
}

func TestReportFailsOnlyOnInvariants(t *testing.T) {
	rep := newReport("x", Config{})
	rep.goal("g", false, "missed by %d", 3)
	if rep.Failed() {
		t.Error("a missed goal failed the report")
	}
	rep.invariant("i", false, "broken")
	if !rep.Failed() {
		t.Error("a failed invariant did not fail the report")
	}
	var b bytes.Buffer
	rep.Print(&b)
	for _, want := range []string{"GOAL missed g: missed by 3", "FAIL        i: broken", "== x: FAIL"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"-connections", "0", "-bin", t.TempDir()}, &out, &errOut); code != 2 {
		t.Errorf("exit %d, want 2 (%s)", code, errOut.String())
	}
	if code := run(t.Context(), []string{"-scenario", "nope", "-bin", t.TempDir(), "-dir", t.TempDir()}, &out, &errOut); code != 1 {
		t.Errorf("unknown scenario: exit %d, want 1", code)
	}
}

func TestRedisFlagAndClusterFaults(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"-redis", "sentinel", "-bin", t.TempDir()}, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "-redis") {
		t.Errorf("-redis sentinel: exit %d, want 2 (%s)", code, errOut.String())
	}
	if got := faultsFor(Config{Redis: redisSingle}); !slices.Contains(got, faultRestartRedis) || slices.Contains(got, faultKillMaster) {
		t.Errorf("single-node faults %v", got)
	}
	if got := faultsFor(Config{Redis: redisCluster}); slices.Contains(got, faultRestartRedis) || !slices.Contains(got, faultKillMaster) || len(got) != len(chaosFaults) {
		t.Errorf("cluster faults %v", got)
	}
}

func TestNodeSpread(t *testing.T) {
	a := redisStats{byNode: map[string]int64{"m1": 100, "m2": 100, "m3": 100}}
	b := redisStats{byNode: map[string]int64{"m1": 1100, "m2": 1300, "m3": 900, "m4": 0}}
	// m4 (a promoted replica with nothing yet) counts from zero: deltas
	// 1000, 1200, 800, 0 around a mean of 750.
	s, worst := nodeSpread(a, b)
	if math.Abs(worst-1.0) > 1e-9 || !strings.Contains(s, "m2 1200 (+60.0%)") || !strings.Contains(s, "m4 0 (-100.0%)") {
		t.Errorf("nodeSpread = %q, %v", s, worst)
	}
	b.byNode = map[string]int64{"m1": 1100, "m2": 1100, "m3": 1100}
	if _, worst := nodeSpread(a, b); worst != 0 {
		t.Errorf("even spread: largest deviation %v", worst)
	}
}
