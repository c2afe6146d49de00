package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/notionsync/notionsync/config"
	"github.com/notionsync/notionsync/internal/demo"
)

// Config is a run of the suite.
type Config struct {
	Scenario    string
	Connections int
	Workers     int
	Concurrency int           // tasks per worker
	Latency     time.Duration // the sandbox's data API latency (fleet-sync)
	RateLimit   int           // Notion requests per minute per connection, sandbox and notionsync
	Pages       int           // pages per workspace
	Blocks      int           // blocks per page
	Duration    time.Duration // steady window (fleet-sync) or storm (refresh-storm)
	// TokenLifetime is the access-token lifetime of refresh-storm.
	TokenLifetime time.Duration
	SyncInterval  time.Duration
	SyncTimeout   time.Duration // bound of the wait for every connection to sync
	Kills         int           // kill-sync: workers SIGKILLed, one at a time
	Redis         string        // redisSingle or redisCluster
	// SchedulerTick and LeaderLease are the scheduler's
	// NOTIONSYNC_SCHEDULER_TICK and NOTIONSYNC_LEADER_LEASE; zero means the
	// demo's fast 1s and 3s, which the scenarios' timings assume (a sweep
	// or a refresh is due at most a tick late).
	SchedulerTick time.Duration
	LeaderLease   time.Duration
	// Env holds extra NOTIONSYNC_* KEY=VALUE settings for every scheduler
	// and worker, after the scenario's own, so they win: the demo strips
	// NOTIONSYNC_* from the shell, and this is how a run tries others.
	Env    []string
	BinDir string    // worker, scheduler, notion-sandbox
	Dir    string    // the Cluster's working directory
	Log    io.Writer // the Cluster's progress lines
}

// binaries the Cluster runs.
var binaries = []string{
	"github.com/notionsync/notionsync/cmd/worker",
	"github.com/notionsync/notionsync/cmd/scheduler",
	"github.com/notionsync/notionsync/cmd/notion-sandbox",
}

