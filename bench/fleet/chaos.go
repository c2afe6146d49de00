package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/notionsync/notionsync/internal/demo"
)

// Chaos faults, applied in turn.
const (
	faultKillWorker   = "SIGKILL a worker, restart it"
	faultKillLeader   = "SIGKILL the leader scheduler, restart it"
	faultRestartRedis = "SIGKILL Redis (AOF, fsync always), restart it"
)

// faultKillMaster is the Redis fault on a Redis Cluster (-redis cluster).
const faultKillMaster = "SIGKILL the busiest Redis master, replica promoted, node rejoins as replica"

var chaosFaults = []string{faultKillWorker, faultKillLeader, faultRestartRedis}

// faultsFor returns the chaos faults of cfg's Redis deployment.
func faultsFor(cfg Config) []string {
	if cfg.Redis != redisCluster {
		return chaosFaults
	}
	out := slices.Clone(chaosFaults)
	out[slices.Index(out, faultRestartRedis)] = faultKillMaster
	return out
}

// runChaos: while the connections sync with short token lifetimes, kill
// workers, the leader scheduler and Redis in turn; after each fault wait
// until every connection has been swept again (time to recover). At the
// end: no connection lost, one grant per rotation, no invalid_grant.
func runChaos(ctx context.Context, cfg Config) (rep *Report, err error) {
	rep = newReport(ScenarioChaos, cfg)
	h, _, err := setup(ctx, cfg, demo.Options{AccessTokenLifetime: cfg.TokenLifetime, Schedulers: 2}, rep, false)
	if h != nil {
		defer func() { err = errors.Join(err, stopErr(h)) }()
	}
	if err != nil {
		return nil, err
	}
	rep.figure("token lifetime", "%v; 2 schedulers; sweeps every %v", cfg.TokenLifetime, cfg.SyncInterval)
	faults := faultsFor(cfg)
	recovery, quiet := map[string][]time.Duration{}, map[string][]time.Duration{}
	failed := map[string]int{}
	var firstErr string
	end := time.Now().Add(cfg.Duration)
	for round := 0; round < len(faults) || time.Now().Before(end); round++ {
		kind := faults[round%len(faults)]
		at := time.Now()
		if err := inject(ctx, h, kind); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
		rec, err := h.waitRecovered(ctx, at, cfg.SyncTimeout)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			failed[kind]++
			if firstErr == "" {
				firstErr = kind + ": " + err.Error()
			}
			continue
		}
		recovery[kind] = append(recovery[kind], rec.last)
		if rec.quiet > 0 {
			quiet[kind] = append(quiet[kind], rec.quiet)
		}
	}
	for _, kind := range faults {
		ds := recovery[kind]
		rep.figure(kind, "%d times · recovered (every connection swept again) p50 %s · max %s · not recovered %d · all idle at once p50 %s · max %s (%d seen)",
			len(ds)+failed[kind], roundD(percentile(ds, 50)), roundD(percentile(ds, 100)), failed[kind],
			roundD(percentile(quiet[kind], 50)), roundD(percentile(quiet[kind], 100)), len(quiet[kind]))
	}
	total := 0
	for _, n := range failed {
		total += n
	}
	for _, mk := range h.masterKills {
		rep.figure("Redis master killed", "%s; replica %s promoted %s after the kill; the node rejoined as a replica after %s",
			mk.Killed, mk.Promoted, roundD(mk.Failover), roundD(mk.Rejoined))
	}
	rep.invariant(invRecovered, total == 0, "%d faults without recovery within %v%s", total, cfg.SyncTimeout, prefixed(firstErr))

	// Stop the workers so that the versions stand still, then count.
	views, st, qerr := h.stopWorkersAndCount(ctx)
	if views == nil {
		return nil, qerr
	}
	var rotations int64
	reasons := map[string]int{}
	for _, c := range h.conns {
		v := views[c.id]
		rotations += v.Version - 1
		if v.Status != "active" {
			reasons[v.Status+"/"+v.Reason]++
		}
	}
	grants := int64(st.Tokens.RefreshGrants)
	rep.figure("rotations stored (sum of version-1)", "%d; refresh grants at the token endpoint %d; invalid_grant %d",
		rotations, grants, st.Tokens.InvalidGrants)
	var lost []string
	for r, n := range reasons {
		lost = append(lost, fmt.Sprintf("%d %s", n, r))
	}
	rep.figure("connections not active", "%s", orNone(lost))
	// Nothing is edited during the run, so every page fetch beyond one per
	// page repeats work: a task a kill interrupted after its fetch and
	// before its sink write ran again, or the overlap rule fetched a page
	// once more because its stored copy was taken within its own
	// last-edited minute. Harmless (the sink keeps the newest), counted.
	fetched, pages := st.Data.ByEndpoint["pages.retrieve"][200], 0
	for _, c := range h.conns {
		pages += c.pages
	}
	rep.figure("duplicate page syncs", "%d page fetches for %d pages: %d repeats (%.1f%%; harmless)",
		fetched, pages, fetched-pages, 100*ratio(float64(fetched-pages), float64(pages)))
	rep.invariant(invOneGrant, grants == rotations && qerr == nil, "%d grants for %d rotations%s", grants, rotations, prefixed(errString(qerr)))
	if err := checkCommon(ctx, h, rep, 0, nil); err != nil {
		return nil, err
	}
	return rep, nil
}

