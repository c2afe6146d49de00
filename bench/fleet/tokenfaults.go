package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/notionsync/notionsync/internal/demo"
	"github.com/notionsync/notionsync/internal/sandbox"
)

// Token-call settings token-faults gives notionsync (through the Cluster's
// Env, which wins over its own): short, so that a token endpoint slower
// than the lock TTL fits in a run. config requires the lock TTL to exceed
// twice the call timeout.
const (
	tfCallTimeout = 2 * time.Second
	tfLockTTL     = 5 * time.Second
	// tfSlowInside is a latency the call timeout tolerates; tfSlowBeyond
	// one longer than the lock TTL (and so than the call timeout).
	tfSlowInside = 1500 * time.Millisecond
	tfSlowBeyond = tfLockTTL + time.Second
)

// reasonLostRotation is tokens.ReasonLostRotation as the admin API shows it.
const reasonLostRotation = "lost_rotation_response"

// tokenFault is one fault of the token endpoint. A held fault (latency) is
// set, kept for a window and cleared; a queued fault (fail_next,
// rotate_then_drop_next) is served by the next n token requests.
type tokenFault struct {
	name string
	set  map[string]any
	// clear, for a held fault, ends it.
	clear map[string]any
	// served, for a queued fault, is the sandbox counter that advances as
	// the fault is served; n is how many were queued.
	served func(sandbox.TokenStats) int
	n      int
	// lossy: the fault can lose a committed rotation (the sandbox rotates,
	// then its answer never reaches notionsync). Such connections must turn
	// needs_reauth with reason lost_rotation_response, one invalid_grant
	// received each; every other fault must lose none.
	lossy bool
}

// tokenFaults lists the faults in the order token-faults applies them; the
// one that loses the most connections comes last.
func tokenFaults(cfg Config) []tokenFault {
	n5xx := max(5, cfg.Connections/10)
	nDrop := max(2, cfg.Connections/50)
	latency := func(d time.Duration) map[string]any {
		return map[string]any{"target": "token", "latency": d.String()}
	}
	return []tokenFault{
		{
			name: fmt.Sprintf("token endpoint slow (%v, inside the %v call timeout)", tfSlowInside, tfCallTimeout),
			set:  latency(tfSlowInside), clear: latency(0),
		},
		{
			name:   fmt.Sprintf("token endpoint answers 500 to the next %d requests", n5xx),
			set:    map[string]any{"target": "token", "fail_next": n5xx, "status": 500},
			served: func(t sandbox.TokenStats) int { return t.InjectedFailures }, n: n5xx,
		},
		{
			name:   fmt.Sprintf("token endpoint rotates then drops the next %d refreshes", nDrop),
			set:    map[string]any{"target": "token", "rotate_then_drop_next": nDrop},
			served: func(t sandbox.TokenStats) int { return t.Dropped }, n: nDrop,
			lossy: true,
		},
		{
			name: fmt.Sprintf("token endpoint slower than the lock TTL (%v; lock TTL %v, call timeout %v)", tfSlowBeyond, tfLockTTL, tfCallTimeout),
			set:  latency(tfSlowBeyond), clear: latency(0),
			lossy: true,
		},
	}
}

// lostConns maps each connection that is not active to "status/reason".
func lostConns(views map[string]connView, conns []*conn) map[string]string {
	out := map[string]string{}
	for _, c := range conns {
		if v := views[c.id]; v.Status != "active" {
			out[c.id] = v.Status + "/" + v.Reason
		}
	}
	return out
}

// newlyLost returns the entries of now that before lacks, and counts them
// by status/reason.
func newlyLost(before, now map[string]string) (ids []string, byReason map[string]int) {
	byReason = map[string]int{}
	for id, r := range now {
		if _, ok := before[id]; !ok {
			ids = append(ids, id)
			byReason[r]++
		}
	}
	sort.Strings(ids)
	return ids, byReason
}

