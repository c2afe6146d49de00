//go:build keymigrate_fixture

package keymigrate

// TestGenerateFixture wrote testdata/old-layout.json at e4807bb, the last
// commit with the old key layout:
//
//	go test -tags keymigrate_fixture -run TestGenerateFixture ./internal/keymigrate/
//
// The token records, timelines, due, connections and status indexes and
// status:indexed come from the real tokens.Store of that commit; the jobs,
// scheduler, limiter and control plane keys are written with the names and
// value formats of that commit's jobs/state.go, jobs/lease.go,
// jobs/errindex.go, jobs/reconcile.go, jobs/users.go,
// internal/schedule/scheduler.go, sync/notionclient/limiter.go,
// internal/app/reauth.go and internal/control (those write them from task
// handlers that need a Notion). Run on later code it would write the new
// layout: it is kept to show how the fixture was made, not to run again.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/tokens"
)

func TestGenerateFixture(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartTB(t, redistest.Options{})
	rdb := srv.Client()
	defer rdb.Close()
	const p = "notionsync:"
	kr, err := tokens.NewKeyring(tokens.Key{ID: "fixture", Secret: fixtureKeySecret})
	if err != nil {
		t.Fatal(err)
	}
	st, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: kr, KeyPrefix: p})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 12)
	for i := range ids {
		ids[i] = fmt.Sprintf("conn-%02d", i)
		g := &tokens.Grant{AccessToken: "at-" + ids[i], RefreshToken: "rt-" + ids[i], ExpiresIn: time.Hour}
		if _, err := st.Connect(ctx, ids[i], g, tokens.Timing{}, tokens.ConnectOptions{
			Meta: map[string]string{"workspace_id": fmt.Sprintf("ws-%02d", i), "workspace_name": "Workspace " + ids[i]}}); err != nil {
			t.Fatal(err)
		}
	}
	// A workspace connection id as the control plane makes them.
	wsID := "ws-9f6e2c1a0b7d4e3f8a5b6c7d8e9f0a1b"
	if _, err := st.Connect(ctx, wsID, &tokens.Grant{AccessToken: "at-ws", RefreshToken: "rt-ws"}, tokens.Timing{},
		tokens.ConnectOptions{Meta: map[string]string{"workspace_id": "9f6e2c1a-0b7d-4e3f-8a5b-6c7d8e9f0a1b"}}); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.Pause(ctx, ids[3]))
	must(st.Pause(ctx, ids[4]))
	must(st.MarkNeedsReauth(ctx, ids[5], "revoked in the fixture"))
	must(st.Disconnect(ctx, ids[6]))
	// Reconnect one to give it a longer timeline and version 2.
	if _, err := st.Connect(ctx, ids[7], &tokens.Grant{AccessToken: "at2", RefreshToken: "rt2"}, tokens.Timing{}, tokens.ConnectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.IndexStatuses(ctx); err != nil {
		t.Fatal(err)
	}

	now := time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC).UnixMilli()
	ms := func(d time.Duration) string { return fmt.Sprint(now + d.Milliseconds()) }
	pipe := rdb.Pipeline()
	for i, id := range ids[:6] {
		// jobs/state.go: the sync hash, pending set, errors, dbcur, todo.
		pipe.HSet(ctx, p+"sync:"+id, "cursor", ms(-time.Hour), "target", ms(-30*time.Minute),
			"last_sweep", ms(-10*time.Minute), "last_sync", ms(-9*time.Minute), "pages_synced", fmt.Sprint(40+i))
		pipe.SAdd(ctx, p+"sync:"+id+":pending", "page:0b1c2d3e-"+id, "db:4f5a6b7c-"+id)
		pipe.HSet(ctx, p+"sync:"+id+":errors", "page:bad-"+id,
			`{"since":`+ms(-time.Hour)+`,"kind":"permanent","msg":"object too large"}`, "search:0a1b2c3d4e5f", "plain message written before kinds")
		pipe.HSet(ctx, p+"sync:"+id+":dbcur", "4f5a6b7c-"+id, ms(-2*time.Hour))
		pipe.HSet(ctx, p+"sync:"+id+":todo", "0b1c2d3e-"+id, `{"v":`+ms(-5*time.Minute)+`,"depth":0}`)
		pipe.HSet(ctx, p+"sync:"+id+":recon", "running", "0", "last_started", ms(-24*time.Hour),
			"last_finished", ms(-23*time.Hour), "last", `{"listed":12,"fetched":1,"tombstoned":0}`)
		pipe.Set(ctx, p+"sync:"+id+":users", ms(-30*time.Minute), 0)
		pipe.ZAdd(ctx, p+"sweeps", redis.Z{Score: float64(now + int64(i)*60000), Member: id})
		// jobs/errindex.go
		pipe.ZAdd(ctx, p+"sync:errored", redis.Z{Score: 0, Member: id})
		// sync/notionclient/limiter.go: the GCRA's theoretical arrival time.
		pipe.Set(ctx, p+"notion:{"+id+"}:gcra", fmt.Sprint(now*1000), 3*time.Second)
		// jobs/state.go: the page checkpoint hash and a capped mark.
		pipe.HSet(ctx, p+"ckpt:"+id+":tree:0b1c2d3e-"+id, "0b1c2d3e-"+id, `{"next":"cur-1"}`)
		pipe.Expire(ctx, p+"ckpt:"+id+":tree:0b1c2d3e-"+id, 24*time.Hour)
		pipe.Set(ctx, p+"capped:"+id+":deadbeef-"+id, ms(-time.Hour), 7*24*time.Hour)
	}
	// A sweep and a drain running on conn-00 (jobs/state.go, jobs/lease.go).
	pipe.Set(ctx, p+"ckpt:conn-00:sweep:search", `{"next":"cursor-7","pass":`+ms(-time.Minute)+`}`, 24*time.Hour)
	pipe.Set(ctx, p+"drain:conn-00", "worker-1/42", 8*time.Second)
	pipe.Set(ctx, p+"busy:conn-00:page:0b1c2d3e-conn-00", "worker-1/42", 8*time.Second)
	pipe.ZAdd(ctx, p+"busy:leases",
		redis.Z{Score: float64(now + 8000), Member: "drain\nconn-00\nworker-1/42"},
		redis.Z{Score: float64(now + 8000), Member: "sweep\nconn-00\nworker-1/43"},
		redis.Z{Score: float64(now + 8000), Member: "db\nconn-01\nworker-2/7\n4f5a6b7c-conn-01"})
	// A reconciliation pass in progress on conn-01 (jobs/reconcile.go).
	pipe.Set(ctx, p+"recon:conn-01", `{"pass":`+ms(-time.Hour)+`,"phase":"walk","counts":{}}`, 7*24*time.Hour)
	pipe.SAdd(ctx, p+"recon:conn-01:seen", "0b1c2d3e-conn-01", "4f5a6b7c-conn-01")
	pipe.Expire(ctx, p+"recon:conn-01:seen", 7*24*time.Hour)
	pipe.RPush(ctx, p+"recon:conn-01:walk", "4f5a6b7c-conn-01")
	pipe.Expire(ctx, p+"recon:conn-01:walk", 7*24*time.Hour)
	pipe.RPush(ctx, p+"recon:conn-01:check", "77777777-conn-01")
	pipe.Expire(ctx, p+"recon:conn-01:check", 7*24*time.Hour)
	pipe.Set(ctx, p+"recon:conn-01:lock", "worker-2/9", 30*time.Second)
	// The limiter backing off conn-02 after a 429.
	pipe.Set(ctx, p+"notion:{conn-02}:backoff", "1", 20*time.Second)
	// internal/app/reauth.go: the needs_reauth webhook was sent for conn-05.
	pipe.Set(ctx, p+"reauth-notified:conn-05:2", "1", 7*24*time.Hour)
	// A stale due entry without a record (a connection deleted by hand).
	pipe.ZAdd(ctx, p+"due", redis.Z{Score: float64(now), Member: "ghost-01"})
	// Keys that keep their names (internal/schedule, internal/control).
	pipe.Set(ctx, p+"scheduler:leader", "scheduler-1", time.Minute)
	pipe.HSet(ctx, p+"sweeps:cursor", "tail", "conn-05", "rescan", ms(-time.Hour))
	pipe.SAdd(ctx, p+"workspace:ws-00:connections", "conn-00")
	// internal/control/oauth.go: two OAuth flows in progress (the cap
	// zset's members are the state keys' full names) and an expired one
	// still counted.
	for _, d := range []string{"0a1b2c3d", "4e5f6a7b"} {
		pipe.Set(ctx, p+"oauth:state:"+d, `{"conn":"conn-08"}`, 10*time.Minute)
		pipe.ZAdd(ctx, p+"oauth:states", redis.Z{Score: float64(now + 600000), Member: p + "oauth:state:" + d})
	}
	pipe.ZAdd(ctx, p+"oauth:states", redis.Z{Score: float64(now - 1000), Member: p + "oauth:state:99999999"})
	pipe.Expire(ctx, p+"oauth:states", 10*time.Minute)
	// internal/control/notion_webhook.go: verification token, an event
	// seen, and a connection's entity de-duplication mark.
	pipe.Set(ctx, p+"webhook:notion:verification", "token-xyz", 0)
	pipe.Set(ctx, p+"webhook:notion:event:00112233445566778899aabbccddeeff", "1", time.Hour)
	pipe.Set(ctx, p+"webhook:notion:dedup:conn-00:0b1c2d3e-conn-00", "1", time.Minute)
	// Not notionsync's: left alone.
	pipe.Set(ctx, p+"mystery:thing", "someone else's", 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := dumpKeys(ctx, rdb, p+"*", p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(keys, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fixtureFile, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d keys to %s", len(keys), fixtureFile)
}