// buildBinaries compiles the binaries into dir.
func buildBinaries(ctx context.Context, dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go command is needed to build the binaries (or pass -bin): %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, append([]string{"build", "-o", dir + string(os.PathSeparator)}, binaries...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args, runs the scenarios and returns the exit code: 0 when
// every invariant held, 1 when one failed or the run broke, 2 on bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, keep, verbose, code := parseFlags(args, stderr)
	if code != 0 {
		return code
	}
	scenarios := []string{cfg.Scenario}
	if cfg.Scenario == "all" {
		scenarios = Scenarios
	}
	cfg.Log = io.Discard
	if verbose {
		cfg.Log = stderr
	}
	if cfg.BinDir == "" {
		dir, err := os.MkdirTemp("", "notionsync-fleet-bin-")
		if err != nil {
			fmt.Fprintln(stderr, "fleet:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		fmt.Fprintln(stderr, "fleet: building the binaries")
		if err := buildBinaries(ctx, dir); err != nil {
			fmt.Fprintln(stderr, "fleet:", err)
			return 1
		}
		cfg.BinDir = dir
	}
	root := cfg.Dir
	if root == "" {
		dir, err := os.MkdirTemp("", "notionsync-fleet-")
		if err != nil {
			fmt.Fprintln(stderr, "fleet:", err)
			return 1
		}
		root = dir
		if !keep {
			defer os.RemoveAll(dir)
		}
	}
	for _, sc := range scenarios {
		c := cfg
		c.Scenario = sc
		c.Dir = filepath.Join(root, sc)
		fmt.Fprintf(stderr, "fleet: running %s (logs in %s)\n", sc, filepath.Join(c.Dir, "logs"))
		rep, err := Run(ctx, c)
		if rep != nil {
			rep.Print(stdout)
			if rep.Failed() {
				code = 1
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "fleet: %s: %v\n", sc, err)
			code = 1
			if errors.Is(err, context.Canceled) {
				break
			}
		}
	}
	return code
}

// shippedTiming returns the scheduler's documented defaults of
// NOTIONSYNC_SCHEDULER_TICK and NOTIONSYNC_LEADER_LEASE, read from the
// configuration's own reference so that -production-timing cannot drift
// from what operators run.
func shippedTiming() (tick, lease time.Duration, err error) {
	want := map[string]*time.Duration{"NOTIONSYNC_SCHEDULER_TICK": &tick, "NOTIONSYNC_LEADER_LEASE": &lease}
	for _, v := range config.SchedulerReference() {
		if d, ok := want[v.Name]; ok {
			if *d, err = time.ParseDuration(v.Default); err != nil {
				return 0, 0, fmt.Errorf("%s default %q: %w", v.Name, v.Default, err)
			}
			delete(want, v.Name)
		}
	}
	for name := range want {
		return 0, 0, fmt.Errorf("the scheduler has no %s default", name)
	}
	return tick, lease, nil
}

// parseFlags reads run's flags; code is 2 when they are bad (the flag
// package or parseFlags said why on stderr).
func parseFlags(args []string, stderr io.Writer) (cfg Config, keep, verbose bool, code int) {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Scenario, "scenario", ScenarioFleetSync, "scenario: "+strings.Join(Scenarios, ", ")+", "+ScenarioKillSync+", "+ScenarioFidelity+", or all (all but "+ScenarioKillSync+" and "+ScenarioFidelity+")")
	fs.IntVar(&cfg.Connections, "connections", 1000, "connections (one sandbox workspace each)")
	fs.IntVar(&cfg.Workers, "workers", 4, "worker processes")
	fs.IntVar(&cfg.Concurrency, "concurrency", 50, "tasks each worker runs at once (NOTIONSYNC_WORKER_CONCURRENCY)")
	fs.IntVar(&cfg.RateLimit, "rate-limit", 180, "Notion requests per minute per connection, at the sandbox and in notionsync")
	fs.IntVar(&cfg.Pages, "pages", 3, "pages per workspace")
	fs.DurationVar(&cfg.Latency, "latency", 0, "how long the sandbox takes to answer each data request (fleet-sync; Notion's own is 100-500 ms)")
	fs.IntVar(&cfg.Blocks, "blocks", 4, "blocks per page")
	fs.DurationVar(&cfg.Duration, "duration", time.Minute, "steady window (fleet-sync) or storm length (refresh-storm)")
	fs.DurationVar(&cfg.TokenLifetime, "token-lifetime", 8*time.Second, "access-token lifetime in refresh-storm, chaos and token-faults")
	fs.DurationVar(&cfg.SyncInterval, "sync-interval", 15*time.Second, "how often each connection is swept")
	fs.DurationVar(&cfg.SyncTimeout, "sync-timeout", 10*time.Minute, "bound of the wait for every connection to sync")
	fs.IntVar(&cfg.Kills, "kills", 6, "kill-sync: how many times a worker is SIGKILLed mid-drain or mid-page")
	fs.StringVar(&cfg.BinDir, "bin", "", "folder with worker, scheduler and notion-sandbox (default: built into a temporary folder)")
	fs.StringVar(&cfg.Dir, "dir", "", "working folder: logs, sink, Redis files (default: a temporary folder, removed unless -keep)")
	fs.StringVar(&cfg.Redis, "redis", redisSingle, "Redis deployment: "+redisSingle+" (one redis-server) or "+redisCluster+
		" (a Redis Cluster of 3 masters and 3 replicas, NOTIONSYNC_QUEUE_SHARDS=3; chaos SIGKILLs a master instead of the single node, and the report adds the commands per master)")
	fs.DurationVar(&cfg.SchedulerTick, "tick", 0, "the scheduler's tick, NOTIONSYNC_SCHEDULER_TICK (default: the demo's 1s, not the shipped default)")
	fs.DurationVar(&cfg.LeaderLease, "leader-lease", 0, "the scheduler leader lease, NOTIONSYNC_LEADER_LEASE; more than twice -tick (default: the demo's 3s, not the shipped default)")
	production := fs.Bool("production-timing", false, "run the scheduler with the shipped NOTIONSYNC_SCHEDULER_TICK and NOTIONSYNC_LEADER_LEASE defaults instead of the demo's fast ones (-tick and -leader-lease still win)")
	fs.Func("env", "extra KEY=VALUE for every scheduler and worker, e.g. NOTIONSYNC_WORKER_POLL_INTERVAL=5s (repeatable; wins over the scenario's own)", func(kv string) error {
		if k, _, ok := strings.Cut(kv, "="); !ok || !strings.HasPrefix(k, "NOTIONSYNC_") {
			return fmt.Errorf("%q: want NOTIONSYNC_NAME=VALUE", kv)
		}
		cfg.Env = append(cfg.Env, kv)
		return nil
	})
	keepFlag := fs.Bool("keep", false, "keep the working folder")
	verboseFlag := fs.Bool("v", false, "print the cluster's progress lines")
	if err := fs.Parse(args); err != nil {
		return cfg, false, false, 2
	}
	if cfg.Connections < 1 || cfg.Workers < 1 || cfg.Concurrency < 1 || cfg.RateLimit < 1 || cfg.Pages < 1 || cfg.Duration < 0 {
		fmt.Fprintln(stderr, "fleet: -connections, -workers, -concurrency, -rate-limit and -pages must be positive")
		return cfg, false, false, 2
	}
	if *production {
		tick, lease, err := shippedTiming()
		if err != nil {
			fmt.Fprintln(stderr, "fleet:", err)
			return cfg, false, false, 2
		}
		cfg.SchedulerTick = cmp.Or(cfg.SchedulerTick, tick)
		cfg.LeaderLease = cmp.Or(cfg.LeaderLease, lease)
	}
	if cfg.SchedulerTick < 0 || cfg.LeaderLease < 0 {
		fmt.Fprintln(stderr, "fleet: -tick and -leader-lease must not be negative")
		return cfg, false, false, 2
	}
	// Said here rather than by the demo after the binaries are built.
	if tick, lease := cmp.Or(cfg.SchedulerTick, demo.DefaultSchedulerTick), cmp.Or(cfg.LeaderLease, demo.DefaultLeaderLease); lease <= 2*tick {
		fmt.Fprintf(stderr, "fleet: the leader lease %v must be more than twice the tick %v (set -leader-lease too)\n", lease, tick)
		return cfg, false, false, 2
	}
	if cfg.Redis != redisSingle && cfg.Redis != redisCluster {
		fmt.Fprintf(stderr, "fleet: -redis %q: want %s or %s\n", cfg.Redis, redisSingle, redisCluster)
		return cfg, false, false, 2
	}
	return cfg, *keepFlag, *verboseFlag, 0
}
