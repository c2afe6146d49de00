package demo

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/notionsync/notionsync/internal/ctl"
)

// RunOptions says how long Run watches the cluster.
type RunOptions struct {
	// Duration stops the demo after this long; 0 runs until ctx ends.
	Duration time.Duration
	// UntilSynced stops the demo once the workspace is completely synced.
	UntilSynced bool
	// Interval is the time between progress lines. Default 2s.
	Interval time.Duration
}

// Run is the demo: it starts a Cluster, prints where everything is,
// connects the sandbox's workspace through the OAuth flow, prints progress
// until ctx ends (Ctrl-C), Duration passes or, with UntilSynced, the sync is
// complete, then stops every process and prints where the synced files are.
// It returns nil after a stop on request, and an error when something
// failed, including processes that crashed meanwhile.
func Run(ctx context.Context, opts Options, ro RunOptions) (err error) {
	c, err := New(opts)
	if err != nil {
		return err
	}
	out := c.opts.Out
	if err := c.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting; Start stopped what it had started
		}
		return err
	}
	defer func() {
		fmt.Fprintln(out, "demo: stopping (workers hand unfinished tasks back; Ctrl-C again to force)")
		stopErr := c.Stop()
		fmt.Fprintf(out, "demo: stopped. Synced files: %s\ndemo: logs: %s\n",
			filepath.Join(c.SyncedDir(), c.ConnectionID(), "pages"), c.LogDir())
		err = errors.Join(err, stopErr)
	}()
	c.PrintBanner()

	if _, err := c.Connect(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	wctx := ctx
	if ro.Duration > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, ro.Duration)
		defer cancel()
	}
	var until func(Progress) bool
	if ro.UntilSynced {
		until = func(p Progress) bool { return p.Complete }
	}
	p, werr := c.Watch(wctx, ro.Interval, until)
	switch {
	case werr == nil:
		fmt.Fprintf(out, "demo: workspace completely synced: %d pages, %d blocks\n", p.PagesSynced, p.BlocksSynced)
	case ctx.Err() == nil && errors.Is(werr, context.DeadlineExceeded):
		fmt.Fprintf(out, "demo: %v passed\n", ro.Duration)
	}
	return nil
}

// PrintBanner writes to Options.Out where the cluster's endpoints, files
// and logs are. It shows the admin token: the demo's credential is
// generated per run, for the person running it.
func (c *Cluster) PrintBanner() {
	o := c.opts
	out := o.Out
	token := c.AdminToken()
	fmt.Fprintf(out, "\nnotionsync demo: %d scheduler(s), %d worker(s) of %d slots, Redis and the Notion sandbox\n",
		o.Schedulers, o.Workers, o.WorkerConcurrency)
	fmt.Fprintf(out, "  admin API     %s\n", c.APIURL())
	fmt.Fprintf(out, "                curl -H 'Authorization: Bearer %s' %s\n", token, c.APIURL())
	// The exact lines to paste, so notionsyncctl in another terminal talks
	// to this demo (the token is generated per run).
	fmt.Fprintf(out, "  notionsyncctl export %s=%s\n", ctl.EnvServer, c.PublicURL())
	fmt.Fprintf(out, "                export %s=%s\n", ctl.EnvToken, token)
	fmt.Fprintf(out, "                %s list\n", filepath.Join(o.BinDir, "notionsyncctl"))
	fmt.Fprintf(out, "  asynqmon      %s  (user: anything, password: the admin token)\n", c.AsynqmonURL())
	fmt.Fprintf(out, "  admin token   %s\n", token)
	fmt.Fprintf(out, "  OAuth start   %s/oauth/start  (connect the sandbox workspace again from a browser)\n", c.PublicURL())
	fmt.Fprintf(out, "  sandbox       %s/_sandbox/stats  (also /_sandbox/expected, /_sandbox/faults)\n", c.SandboxURL())
	fmt.Fprintf(out, "  synced files  %s\n", c.SyncedDir())
	fmt.Fprintf(out, "  logs          %s\n", c.LogDir())
	fmt.Fprintf(out, "  access tokens live %v and are refreshed %v to %v before they expire\n\n",
		o.AccessTokenLifetime, o.RefreshMargin, o.RefreshMargin+o.RefreshJitter)
}
