package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testKey returns 32 bytes of key material derived from seed, and its base64.
func testKey(seed byte) ([]byte, string) {
	b := make([]byte, KeySize)
	for i := range b {
		b[i] = seed + byte(i)*7
	}
	return b, base64.StdEncoding.EncodeToString(b)
}

// unset marks a variable to remove from the base environment of a case.
const unset = "\x00unset"

// workerEnv is the smallest valid worker environment, with overrides applied.
func workerEnv(overrides map[string]string) map[string]string {
	_, k1 := testKey(1)
	env := map[string]string{
		"NOTIONSYNC_TOKEN_KEYS":           "k1:" + k1,
		"NOTIONSYNC_NOTION_CLIENT_ID":     "client-id",
		"NOTIONSYNC_NOTION_CLIENT_SECRET": "client-secret",
	}
	return apply(env, overrides)
}

// schedulerEnv is the smallest valid scheduler environment, with overrides
// applied.
func schedulerEnv(overrides map[string]string) map[string]string {
	env := workerEnv(nil)
	env["NOTIONSYNC_ADMIN_TOKEN"] = "admin-token-0123456789"
	return apply(env, overrides)
}

func apply(env, overrides map[string]string) map[string]string {
	for k, v := range overrides {
		if v == unset {
			delete(env, k)
			continue
		}
		env[k] = v
	}
	return env
}

func mustKeyRing(t *testing.T, s string) KeyRing {
	t.Helper()
	r, err := ParseKeyRing(s)
	if err != nil {
		t.Fatalf("ParseKeyRing: %v", err)
	}
	return r
}

