package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/internal/redistest"
)

func TestRedisMigrateKeys(t *testing.T) {
	ctx := context.Background()
	rdb := redisSrv.Client()
	defer rdb.Close()
	p := redistest.UniquePrefix(t)
	// A connection in the old layout: record, timeline, due entry.
	if err := rdb.HSet(ctx, p+"conn:c1", "v", "3", "status", "active").Err(); err != nil {
		t.Fatal(err)
	}
	rdb.LPush(ctx, p+"conn:c1:events", "e1")
	rdb.ZAdd(ctx, p+"due", redis.Z{Score: 1700000000000, Member: "c1"})
	env := map[string]string{"NOTIONSYNC_REDIS_URL": "redis://" + redisSrv.Addr() + "/0", "NOTIONSYNC_REDIS_KEY_PREFIX": p}
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Run(ctx, args, Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }})
		return code, strings.Join(strings.Fields(out.String()), " "), errOut.String()
	}

	code, out, errOut := run("redis", "migrate-keys", "-dry-run")
	if code != ExitOK || !strings.Contains(out, "connections would move: 1 ") || !strings.Contains(out, "keys would move: 2 ") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	if n, _ := rdb.Exists(ctx, p+"conn:c1").Result(); n != 1 {
		t.Fatal("the dry run moved the record")
	}
	code, out, errOut = run("redis", "migrate-keys", "-output", "json")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var res struct {
		Connections  int `json:"connections_moved"`
		Keys         int `json:"keys_moved"`
		IndexEntries int `json:"index_entries_moved"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Connections != 1 || res.Keys != 2 || res.IndexEntries != 1 {
		t.Fatalf("summary %q: %+v, %v", out, res, err)
	}
	if !strings.Contains(errOut, "migrate-keys: done: 1 of 1 connections moved") {
		t.Errorf("progress on stderr: %q", errOut)
	}
	if v, err := rdb.HGet(ctx, keyspace.Conn(p, "c1")+"conn:c1", "v").Result(); err != nil || v != "3" {
		t.Errorf("new record: %q, %v", v, err)
	}
	code, out, _ = run("redis", "migrate-keys")
	if code != ExitOK || !strings.Contains(out, "connections moved: 0 ") {
		t.Errorf("second run: exit %d\n%s", code, out)
	}

	if code, _, errOut := run("redis"); code != ExitUsage || !strings.Contains(errOut, "migrate-keys") {
		t.Errorf("no subcommand: exit %d, %q", code, errOut)
	}
	env["NOTIONSYNC_REDIS_CLUSTER_ADDRS"] = redisSrv.Addr()
	if code, _, errOut := run("redis", "migrate-keys"); code != ExitFailure || !strings.Contains(errOut, "the target is a Redis Cluster") {
		t.Errorf("cluster configuration: exit %d, %q", code, errOut)
	}
	delete(env, "NOTIONSYNC_REDIS_CLUSTER_ADDRS")
	env["NOTIONSYNC_REDIS_URL"] = "http://" + redisSrv.Addr()
	if code, _, errOut := run("redis", "migrate-keys"); code != ExitUsage || !strings.Contains(errOut, "NOTIONSYNC_REDIS_URL") {
		t.Errorf("bad URL: exit %d, %q", code, errOut)
	}
}
