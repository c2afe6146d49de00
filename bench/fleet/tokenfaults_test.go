package main

import (
	"maps"
	"testing"

	"github.com/notionsync/notionsync/internal/sandbox"
)

func TestNewlyLostCountsOnlyNewConnectionsByReason(t *testing.T) {
	conns := []*conn{{id: "a"}, {id: "b"}, {id: "c"}, {id: "d"}}
	views := map[string]connView{
		"a": {Status: "active"},
		"b": {Status: "needs_reauth", Reason: reasonLostRotation},
		"c": {Status: "needs_reauth", Reason: "revoked"},
		"d": {Status: "needs_reauth", Reason: reasonLostRotation},
	}
	now := lostConns(views, conns)
	if len(now) != 3 || now["a"] != "" {
		t.Fatalf("lostConns = %v, want b, c, d", now)
	}
	ids, byReason := newlyLost(map[string]string{"d": "needs_reauth/" + reasonLostRotation}, now)
	if len(ids) != 2 || ids[0] != "b" || ids[1] != "c" {
		t.Errorf("ids %v, want [b c]", ids)
	}
	want := map[string]int{"needs_reauth/" + reasonLostRotation: 1, "needs_reauth/revoked": 1}
	if !maps.Equal(byReason, want) {
		t.Errorf("byReason %v, want %v", byReason, want)
	}
	if onlyLostRotation(byReason) {
		t.Error("onlyLostRotation accepted a revoked connection")
	}
	if !onlyLostRotation(map[string]int{"needs_reauth/" + reasonLostRotation: 3}) || !onlyLostRotation(nil) {
		t.Error("onlyLostRotation rejected lost rotations only")
	}
	if got := reasonsString(byReason); got != "1 needs_reauth/lost_rotation_response, 1 needs_reauth/revoked" {
		t.Errorf("reasonsString = %q", got)
	}
}

func TestTokenFaultsAreWellFormed(t *testing.T) {
	fs := tokenFaults(Config{Connections: 300})
	if len(fs) != 4 {
		t.Fatalf("%d faults, want 4", len(fs))
	}
	if tfLockTTL <= 2*tfCallTimeout || tfSlowBeyond <= tfLockTTL || tfSlowInside >= tfCallTimeout {
		t.Fatalf("latencies: inside %v, beyond %v; call timeout %v, lock TTL %v", tfSlowInside, tfSlowBeyond, tfCallTimeout, tfLockTTL)
	}
	for _, f := range fs {
		if f.set["target"] != "token" {
			t.Errorf("%s: target %v, want token", f.name, f.set["target"])
		}
		held, queued := f.clear != nil, f.served != nil
		if held == queued {
			t.Errorf("%s: want either clear (held) or served (queued)", f.name)
		}
		if queued && f.n < 1 {
			t.Errorf("%s: n %d", f.name, f.n)
		}
	}
	// Only the faults that lose a committed rotation may lose connections.
	if fs[0].lossy || fs[1].lossy || !fs[2].lossy || !fs[3].lossy {
		t.Error("lossy flags: want slow-inside and 500 lossless, drop and slow-beyond lossy")
	}
	if got := fs[1].served(sandbox.TokenStats{InjectedFailures: 7, Dropped: 2}); got != 7 {
		t.Errorf("500 fault counts %d, want injected failures", got)
	}
	if got := fs[2].served(sandbox.TokenStats{InjectedFailures: 7, Dropped: 2}); got != 2 {
		t.Errorf("drop fault counts %d, want dropped", got)
	}
	if fs[3].set["latency"] != tfSlowBeyond.String() {
		t.Errorf("slow-beyond latency %v", fs[3].set["latency"])
	}
}