// reasonsString prints counts by status/reason, most first.
func reasonsString(byReason map[string]int) string {
	parts := make([]string, 0, len(byReason))
	for r, n := range byReason {
		parts = append(parts, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(parts)
	return orNone(parts)
}

// onlyLostRotation reports whether every reason is needs_reauth with
// lost_rotation_response.
func onlyLostRotation(byReason map[string]int) bool {
	for r := range byReason {
		if r != "needs_reauth/"+reasonLostRotation {
			return false
		}
	}
	return true
}

// waitSettled polls until every connection is either needs_reauth or
// synced by a sweep that ran after at.
func (h *harness) waitSettled(ctx context.Context, at time.Time, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		views, err := h.list(ctx)
		if err == nil {
			left, first := 0, ""
			for _, c := range h.conns {
				v := views[c.id]
				if v.Status == "needs_reauth" || (v.synced(c.pages) && v.Sync.LastSweep.After(at)) {
					continue
				}
				if left++; left == 1 {
					first = fmt.Sprintf("%s %s %s", c.id, v.Status, v.Reason)
				}
			}
			if left == 0 {
				return nil
			}
			last = fmt.Sprintf("%d neither swept again nor needs_reauth (first: %s)", left, first)
		} else {
			last = err.Error()
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return errors.New(last)
		}
	}
}

// waitServed polls the sandbox until f's counter moved n past base.
func (h *harness) waitServed(ctx context.Context, f tokenFault, base int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := h.sandboxStats(ctx)
		if err != nil {
			return 0, err
		}
		got := f.served(st.Tokens) - base
		if got >= f.n {
			return got, nil
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("%d of %d served within %v", got, f.n, timeout)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return got, err
		}
	}
}