func prefixed(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// inject applies one fault and brings the killed process back.
func inject(ctx context.Context, h *harness, kind string) error {
	switch kind {
	case faultKillWorker:
		i := rand.IntN(h.cfg.Workers)
		if err := h.c.KillWorker(i); err != nil {
			return err
		}
		return h.c.RestartWorker(ctx, i)
	case faultKillLeader:
		l, err := h.c.Leader(ctx)
		if err != nil {
			return err
		}
		if l < 0 {
			l = 0
		}
		if err := h.c.KillScheduler(l); err != nil {
			return err
		}
		return h.c.RestartScheduler(ctx, l)
	case faultRestartRedis:
		return h.c.RestartRedis(ctx)
	case faultKillMaster:
		mk, err := h.c.KillRedisMaster(ctx, -1)
		if err == nil {
			h.masterKills = append(h.masterKills, mk)
		}
		return err
	}
	return fmt.Errorf("unknown fault %q", kind)
}

// recovered is how long the fleet took to recover from one fault.
type recovered struct {
	// last: until the last connection was first seen synced by a sweep
	// that started after the fault (cursor at target, nothing pending).
	// This is the recovery time.
	last time.Duration
	// quiet: until one poll saw every connection so at once (0: not within
	// quietWait after last). A connection whose next sweep is running has
	// that sweep pending, so with 1,000 connections swept every 15 s this
	// also waits for an instant with no sweep in flight, which on a loaded
	// machine comes seconds after the last connection recovered. It was
	// the recovery figure before.
	quiet time.Duration
}

// quietWait bounds the wait for recovered.quiet once every connection has
// recovered.
const quietWait = 30 * time.Second

// waitRecovered polls until every connection has been synced by a sweep
// that started after at, each counted the first time it is seen so; then,
// for at most quietWait, until one poll sees them all so at once.
func (h *harness) waitRecovered(ctx context.Context, at time.Time, timeout time.Duration) (recovered, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rec recovered
	seen := make(map[string]bool, len(h.conns))
	last := ""
	var lastLog time.Time
	for {
		views, err := h.list(ctx)
		if err == nil {
			left := 0
			var first []string
			for _, c := range h.conns {
				v := views[c.id]
				if v.synced(c.pages) && v.Sync.LastSweep.After(at) {
					seen[c.id] = true
					continue
				}
				left++
				if !seen[c.id] && len(first) < 1 {
					first = append(first, fmt.Sprintf("%s %s %s", c.id, v.Status, v.Reason))
				}
			}
			if rec.last == 0 && len(seen) == len(h.conns) {
				rec.last = time.Since(at)
			}
			if left == 0 {
				rec.quiet = time.Since(at)
				return rec, nil
			}
			last = fmt.Sprintf("%d not swept again (first: %s)", len(h.conns)-len(seen), strings.Join(first, ", "))
			// With -v, who is still waiting and in what state, every 5 s:
			// a slow recovery's cause shows in the laggards' sync state.
			if time.Since(lastLog) >= 5*time.Second && len(seen) < len(h.conns) {
				lastLog = time.Now()
				fmt.Fprintf(h.cfg.Log, "fleet: %s after the fault: %s; %s\n", roundD(time.Since(at)), last, laggard(views, h.conns, seen))
			}
		} else {
			last = err.Error()
		}
		if rec.last > 0 && time.Since(at) > rec.last+quietWait {
			return rec, nil
		}
		if err := sleep(ctx, pollEvery); err != nil {
			if rec.last > 0 {
				return rec, nil
			}
			return rec, fmt.Errorf("%s", last)
		}
	}
}

// waitSweptAfter polls until every connection is synced by a sweep that
// ran after at.
func (h *harness) waitSweptAfter(ctx context.Context, at time.Time, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		views, err := h.list(ctx)
		if err == nil {
			left := 0
			var first []string
			for _, c := range h.conns {
				v := views[c.id]
				if v.synced(c.pages) && v.Sync.LastSweep.After(at) {
					continue
				}
				left++
				if len(first) < 1 {
					first = append(first, fmt.Sprintf("%s %s %s", c.id, v.Status, v.Reason))
				}
			}
			if left == 0 {
				return nil
			}
			last = fmt.Sprintf("%d not swept again (first: %s)", left, strings.Join(first, ", "))
		} else {
			last = err.Error()
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return fmt.Errorf("%s", last)
		}
	}
}

// laggard describes the sync state of the first connection not yet seen
// swept again, for the -v progress lines.
func laggard(views map[string]connView, conns []*conn, seen map[string]bool) string {
	for _, c := range conns {
		if seen[c.id] {
			continue
		}
		v := views[c.id]
		if v.Sync == nil {
			return c.id + ": no sync state"
		}
		s := v.Sync
		return fmt.Sprintf("%s: status %s, cursor %s, target %s, pending %d, last sweep %s, errors %v",
			c.id, v.Status, s.Cursor.Format(time.RFC3339Nano), s.Target.Format(time.RFC3339Nano), s.Pending,
			s.LastSweep.Format(time.RFC3339Nano), s.Errors)
	}
	return ""
}
