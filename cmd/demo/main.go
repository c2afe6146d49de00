// Command demo runs notionsync locally against the Notion sandbox: Redis,
// notion-sandbox, the scheduler and three workers as child processes, the
// file sink under -dir. It connects the sandbox's workspace through the real
// OAuth redirect flow and prints progress until Ctrl-C (or -duration), then
// stops everything and leaves the synced files in place. `make demo` builds
// the binaries and runs it; see package internal/demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/notionsync/notionsync/internal/buildinfo"
	"github.com/notionsync/notionsync/internal/demo"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout))
}

func run(args []string, stdout io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var (
		opts  demo.Options
		ro    demo.RunOptions
		pages int
		dbs   int
		rows  int
	)
	fs.StringVar(&opts.Dir, "dir", demo.DefaultDir, "working `directory`: logs/, synced/ (the synced files) and redis/")
	fs.IntVar(&opts.Workers, "workers", demo.DefaultWorkers, "worker processes")
	fs.IntVar(&opts.Schedulers, "schedulers", demo.DefaultSchedulers, "scheduler replicas")
	fs.StringVar(&opts.BinDir, "bin", demo.DefaultBinDir, "`directory` with the worker, scheduler and notion-sandbox binaries")
	fs.DurationVar(&opts.AccessTokenLifetime, "access-token-lifetime", demo.DefaultAccessTokenLifetime,
		"lifetime of the sandbox's access tokens (short, so refreshes happen while you watch)")
	fs.DurationVar(&opts.SyncInterval, "sync-interval", demo.DefaultSyncInterval, "how often the workspace is swept")
	fs.BoolVar(&opts.RedisCluster, "redis-cluster", false, "run Redis as a Redis Cluster of 3 masters and 3 replicas (6 redis-server processes; needs redis-cli) instead of one server")
	fs.IntVar(&opts.RateLimit, "rate-limit", demo.DefaultRateLimit, "notionsync's Notion requests per minute per connection")
	fs.IntVar(&pages, "pages", 100, "pages the sandbox seeds (database rows not included)")
	fs.IntVar(&dbs, "databases", 2, "databases the sandbox seeds")
	fs.IntVar(&rows, "rows", 10, "rows per database")
	fs.DurationVar(&ro.Duration, "duration", 0, "stop after this long (0: run until Ctrl-C)")
	fs.BoolVar(&ro.UntilSynced, "until-synced", false, "stop once the workspace is completely synced")
	version := fs.Bool("version", false, "print the build (module version, commit, Go version) and exit")
	fs.DurationVar(&ro.Interval, "interval", 2*time.Second, "time between progress snapshots (a line is printed when it changes, and at least every 30s)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: demo [flags] [-- notion-sandbox flags]\n\n"+
			"Runs notionsync (scheduler, workers, Redis) locally against the Notion sandbox.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, buildinfo.String("demo"))
		return 0
	}
	opts.SandboxArgs = append([]string{
		"-pages", strconv.Itoa(pages), "-nested-pages", strconv.Itoa(pages / 5),
		"-databases", strconv.Itoa(dbs), "-rows", strconv.Itoa(rows),
	}, fs.Args()...)
	opts.Out = stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills the demo; its children die with it
	}()
	if err := demo.Run(ctx, opts, ro); err != nil {
		fmt.Fprintln(os.Stderr, err) // errors of package demo start with "demo:"
		return 1
	}
	return 0
}