func TestWorkerDefaults(t *testing.T) {
	t.Parallel()
	got, err := LoadWorkerFrom(MapLookup(workerEnv(nil)))
	if err != nil {
		t.Fatalf("LoadWorkerFrom: %v", err)
	}
	_, k1 := testKey(1)
	want := &Worker{
		Redis: Redis{URL: NewURL("redis://localhost:6379/0"), KeyPrefix: "notionsync:"},
		Tokens: Tokens{
			Keys:                mustKeyRing(t, "k1:"+k1),
			AccessTokenLifetime: time.Hour,
			RefreshMargin:       10 * time.Minute,
			RefreshJitter:       2 * time.Minute,
			CallTimeout:         10 * time.Second,
			RefreshLockTTL:      30 * time.Second,
			Cache:               true,
		},
		Notion: Notion{
			ClientID:     "client-id",
			ClientSecret: NewSecret("client-secret"),
			APIURL:       "https://api.notion.com",
			Version:      "2025-09-03",
			RateLimit:    180,
			RateBurst:    30,
		},
		Sync: Sync{SinkURL: NewURL("file://./data"), Interval: 5 * time.Minute, ReconcileInterval: 24 * time.Hour, Overlap: 2 * time.Minute, MaxBlockDepth: 20, DrainSlice: 30 * time.Second, PagesInFlight: 3,
			MaxObjectBlocks: 50_000, MaxObjectRequests: 5_000, MaxObjectBytes: 64 << 20, ClaimTTL: 8 * time.Second, UsersInterval: time.Hour, QueueShards: 1},
		Log: Log{Level: "info", Format: "json"},
		Pool: Pool{
			Concurrency:     50,
			Queues:          QueueWeights{"tokens": 6, "sync": 3, "backfill": 1},
			ShutdownTimeout: 30 * time.Second,
			PollInterval:    3 * time.Second, DelayedCheckInterval: 10 * time.Second, JanitorInterval: time.Minute,
			HTTPAddr: "127.0.0.1:8081",
		},
		Files: Files{Enabled: true, MaxBytes: 1 << 30, QuotaBytes: 50 << 30, DownloadConcurrency: 4,
			Hosts: []string{".s3.us-west-2.amazonaws.com", "s3.us-west-2.amazonaws.com", "file.notion.so", ".notion-static.com", ".notion.so"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if got.ClientSecret.Value() != "client-secret" {
		t.Errorf("ClientSecret.Value() = %q", got.ClientSecret.Value())
	}
	if p := got.Keys.Primary(); p.ID != "k1" {
		t.Errorf("primary key id = %q, want k1", p.ID)
	}
	if kind := got.SinkKind(); kind != SinkFile {
		t.Errorf("SinkKind = %q, want file", kind)
	}
	if path, err := got.SinkFilePath(); err != nil || path != "./data" {
		t.Errorf("SinkFilePath = %q, %v; want ./data", path, err)
	}
}

func TestSchedulerDefaults(t *testing.T) {
	t.Parallel()
	got, err := LoadSchedulerFrom(MapLookup(schedulerEnv(nil)))
	if err != nil {
		t.Fatalf("LoadSchedulerFrom: %v", err)
	}
	want := Control{
		Tick:             5 * time.Second,
		LeaderLease:      15 * time.Second,
		ControlAddr:      ":8080",
		MetricsAddr:      "127.0.0.1:9090",
		AdminToken:       NewSecret("admin-token-0123456789"),
		AsynqmonReadOnly: true,
		ReconnectLinkTTL: 168 * time.Hour,
		OAuthMaxStates:   10000,
	}
	if !reflect.DeepEqual(got.Control, want) {
		t.Errorf("control defaults:\n got %+v\nwant %+v", got.Control, want)
	}
	// The shared groups get the same defaults as the worker's.
	w, err := LoadWorkerFrom(MapLookup(workerEnv(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Redis, w.Redis) || !reflect.DeepEqual(got.Tokens, w.Tokens) ||
		!reflect.DeepEqual(got.Notion, w.Notion) || !reflect.DeepEqual(got.Sync, w.Sync) || !reflect.DeepEqual(got.Log, w.Log) {
		t.Errorf("shared groups differ between scheduler and worker:\n%+v\n%+v", got, w)
	}
}

func TestEmptyValueMeansDefault(t *testing.T) {
	t.Parallel()
	got, err := LoadWorkerFrom(MapLookup(workerEnv(map[string]string{
		"NOTIONSYNC_SYNC_INTERVAL":        "",
		"NOTIONSYNC_WORKER_QUEUES":        "",
		"NOTIONSYNC_TOKEN_CACHE":          "",
		"NOTIONSYNC_REDIS_SENTINEL_ADDRS": "",
	})))
	if err != nil {
		t.Fatal(err)
	}
	if got.Interval != 5*time.Minute || got.Queues["tokens"] != 6 || !got.Cache || got.SentinelAddrs != nil {
		t.Errorf("empty values did not fall back to defaults: %+v", got)
	}
}

func TestOverridesAndNormalisation(t *testing.T) {
	t.Parallel()
	_, k1 := testKey(1)
	_, k2 := testKey(2)
	got, err := LoadSchedulerFrom(MapLookup(schedulerEnv(map[string]string{
		"NOTIONSYNC_TOKEN_KEYS":          " new : " + k2 + " , old:" + strings.TrimRight(k1, "="),
		"NOTIONSYNC_TOKEN_CACHE":         "false",
		"NOTIONSYNC_REFRESH_LOCK_TTL":    "21s",
		"NOTIONSYNC_NOTION_API_URL":      "http://127.0.0.1:9999/",
		"NOTIONSYNC_NOTION_REDIRECT_URI": "https://example.com/oauth/callback/?x=1",
		"NOTIONSYNC_PUBLIC_URL":          "https://example.com/base/",
		"NOTIONSYNC_LOG_LEVEL":           " DEBUG ",
		"NOTIONSYNC_LOG_FORMAT":          "Console",
		"NOTIONSYNC_NOTION_RATE_LIMIT":   "600",
		"NOTIONSYNC_NOTION_RATE_BURST":   "600",
		"NOTIONSYNC_SYNC_OVERLAP":        "1m",
		"NOTIONSYNC_SINK_URL":            "postgresql://u:p@db:5432/notion?sslmode=require",
		"NOTIONSYNC_ASYNQMON_READONLY":   "0",
		"NOTIONSYNC_WEBHOOK_URL":         "https://hooks.example.com/x",
		"NOTIONSYNC_WEBHOOK_SECRET":      "webhook-secret-0123",
	})))
	if err != nil {
		t.Fatal(err)
	}
	if ids := got.Keys.IDs(); !slices.Equal(ids, []string{"new", "old"}) {
		t.Errorf("key ids = %v", ids)
	}
	if k, ok := got.Keys.Lookup("old"); !ok || !bytes.Equal(k.Secret, mustDecode(t, k1)) {
		t.Errorf("old key not decoded from unpadded base64")
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Cache", got.Cache, false},
		{"RefreshLockTTL", got.RefreshLockTTL, 21 * time.Second},
		{"APIURL trailing slash removed", got.APIURL, "http://127.0.0.1:9999"},
		{"RedirectURI byte for byte", got.RedirectURI, "https://example.com/oauth/callback/?x=1"},
		{"PublicURL trailing slash removed", got.PublicURL, "https://example.com/base"},
		{"Level lower-cased", got.Level, "debug"},
		{"Format lower-cased", got.Format, "console"},
		{"RateBurst", got.RateBurst, 600},
		{"Overlap", got.Overlap, time.Minute},
		{"SinkKind", got.SinkKind(), SinkPostgres},
		{"SinkURL value", got.SinkURL.Value(), "postgresql://u:p@db:5432/notion?sslmode=require"},
		{"AsynqmonReadOnly", got.AsynqmonReadOnly, false},
		{"WebhookURL", got.WebhookURL.Value(), "https://hooks.example.com/x"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if _, err := got.SinkFilePath(); err == nil {
		t.Error("SinkFilePath of a postgres sink: want an error")
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSinkFilePath(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"file://./data":              "./data",
		"file://../shared/out":       "../shared/out",
		"file:///var/lib/notionsync": "/var/lib/notionsync",
		"file://localhost/srv/x":     "/srv/x",
		"file://.":                   ".",
	} {
		got, err := Sync{SinkURL: NewURL(raw)}.SinkFilePath()
		if err != nil || got != want {
			t.Errorf("SinkFilePath(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
}

// TestValidation covers every validation rule: each case breaks one rule and
// must produce exactly one problem, naming the variable.
func TestValidation(t *testing.T) {
	t.Parallel()
	_, k1 := testKey(1)
	short := base64.StdEncoding.EncodeToString(make([]byte, 31))
	cases := []struct {
		name      string
		scheduler bool
		env       map[string]string
		wantVar   string
		wantMsg   string // substring of the whole message
	}{
		// Redis
		{name: "redis scheme", env: map[string]string{"NOTIONSYNC_REDIS_URL": "http://localhost:6379"}, wantVar: "NOTIONSYNC_REDIS_URL", wantMsg: `NOTIONSYNC_REDIS_URL=http://localhost:6379: scheme "http" is not supported`},
		{name: "redis db", env: map[string]string{"NOTIONSYNC_REDIS_URL": "redis://h:1/abc"}, wantVar: "NOTIONSYNC_REDIS_URL", wantMsg: `invalid database number`},
		{name: "redis unknown option", env: map[string]string{"NOTIONSYNC_REDIS_URL": "redis://h/0?bogus=1"}, wantVar: "NOTIONSYNC_REDIS_URL", wantMsg: "unexpected option: bogus"},
		{name: "redis not a url", env: map[string]string{"NOTIONSYNC_REDIS_URL": "redis://h:port/0"}, wantVar: "NOTIONSYNC_REDIS_URL", wantMsg: "NOTIONSYNC_REDIS_URL: not a valid URL"},
		{name: "redis unix", env: map[string]string{"NOTIONSYNC_REDIS_URL": "unix:///tmp/redis.sock"}, wantVar: "NOTIONSYNC_REDIS_URL", wantMsg: `scheme "unix" is not supported`},
		{name: "sentinel addrs without master", env: map[string]string{"NOTIONSYNC_REDIS_SENTINEL_ADDRS": "s1:26379"}, wantVar: "NOTIONSYNC_REDIS_SENTINEL_MASTER", wantMsg: "required with NOTIONSYNC_REDIS_SENTINEL_ADDRS"},
		{name: "sentinel master without addrs", env: map[string]string{"NOTIONSYNC_REDIS_SENTINEL_MASTER": "mymaster"}, wantVar: "NOTIONSYNC_REDIS_SENTINEL_MASTER", wantMsg: "set, but NOTIONSYNC_REDIS_SENTINEL_ADDRS is not"},
		{name: "sentinel password without addrs", env: map[string]string{"NOTIONSYNC_REDIS_SENTINEL_PASSWORD": "pw"}, wantVar: "NOTIONSYNC_REDIS_SENTINEL_PASSWORD", wantMsg: "set, but NOTIONSYNC_REDIS_SENTINEL_ADDRS is not"},
		{name: "sentinel addr without port", env: map[string]string{"NOTIONSYNC_REDIS_SENTINEL_ADDRS": "s1", "NOTIONSYNC_REDIS_SENTINEL_MASTER": "m"}, wantVar: "NOTIONSYNC_REDIS_SENTINEL_ADDRS", wantMsg: `entry 1 "s1": want host:port`},
		{name: "sentinel port zero", env: map[string]string{"NOTIONSYNC_REDIS_SENTINEL_ADDRS": "s1:1,s2:0", "NOTIONSYNC_REDIS_SENTINEL_MASTER": "m"}, wantVar: "NOTIONSYNC_REDIS_SENTINEL_ADDRS", wantMsg: "entry 2"},
		{name: "sentinel empty entry", env: map[string]string{"NOTIONSYNC_REDIS_SENTINEL_ADDRS": "s1:1,,s2:2", "NOTIONSYNC_REDIS_SENTINEL_MASTER": "m"}, wantVar: "NOTIONSYNC_REDIS_SENTINEL_ADDRS", wantMsg: "entry 2 is empty"},
		{name: "key prefix space", env: map[string]string{"NOTIONSYNC_REDIS_KEY_PREFIX": "a b:"}, wantVar: "NOTIONSYNC_REDIS_KEY_PREFIX", wantMsg: "spaces"},

		// Tokens
		{name: "keys unset", env: map[string]string{"NOTIONSYNC_TOKEN_KEYS": unset}, wantVar: "NOTIONSYNC_TOKEN_KEYS", wantMsg: "NOTIONSYNC_TOKEN_KEYS: required but not set"},
		// The hint is not cut at the "e.g." before its example.
		{name: "keys unset hint", env: map[string]string{"NOTIONSYNC_TOKEN_KEYS": unset}, wantVar: "NOTIONSYNC_TOKEN_KEYS",
			wantMsg: "each key 32 bytes (AES-256, e.g. from openssl rand -base64 32)."},
		{name: "keys empty", env: map[string]string{"NOTIONSYNC_TOKEN_KEYS": ""}, wantVar: "NOTIONSYNC_TOKEN_KEYS", wantMsg: "NOTIONSYNC_TOKEN_KEYS: required but empty"},
		{name: "key too short", env: map[string]string{"NOTIONSYNC_TOKEN_KEYS": "k1:" + short}, wantVar: "NOTIONSYNC_TOKEN_KEYS", wantMsg: `NOTIONSYNC_TOKEN_KEYS: entry 1 (id "k1"): key is 31 bytes, want 32 (AES-256)`},
		{name: "key not base64", env: map[string]string{"NOTIONSYNC_TOKEN_KEYS": "k1:" + k1 + ",k2:not*base64"}, wantVar: "NOTIONSYNC_TOKEN_KEYS", wantMsg: `entry 2 (id "k2"): key is not valid base64`},
		{name: "key id duplicate", env: map[string]string{"NOTIONSYNC_TOKEN_KEYS": "k1:" + k1 + ",k1:" + k1}, wantVar: "NOTIONSYNC_TOKEN_KEYS", wantMsg: `entry 2 (id "k1"): id already used by entry 1`},
		{name: "key id invalid", env: map[string]string{"NOTIONSYNC_TOKEN_KEYS": "k 1:" + k1}, wantVar: "NOTIONSYNC_TOKEN_KEYS", wantMsg: "entry 1: key id must be 1 to 32 characters"},
		{name: "lifetime zero", env: map[string]string{"NOTIONSYNC_ACCESS_TOKEN_LIFETIME": "0s"}, wantVar: "NOTIONSYNC_ACCESS_TOKEN_LIFETIME", wantMsg: "NOTIONSYNC_ACCESS_TOKEN_LIFETIME=0s: must be more than 0"},
		{name: "lifetime not a duration", env: map[string]string{"NOTIONSYNC_ACCESS_TOKEN_LIFETIME": "1 hour"}, wantVar: "NOTIONSYNC_ACCESS_TOKEN_LIFETIME", wantMsg: `NOTIONSYNC_ACCESS_TOKEN_LIFETIME="1 hour": not a duration`},
		{name: "margin negative", env: map[string]string{"NOTIONSYNC_REFRESH_MARGIN": "-1s"}, wantVar: "NOTIONSYNC_REFRESH_MARGIN", wantMsg: "must be more than 0"},
		{name: "margin not below lifetime", env: map[string]string{"NOTIONSYNC_REFRESH_MARGIN": "1h"}, wantVar: "NOTIONSYNC_REFRESH_MARGIN", wantMsg: "NOTIONSYNC_REFRESH_MARGIN=1h: must be less than NOTIONSYNC_ACCESS_TOKEN_LIFETIME (1h)"},
		{name: "jitter negative", env: map[string]string{"NOTIONSYNC_REFRESH_JITTER": "-1m"}, wantVar: "NOTIONSYNC_REFRESH_JITTER", wantMsg: "NOTIONSYNC_REFRESH_JITTER=-1m: must not be negative"},
		{name: "call timeout zero", env: map[string]string{"NOTIONSYNC_TOKEN_CALL_TIMEOUT": "0s"}, wantVar: "NOTIONSYNC_TOKEN_CALL_TIMEOUT", wantMsg: "must be more than 0"},
		{name: "lock ttl below twice call timeout", env: map[string]string{"NOTIONSYNC_REFRESH_LOCK_TTL": "15s"}, wantVar: "NOTIONSYNC_REFRESH_LOCK_TTL", wantMsg: "NOTIONSYNC_REFRESH_LOCK_TTL=15s: must be more than twice NOTIONSYNC_TOKEN_CALL_TIMEOUT (10s)"},
		{name: "lock ttl exactly twice call timeout", env: map[string]string{"NOTIONSYNC_REFRESH_LOCK_TTL": "20s"}, wantVar: "NOTIONSYNC_REFRESH_LOCK_TTL", wantMsg: "more than twice"},
		{name: "lock ttl vs raised call timeout", env: map[string]string{"NOTIONSYNC_TOKEN_CALL_TIMEOUT": "20s"}, wantVar: "NOTIONSYNC_REFRESH_LOCK_TTL", wantMsg: "NOTIONSYNC_REFRESH_LOCK_TTL=30s: must be more than twice NOTIONSYNC_TOKEN_CALL_TIMEOUT (20s)"},
		{name: "cache not a bool", env: map[string]string{"NOTIONSYNC_TOKEN_CACHE": "yes"}, wantVar: "NOTIONSYNC_TOKEN_CACHE", wantMsg: `NOTIONSYNC_TOKEN_CACHE="yes": not a boolean`},

		// Notion
		{name: "client id unset", env: map[string]string{"NOTIONSYNC_NOTION_CLIENT_ID": unset}, wantVar: "NOTIONSYNC_NOTION_CLIENT_ID", wantMsg: "required but not set"},
		{name: "client id spaces", env: map[string]string{"NOTIONSYNC_NOTION_CLIENT_ID": "a b"}, wantVar: "NOTIONSYNC_NOTION_CLIENT_ID", wantMsg: "spaces"},
		{name: "client secret unset", env: map[string]string{"NOTIONSYNC_NOTION_CLIENT_SECRET": unset}, wantVar: "NOTIONSYNC_NOTION_CLIENT_SECRET", wantMsg: "NOTIONSYNC_NOTION_CLIENT_SECRET: required but not set"},
		{name: "client secret empty", env: map[string]string{"NOTIONSYNC_NOTION_CLIENT_SECRET": ""}, wantVar: "NOTIONSYNC_NOTION_CLIENT_SECRET", wantMsg: "required but empty"},
		{name: "redirect relative", env: map[string]string{"NOTIONSYNC_NOTION_REDIRECT_URI": "/oauth/callback"}, wantVar: "NOTIONSYNC_NOTION_REDIRECT_URI", wantMsg: "must be an absolute http:// or https:// URL"},
		{name: "redirect scheme", env: map[string]string{"NOTIONSYNC_NOTION_REDIRECT_URI": "ftp://example.com/cb"}, wantVar: "NOTIONSYNC_NOTION_REDIRECT_URI", wantMsg: "must be an absolute http:// or https:// URL"},
		{name: "redirect fragment", env: map[string]string{"NOTIONSYNC_NOTION_REDIRECT_URI": "https://example.com/cb#x"}, wantVar: "NOTIONSYNC_NOTION_REDIRECT_URI", wantMsg: "fragment"},
		{name: "api url no scheme", env: map[string]string{"NOTIONSYNC_NOTION_API_URL": "api.notion.com"}, wantVar: "NOTIONSYNC_NOTION_API_URL", wantMsg: "absolute"},
		{name: "api url query", env: map[string]string{"NOTIONSYNC_NOTION_API_URL": "https://api.notion.com/?a=1"}, wantVar: "NOTIONSYNC_NOTION_API_URL", wantMsg: "must not have a ?query"},
		{name: "version", env: map[string]string{"NOTIONSYNC_NOTION_VERSION": "latest"}, wantVar: "NOTIONSYNC_NOTION_VERSION", wantMsg: `NOTIONSYNC_NOTION_VERSION="latest": must be a Notion API version date`},
		{name: "rate limit zero", env: map[string]string{"NOTIONSYNC_NOTION_RATE_LIMIT": "0"}, wantVar: "NOTIONSYNC_NOTION_RATE_LIMIT", wantMsg: "NOTIONSYNC_NOTION_RATE_LIMIT=0: must be at least 1"},
		{name: "rate limit not an integer", env: map[string]string{"NOTIONSYNC_NOTION_RATE_LIMIT": "3/s"}, wantVar: "NOTIONSYNC_NOTION_RATE_LIMIT", wantMsg: `NOTIONSYNC_NOTION_RATE_LIMIT="3/s": not an integer`},
		{name: "rate limit out of range", env: map[string]string{"NOTIONSYNC_NOTION_RATE_LIMIT": "99999999999"}, wantVar: "NOTIONSYNC_NOTION_RATE_LIMIT", wantMsg: "out of range"},
		{name: "burst zero", env: map[string]string{"NOTIONSYNC_NOTION_RATE_BURST": "0"}, wantVar: "NOTIONSYNC_NOTION_RATE_BURST", wantMsg: "must be at least 1"},
		{name: "burst above limit", env: map[string]string{"NOTIONSYNC_NOTION_RATE_BURST": "181"}, wantVar: "NOTIONSYNC_NOTION_RATE_BURST", wantMsg: "NOTIONSYNC_NOTION_RATE_BURST=181: must not be more than NOTIONSYNC_NOTION_RATE_LIMIT (180)"},

		// Sync
		{name: "sink scheme", env: map[string]string{"NOTIONSYNC_SINK_URL": "mysql://u@h/db"}, wantVar: "NOTIONSYNC_SINK_URL", wantMsg: `scheme "mysql" is not supported (want file, postgres or postgresql)`},
		{name: "sink no scheme", env: map[string]string{"NOTIONSYNC_SINK_URL": "./data"}, wantVar: "NOTIONSYNC_SINK_URL", wantMsg: "not a valid URL"},
		{name: "sink file host", env: map[string]string{"NOTIONSYNC_SINK_URL": "file://data/x"}, wantVar: "NOTIONSYNC_SINK_URL", wantMsg: `file URL host "data" is not supported`},
		{name: "sink file opaque", env: map[string]string{"NOTIONSYNC_SINK_URL": "file:data"}, wantVar: "NOTIONSYNC_SINK_URL", wantMsg: "want file://DIR"},
		{name: "sink file no dir", env: map[string]string{"NOTIONSYNC_SINK_URL": "file://"}, wantVar: "NOTIONSYNC_SINK_URL", wantMsg: "names no directory"},
		{name: "sink postgres opaque", env: map[string]string{"NOTIONSYNC_SINK_URL": "postgres:db"}, wantVar: "NOTIONSYNC_SINK_URL", wantMsg: "want postgres://"},
		{name: "interval zero", env: map[string]string{"NOTIONSYNC_SYNC_INTERVAL": "0s"}, wantVar: "NOTIONSYNC_SYNC_INTERVAL", wantMsg: "must be more than 0"},
		{name: "reconcile negative", env: map[string]string{"NOTIONSYNC_RECONCILE_INTERVAL": "-1h"}, wantVar: "NOTIONSYNC_RECONCILE_INTERVAL", wantMsg: "must not be negative"},
		{name: "interval unitless", env: map[string]string{"NOTIONSYNC_SYNC_INTERVAL": "300"}, wantVar: "NOTIONSYNC_SYNC_INTERVAL", wantMsg: `NOTIONSYNC_SYNC_INTERVAL="300": not a duration`},
		{name: "overlap below a minute", env: map[string]string{"NOTIONSYNC_SYNC_OVERLAP": "59s"}, wantVar: "NOTIONSYNC_SYNC_OVERLAP", wantMsg: "NOTIONSYNC_SYNC_OVERLAP=59s: must be at least 1m"},
		{name: "block depth zero", env: map[string]string{"NOTIONSYNC_MAX_BLOCK_DEPTH": "0"}, wantVar: "NOTIONSYNC_MAX_BLOCK_DEPTH", wantMsg: "must be at least 1"},
		{name: "block depth above the walk's limit", env: map[string]string{"NOTIONSYNC_MAX_BLOCK_DEPTH": "1001"}, wantVar: "NOTIONSYNC_MAX_BLOCK_DEPTH", wantMsg: "must be at most 100"},
		{name: "object blocks zero", env: map[string]string{"NOTIONSYNC_MAX_OBJECT_BLOCKS": "0"}, wantVar: "NOTIONSYNC_MAX_OBJECT_BLOCKS", wantMsg: "must be at least 1"},
		{name: "object requests zero", env: map[string]string{"NOTIONSYNC_MAX_OBJECT_REQUESTS": "0"}, wantVar: "NOTIONSYNC_MAX_OBJECT_REQUESTS", wantMsg: "must be at least 1"},
		{name: "object bytes tiny", env: map[string]string{"NOTIONSYNC_MAX_OBJECT_BYTES": "1000"}, wantVar: "NOTIONSYNC_MAX_OBJECT_BYTES", wantMsg: "must be at least 1048576"},
		{name: "pages in flight zero", env: map[string]string{"NOTIONSYNC_SYNC_PAGES_IN_FLIGHT": "0"}, wantVar: "NOTIONSYNC_SYNC_PAGES_IN_FLIGHT", wantMsg: "must be between 1 and 16"},
		{name: "drain slice too short", env: map[string]string{"NOTIONSYNC_SYNC_DRAIN_SLICE": "10ms"}, wantVar: "NOTIONSYNC_SYNC_DRAIN_SLICE", wantMsg: "must be at least 1s"},

		// Log
		{name: "log level", env: map[string]string{"NOTIONSYNC_LOG_LEVEL": "verbose"}, wantVar: "NOTIONSYNC_LOG_LEVEL", wantMsg: `NOTIONSYNC_LOG_LEVEL="verbose": must be one of debug, info, warn, error`},
		{name: "log format", env: map[string]string{"NOTIONSYNC_LOG_FORMAT": "text"}, wantVar: "NOTIONSYNC_LOG_FORMAT", wantMsg: "must be json or console"},

		// Pool (worker)
		{name: "concurrency not an integer", env: map[string]string{"NOTIONSYNC_WORKER_CONCURRENCY": "abc"}, wantVar: "NOTIONSYNC_WORKER_CONCURRENCY", wantMsg: `NOTIONSYNC_WORKER_CONCURRENCY="abc": not an integer`},
		{name: "concurrency zero", env: map[string]string{"NOTIONSYNC_WORKER_CONCURRENCY": "0"}, wantVar: "NOTIONSYNC_WORKER_CONCURRENCY", wantMsg: "NOTIONSYNC_WORKER_CONCURRENCY=0: must be at least 1"},
		{name: "queue weight zero", env: map[string]string{"NOTIONSYNC_WORKER_QUEUES": "tokens=0"}, wantVar: "NOTIONSYNC_WORKER_QUEUES", wantMsg: `NOTIONSYNC_WORKER_QUEUES="tokens=0": entry 1: weight "0" of queue "tokens" must be an integer from 1 to 100`},
		{name: "queue weight too big", env: map[string]string{"NOTIONSYNC_WORKER_QUEUES": "tokens=1000000"}, wantVar: "NOTIONSYNC_WORKER_QUEUES", wantMsg: "from 1 to 100"},
		{name: "queue without weight", env: map[string]string{"NOTIONSYNC_WORKER_QUEUES": "tokens=1,sync"}, wantVar: "NOTIONSYNC_WORKER_QUEUES", wantMsg: `entry 2 "sync": want name=weight`},
		{name: "queue twice", env: map[string]string{"NOTIONSYNC_WORKER_QUEUES": "a=1,a=2"}, wantVar: "NOTIONSYNC_WORKER_QUEUES", wantMsg: `queue "a" already listed in entry 1`},
		{name: "shutdown zero", env: map[string]string{"NOTIONSYNC_SHUTDOWN_TIMEOUT": "0s"}, wantVar: "NOTIONSYNC_SHUTDOWN_TIMEOUT", wantMsg: "must be more than 0"},
		{name: "poll interval too short", env: map[string]string{"NOTIONSYNC_WORKER_POLL_INTERVAL": "10ms"}, wantVar: "NOTIONSYNC_WORKER_POLL_INTERVAL", wantMsg: "must be between 100ms and 1m"},
		{name: "delayed check too long", env: map[string]string{"NOTIONSYNC_WORKER_DELAYED_CHECK_INTERVAL": "2m"}, wantVar: "NOTIONSYNC_WORKER_DELAYED_CHECK_INTERVAL", wantMsg: "must be between 1s and 1m"},
		{name: "janitor zero", env: map[string]string{"NOTIONSYNC_WORKER_JANITOR_INTERVAL": "0s"}, wantVar: "NOTIONSYNC_WORKER_JANITOR_INTERVAL", wantMsg: "must be between 1s and 1h"},
		{name: "shutdown not above call timeout", env: map[string]string{"NOTIONSYNC_SHUTDOWN_TIMEOUT": "10s"}, wantVar: "NOTIONSYNC_SHUTDOWN_TIMEOUT", wantMsg: "NOTIONSYNC_SHUTDOWN_TIMEOUT=10s: must be more than NOTIONSYNC_TOKEN_CALL_TIMEOUT (10s)"},
		{name: "http addr no port", env: map[string]string{"NOTIONSYNC_HTTP_ADDR": "8081"}, wantVar: "NOTIONSYNC_HTTP_ADDR", wantMsg: `NOTIONSYNC_HTTP_ADDR="8081": want host:port or :port`},
		{name: "http addr bad port", env: map[string]string{"NOTIONSYNC_HTTP_ADDR": ":99999"}, wantVar: "NOTIONSYNC_HTTP_ADDR", wantMsg: "port must be a number"},

		// Control (scheduler)
		{name: "tick zero", scheduler: true, env: map[string]string{"NOTIONSYNC_SCHEDULER_TICK": "0s"}, wantVar: "NOTIONSYNC_SCHEDULER_TICK", wantMsg: "must be more than 0"},
		{name: "lease zero", scheduler: true, env: map[string]string{"NOTIONSYNC_LEADER_LEASE": "0s"}, wantVar: "NOTIONSYNC_LEADER_LEASE", wantMsg: "must be more than 0"},
		{name: "lease not above twice tick", scheduler: true, env: map[string]string{"NOTIONSYNC_LEADER_LEASE": "10s"}, wantVar: "NOTIONSYNC_LEADER_LEASE", wantMsg: "NOTIONSYNC_LEADER_LEASE=10s: must be more than twice NOTIONSYNC_SCHEDULER_TICK (5s)"},
		{name: "control addr", scheduler: true, env: map[string]string{"NOTIONSYNC_CONTROL_ADDR": "localhost"}, wantVar: "NOTIONSYNC_CONTROL_ADDR", wantMsg: "want host:port"},
		{name: "metrics addr", scheduler: true, env: map[string]string{"NOTIONSYNC_METRICS_ADDR": "9090"}, wantVar: "NOTIONSYNC_METRICS_ADDR", wantMsg: "want host:port"},
		{name: "metrics on the control listener", scheduler: true, env: map[string]string{"NOTIONSYNC_METRICS_ADDR": "127.0.0.1:8080"}, wantVar: "NOTIONSYNC_METRICS_ADDR", wantMsg: "must differ from NOTIONSYNC_CONTROL_ADDR"},
		{name: "metrics connection labels", scheduler: true, env: map[string]string{"NOTIONSYNC_METRICS_CONNECTION_LABELS": "maybe"}, wantVar: "NOTIONSYNC_METRICS_CONNECTION_LABELS", wantMsg: ""},
		{name: "admin token unset", scheduler: true, env: map[string]string{"NOTIONSYNC_ADMIN_TOKEN": unset}, wantVar: "NOTIONSYNC_ADMIN_TOKEN", wantMsg: "NOTIONSYNC_ADMIN_TOKEN: required but not set"},
		{name: "admin token short", scheduler: true, env: map[string]string{"NOTIONSYNC_ADMIN_TOKEN": "0123456789abcde"}, wantVar: "NOTIONSYNC_ADMIN_TOKEN", wantMsg: "NOTIONSYNC_ADMIN_TOKEN: must be at least 16 characters"},
		{name: "public url relative", scheduler: true, env: map[string]string{"NOTIONSYNC_PUBLIC_URL": "example.com"}, wantVar: "NOTIONSYNC_PUBLIC_URL", wantMsg: `NOTIONSYNC_PUBLIC_URL="example.com": must be an absolute`},
		{name: "public url query", scheduler: true, env: map[string]string{"NOTIONSYNC_PUBLIC_URL": "https://example.com/?a=b"}, wantVar: "NOTIONSYNC_PUBLIC_URL", wantMsg: "query"},
		{name: "asynqmon bool", scheduler: true, env: map[string]string{"NOTIONSYNC_ASYNQMON_READONLY": "maybe"}, wantVar: "NOTIONSYNC_ASYNQMON_READONLY", wantMsg: "not a boolean"},
		{name: "webhook url invalid", scheduler: true, env: map[string]string{"NOTIONSYNC_WEBHOOK_URL": "hooks.example.com/x", "NOTIONSYNC_WEBHOOK_SECRET": "0123456789abcdef"}, wantVar: "NOTIONSYNC_WEBHOOK_URL", wantMsg: "NOTIONSYNC_WEBHOOK_URL: must be an absolute"},
		{name: "webhook without secret", scheduler: true, env: map[string]string{"NOTIONSYNC_WEBHOOK_URL": "https://hooks.example.com/x"}, wantVar: "NOTIONSYNC_WEBHOOK_SECRET", wantMsg: "NOTIONSYNC_WEBHOOK_SECRET: required with NOTIONSYNC_WEBHOOK_URL"},
		{name: "webhook secret without url", scheduler: true, env: map[string]string{"NOTIONSYNC_WEBHOOK_SECRET": "0123456789abcdef"}, wantVar: "NOTIONSYNC_WEBHOOK_SECRET", wantMsg: "set, but NOTIONSYNC_WEBHOOK_URL is not"},
		{name: "webhook secret short", scheduler: true, env: map[string]string{"NOTIONSYNC_WEBHOOK_URL": "https://hooks.example.com/x", "NOTIONSYNC_WEBHOOK_SECRET": "short"}, wantVar: "NOTIONSYNC_WEBHOOK_SECRET", wantMsg: "must be at least 16 characters"},
	}
	known := make(map[string]bool)
	for _, v := range Reference() {
		known[v.Name] = true
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if tc.scheduler {
				var cfg *Scheduler
				cfg, err = LoadSchedulerFrom(MapLookup(schedulerEnv(tc.env)))
				if cfg != nil {
					t.Errorf("got a configuration with an error")
				}
			} else {
				var cfg *Worker
				cfg, err = LoadWorkerFrom(MapLookup(workerEnv(tc.env)))
				if cfg != nil {
					t.Errorf("got a configuration with an error")
				}
			}
			if err == nil {
				t.Fatalf("no error; want one about %s", tc.wantVar)
			}
			problems := Problems(err)
			if len(problems) != 1 {
				t.Fatalf("want exactly 1 problem, got %d:\n%v", len(problems), err)
			}
			p := problems[0]
			if p.Var != tc.wantVar {
				t.Errorf("problem names %s, want %s: %v", p.Var, tc.wantVar, p)
			}
			if !known[p.Var] {
				t.Errorf("problem names %s, which is not in Reference()", p.Var)
			}
			if !strings.HasPrefix(err.Error(), tc.wantVar) {
				t.Errorf("message does not start with the variable: %q", err.Error())
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("message %q does not contain %q", err.Error(), tc.wantMsg)
			}
			var ve *VarError
			if !errors.As(err, &ve) || ve != p {
				t.Errorf("errors.As does not find the *VarError")
			}
		})
	}
}

// TestAllProblemsAtOnce: every problem is reported, in reference order, and
// a value that does not parse is not also reported by the checks on it.
func TestAllProblemsAtOnce(t *testing.T) {
	t.Parallel()
	_, err := LoadWorkerFrom(MapLookup(workerEnv(map[string]string{
		"NOTIONSYNC_WORKER_CONCURRENCY": "abc", // not also "must be at least 1"
		"NOTIONSYNC_REFRESH_LOCK_TTL":   "15s",
		"NOTIONSYNC_LOG_LEVEL":          "loud",
		"NOTIONSYNC_NOTION_CLIENT_ID":   unset,
		"NOTIONSYNC_TOKEN_CALL_TIMEOUT": "soon", // not also the lock TTL and shutdown checks
		"NOTIONSYNC_REDIS_URL":          "http://x",
	})))
	want := []string{
		"NOTIONSYNC_REDIS_URL",
		"NOTIONSYNC_TOKEN_CALL_TIMEOUT",
		"NOTIONSYNC_NOTION_CLIENT_ID",
		"NOTIONSYNC_LOG_LEVEL",
		"NOTIONSYNC_WORKER_CONCURRENCY",
	}
	var got []string
	for _, p := range Problems(err) {
		got = append(got, p.Var)
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems for\n%v\n got %v\nwant %v", err, got, want)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(want) {
		t.Errorf("error has %d lines, want one per problem:\n%v", n, err)
	}
}

func TestLookupOnlyAsksForKnownVariables(t *testing.T) {
	t.Parallel()
	known := make(map[string]bool)
	for _, v := range WorkerReference() {
		known[v.Name] = true
	}
	env := workerEnv(nil)
	var asked []string
	_, err := LoadWorkerFrom(func(name string) (string, bool) {
		asked = append(asked, name)
		v, ok := env[name]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != len(known) {
		t.Errorf("asked for %d variables, the worker has %d", len(asked), len(known))
	}
	for _, name := range asked {
		if !known[name] {
			t.Errorf("asked for %s, which the worker does not read", name)
		}
	}
	if _, err := LoadWorkerFrom(nil); err == nil {
		t.Error("nil lookup: want an error")
	}
	if _, err := LoadSchedulerFrom(nil); err == nil {
		t.Error("nil lookup: want an error")
	}
}

// TestLoadFromProcessEnvironment is the only test that touches the process
// environment (t.Setenv forbids t.Parallel).
func TestLoadFromProcessEnvironment(t *testing.T) {
	env := schedulerEnv(map[string]string{"NOTIONSYNC_WORKER_CONCURRENCY": "3"})
	for _, k := range slices.Sorted(maps.Keys(env)) {
		t.Setenv(k, env[k])
	}
	w, err := LoadWorker()
	if err != nil {
		t.Fatal(err)
	}
	if w.Concurrency != 3 || w.ClientID != "client-id" {
		t.Errorf("LoadWorker did not read the environment: %+v", w)
	}
	s, err := LoadScheduler()
	if err != nil {
		t.Fatal(err)
	}
	if !s.AdminToken.IsSet() {
		t.Error("LoadScheduler did not read NOTIONSYNC_ADMIN_TOKEN")
	}
}

func TestProblemsOfOtherErrors(t *testing.T) {
	t.Parallel()
	if Problems(nil) != nil {
		t.Error("Problems(nil) != nil")
	}
	ve := &VarError{Var: "NOTIONSYNC_X", Msg: "bad"}
	if got := Problems(errors.Join(errors.New("other"), ve)); len(got) != 1 || got[0] != ve {
		t.Errorf("Problems = %v", got)
	}
	if got := Problems(wrapErr{ve}); len(got) != 1 || got[0] != ve {
		t.Errorf("Problems through Unwrap() error = %v", got)
	}
	if ve.Error() != "NOTIONSYNC_X: bad" {
		t.Errorf("Error() = %q", ve.Error())
	}
}

type wrapErr struct{ err error }

func (w wrapErr) Error() string { return "wrapped: " + w.err.Error() }
func (w wrapErr) Unwrap() error { return w.err }

func TestShowDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		time.Hour:                    "1h",
		2 * time.Minute:              "2m",
		90 * time.Minute:             "1h30m",
		15 * time.Second:             "15s",
		time.Hour + time.Second:      "1h0m1s",
		1500 * time.Millisecond:      "1.5s",
		0:                            "0s",
		-time.Minute:                 "-1m",
		10*time.Minute + time.Second: "10m1s",
	} {
		if got := showDuration(d); got != want {
			t.Errorf("showDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// FuzzLoad sets one variable of either binary to an arbitrary value: loading
// never panics, every problem names a variable of that binary, and a problem
// with a secret variable never shows its value.
func FuzzLoad(f *testing.F) {
	f.Add(uint8(0), "redis://:pw@h:1/0")
	f.Add(uint8(6), "k1:abc")
	f.Add(uint8(12), "-5m")
	f.Add(uint8(30), "tokens=1")
	f.Add(uint8(200), "0123456789abcdef")
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		all := Reference()
		v := all[int(which)%len(all)]
		overrides := map[string]string{v.Name: value}
		var err error
		var vars []Var
		if slices.Contains(v.UsedBy, BinaryWorker) {
			_, err = LoadWorkerFrom(MapLookup(workerEnv(overrides)))
			vars = WorkerReference()
		} else {
			_, err = LoadSchedulerFrom(MapLookup(schedulerEnv(overrides)))
			vars = SchedulerReference()
		}
		known := make(map[string]Var)
		for _, kv := range vars {
			known[kv.Name] = kv
		}
		for _, p := range Problems(err) {
			pv, ok := known[p.Var]
			if !ok {
				t.Fatalf("problem names unknown variable: %v", p)
			}
			if pv.Secret && p.Value != "" {
				t.Fatalf("problem shows the value of secret %s: %v", p.Var, p)
			}
		}
		if err != nil && len(Problems(err)) == 0 {
			t.Fatalf("error without problems: %v", err)
		}
	})
}

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	got, err := LoadSchedulerFrom(MapLookup(schedulerEnv(map[string]string{
		varTrustedProxies: "10.0.0.0/8, 192.0.2.7,::1,fd00::1/64"})))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := got.Control.TrustedProxyPrefixes()
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "::1/128", "fd00::/64"}
	if err != nil || len(ps) != len(want) {
		t.Fatalf("prefixes %v, %v", ps, err)
	}
	for i, p := range ps {
		if p.String() != want[i] {
			t.Errorf("prefix %d: %s, want %s", i, p, want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.local", "10.0.0.1,,"} {
		_, err := LoadSchedulerFrom(MapLookup(schedulerEnv(map[string]string{varTrustedProxies: bad})))
		if err == nil || !strings.Contains(err.Error(), varTrustedProxies) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	for v, bad := range map[string]string{varReconnectLinkTTL: "721h", varOAuthMaxStates: "0"} {
		_, err := LoadSchedulerFrom(MapLookup(schedulerEnv(map[string]string{v: bad})))
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("%s=%s: %v", v, bad, err)
		}
	}
}

func TestFirstSentence(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"One. Two.":                            "One.",
		"Keys (AES-256, e.g. from x). Others.": "Keys (AES-256, e.g. from x).",
		"A list, e.g. a,b. More.":              "A list, e.g. a,b.",
		"Costs (i.e. money) matter. Yes.":      "Costs (i.e. money) matter.",
		"No end":                               "No end",
		"Version 1.2 is fine. Next.":           "Version 1.2 is fine.",
	} {
		if got := firstSentence(in); got != want {
			t.Errorf("firstSentence(%q) = %q, want %q", in, got, want)
		}
	}
}