// runTokenFaults: during a refresh storm, make the token endpoint slow
// (inside the call timeout, then beyond the lock TTL), answer 500, and
// rotate then drop its answers. Per fault: connections lost and why,
// invalid_grant, time to recover. A fault that answers nothing committed
// (500, latency inside the deadline) must lose no connection and cause no
// invalid_grant; one that loses committed rotations (drop, latency beyond
// the deadline) must lose exactly those connections, each needs_reauth with
// reason lost_rotation_response and one invalid_grant received (answers
// that came after the call timeout were never received and are counted
// apart). At the end, every grant the sandbox made is a stored rotation or
// a lost connection's.
func runTokenFaults(ctx context.Context, cfg Config) (rep *Report, err error) {
	rep = newReport(ScenarioTokenFaults, cfg)
	opts := demo.Options{AccessTokenLifetime: cfg.TokenLifetime, Env: []string{
		"NOTIONSYNC_TOKEN_CALL_TIMEOUT=" + tfCallTimeout.String(),
		"NOTIONSYNC_REFRESH_LOCK_TTL=" + tfLockTTL.String(),
	}}
	h, _, err := setup(ctx, cfg, opts, rep, false)
	if h != nil {
		defer func() { err = errors.Join(err, stopErr(h)) }()
	}
	if err != nil {
		return nil, err
	}
	hold := max(cfg.Duration/4, tfSlowBeyond)
	rep.figure("token lifetime", "%v; token call timeout %v; refresh lock TTL %v; held faults last %v; sweeps every %v",
		cfg.TokenLifetime, tfCallTimeout, tfLockTTL, roundD(hold), cfg.SyncInterval)

	unreceived := 0 // invalid_grant answers notionsync had stopped waiting for
	for _, f := range tokenFaults(cfg) {
		views, err := h.list(ctx)
		if err != nil {
			return nil, err
		}
		lostBefore := lostConns(views, h.conns)
		st0, err := h.sandboxStats(ctx)
		if err != nil {
			return nil, err
		}
		at := time.Now()
		if err := h.c.SetSandboxFaults(ctx, f.set); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		var faultErr error
		served := 0
		stEnd := st0 // a held fault: the counters once it was cleared
		if f.served != nil {
			served, faultErr = h.waitServed(ctx, f, f.served(st0.Tokens), cfg.SyncTimeout)
		} else {
			if err := sleep(ctx, hold); err != nil {
				return nil, err
			}
			if err := h.c.SetSandboxFaults(ctx, f.clear); err != nil {
				return nil, fmt.Errorf("%s: clear: %w", f.name, err)
			}
			if stEnd, err = h.sandboxStats(ctx); err != nil {
				return nil, err
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		ended := time.Now()
		if faultErr == nil {
			faultErr = h.waitSettled(ctx, ended, cfg.SyncTimeout)
		}
		recovered := time.Since(ended)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		views, err = h.list(ctx)
		if err != nil {
			return nil, err
		}
		st1, err := h.sandboxStats(ctx)
		if err != nil {
			return nil, err
		}
		_, byReason := newlyLost(lostBefore, lostConns(views, h.conns))
		lost := 0
		for _, n := range byReason {
			lost += n
		}
		ig := st1.Tokens.InvalidGrants - st0.Tokens.InvalidGrants
		dropped := st1.Tokens.Dropped - st0.Tokens.Dropped
		// While a latency beyond the call timeout held, every answer came
		// after notionsync had given up: the invalid_grant answers of
		// those retries (same refresh token, outcome unknown) were never
		// received. Those answered after the fault are the ones judged.
		unheard := 0
		if f.lossy && f.served == nil {
			unheard = stEnd.Tokens.InvalidGrants - st0.Tokens.InvalidGrants
			unreceived += unheard
		}
		igNote := ""
		if unheard > 0 {
			igNote = fmt.Sprintf(" (%d answered while the latency held, after the call timeout: never received)", unheard)
		}
		rep.figure(f.name, "%s long · connections lost %s · invalid_grant %d%s · refresh grants %d · 5xx served %d · dropped %d · recovered (every live connection swept again) %s after the fault ended",
			roundD(ended.Sub(at)), reasonsString(byReason), ig, igNote, st1.Tokens.RefreshGrants-st0.Tokens.RefreshGrants,
			st1.Tokens.InjectedFailures-st0.Tokens.InjectedFailures, dropped, roundD(recovered))
		recDetail := fmt.Sprintf("recovered in %s", roundD(recovered))
		if f.served != nil {
			recDetail = fmt.Sprintf("%d of %d served; %s", served, f.n, recDetail)
		}
		if faultErr != nil {
			recDetail += ": " + faultErr.Error()
		}
		rep.invariant(f.name+": recovered", faultErr == nil, "%s", recDetail)
		if !f.lossy {
			rep.invariant(f.name+": no connection lost, no invalid_grant", lost == 0 && ig == 0,
				"%d lost (%s), %d invalid_grant", lost, reasonsString(byReason), ig)
			continue
		}
		ok := onlyLostRotation(byReason) && ig-unheard == lost
		detail := fmt.Sprintf("%d lost (%s), %d invalid_grant received", lost, reasonsString(byReason), ig-unheard)
		if f.served != nil {
			// Exactly the dropped rotations' connections, at most n.
			ok = ok && lost == dropped && lost <= f.n
			detail += fmt.Sprintf(", %d rotations dropped (at most %d)", dropped, f.n)
		}
		rep.invariant(f.name+": lost only the connections whose rotation answer was lost, as "+reasonLostRotation, ok, "%s", detail)
	}

	// Stop the workers so that the versions stand still, then count: every
	// grant is a stored rotation, or the lost rotation of a connection that
	// turned needs_reauth for it.
	views, st, qerr := h.stopWorkersAndCount(ctx)
	if views == nil {
		return nil, qerr
	}
	var rotations int64
	for _, c := range h.conns {
		rotations += views[c.id].Version - 1
	}
	lostIDs, byReason := newlyLost(nil, lostConns(views, h.conns))
	lostRot := int64(byReason["needs_reauth/"+reasonLostRotation])
	grants := int64(st.Tokens.RefreshGrants)
	rep.figure("rotations stored (sum of version-1)", "%d; refresh grants at the token endpoint %d; invalid_grant %d; token requests %d",
		rotations, grants, st.Tokens.InvalidGrants, st.Tokens.TokenRequests)
	rep.figure("connections not active (end)", "%d of %d: %s", len(lostIDs), len(h.conns), reasonsString(byReason))
	rep.invariant("no reason other than "+reasonLostRotation, onlyLostRotation(byReason), "%s", reasonsString(byReason))
	rep.invariant(invOneGrant+" (plus one per lost rotation)", grants == rotations+lostRot && qerr == nil,
		"%d grants for %d rotations stored + %d lost%s", grants, rotations, lostRot, prefixed(errString(qerr)))
	rep.invariant(invNoInvalidGrant+" (one received per lost rotation)", int64(st.Tokens.InvalidGrants-unreceived) == lostRot,
		"%d invalid_grant received (%d answered, %d after the call timeout) for %d lost rotations",
		st.Tokens.InvalidGrants-unreceived, st.Tokens.InvalidGrants, unreceived, lostRot)
	var crashed []string
	for _, p := range h.c.Processes() {
		if p.Unexpected() {
			crashed = append(crashed, fmt.Sprintf("%s (%v)", p.Name(), p.ExitErr()))
		}
	}
	rep.invariant(invNoCrash, len(crashed) == 0, "%s", orNone(crashed))
	return rep, nil
}
