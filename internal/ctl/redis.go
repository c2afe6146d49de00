package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/config"
	"github.com/notionsync/notionsync/internal/keymigrate"
)

const redisHelp = "Talks to Redis directly, with the services' NOTIONSYNC_REDIS_* variables\n" +
	"(NOTIONSYNC_REDIS_URL, the Sentinel variables, NOTIONSYNC_REDIS_KEY_PREFIX), not to the\n" +
	"control plane. -server and the admin token are not used.\n\n" +
	"migrate-keys moves every key written before the Redis Cluster key scheme to its new,\n" +
	"hash-tagged name, in place, on a single Redis or Sentinel primary (a cluster is\n" +
	"refused): one connection at a time in one Lua script, with its index entries, so a\n" +
	"connection is wholly under the old or wholly under the new names. A connection whose\n" +
	"old refresh lock is held (a refresh in flight in an old-version process) is skipped\n" +
	"and retried for -lock-wait. Run it after every process runs the new version; it is\n" +
	"idempotent: run it again until it reports nothing moved. -dry-run counts what would\n" +
	"move. Progress goes to stderr, the summary to stdout (-output json for scripts). Exit\n" +
	"status 1 when connections were left (still locked, or conflicting keys): see\n" +
	"docs/runbook.md, \"Moving to the sharded key layout / Redis Cluster\". -timeout applies\n" +
	"only when given."

func setupRedis(fs *flag.FlagSet) runFunc {
	dryRun := fs.Bool("dry-run", false, "count what would move; change nothing")
	lockWait := fs.Duration("lock-wait", keymigrate.DefaultLockWait,
		"how long connections whose old refresh lock is held are retried")
	return func(ctx context.Context, r *runner, args []string) error {
		if len(args) != 1 || args[0] != "migrate-keys" {
			return usagef(r.cmd, "want the subcommand migrate-keys")
		}
		if *lockWait <= 0 {
			return usagef(r.cmd, "-lock-wait must be positive")
		}
		rc, err := config.LoadRedisFrom(func(k string) (string, bool) {
			v := r.env.Getenv(k)
			return v, v != ""
		})
		if err != nil {
			return usagef(r.cmd, "%v", err)
		}
		opts, err := rc.UniversalOptions()
		if err != nil {
			return usagef(r.cmd, "%v", err)
		}
		rdb := redis.NewUniversalClient(opts)
		defer rdb.Close()
		if _, ok := rdb.(*redis.ClusterClient); ok {
			// Said before any command: a cluster client's first command
			// would fail with a less telling error on a non-cluster node.
			return fmt.Errorf("redis at %s: %w", rc.Where(), keymigrate.ErrCluster)
		}
		if r.g.timeoutOK {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, r.g.timeout)
			defer cancel()
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = rdb.Ping(pctx).Err()
		cancel()
		if err != nil {
			return fmt.Errorf("redis at %s: %w", rc.Where(), err)
		}
		m, err := keymigrate.New(keymigrate.Config{
			Redis: rdb, KeyPrefix: rc.KeyPrefix, DryRun: *dryRun, LockWait: *lockWait,
			Progress: r.env.Stderr, Now: r.env.Now,
		})
		if err != nil {
			return err
		}
		res, runErr := m.Run(ctx)
		if errors.Is(runErr, keymigrate.ErrCluster) || errors.Is(runErr, keymigrate.ErrNotPrimary) {
			return fmt.Errorf("redis at %s: %w", rc.Where(), runErr)
		}
		if runErr != nil && !errors.As(runErr, new(*keymigrate.IncompleteError)) {
			return runErr
		}
		if r.jsonOutput() {
			if err := r.printValue(res); err != nil {
				return err
			}
		} else {
			verb := "moved"
			if res.DryRun {
				verb = "would move"
			}
			for _, l := range []struct {
				what string
				n    int
			}{
				{"connections found", res.Found}, {"connections " + verb, res.Connections},
				{"keys " + verb, res.Keys}, {"index entries " + verb, res.IndexEntries},
				{"OAuth flows " + verb, res.OAuthStates}, {"expired OAuth entries dropped", res.OAuthStale},
				{"locked (not moved)", len(res.Locked)}, {"conflicts (not moved)", len(res.Conflicts)},
				{"unknown keys left alone", res.UnknownKeys},
			} {
				r.outf("%-28s %d\n", l.what+":", l.n)
			}
			for _, c := range res.Conflicts {
				r.outf("conflict: %s: %s exists under its new name too\n", c.ConnID, c.Key)
			}
			for _, k := range res.UnknownSample {
				r.outf("unknown: %s\n", k)
			}
		}
		return runErr
	}
}
