package config_test

import (
	"fmt"
	"os"

	"github.com/notionsync/notionsync/config"
)

func ExampleLoadWorkerFrom() {
	env := map[string]string{
		"NOTIONSYNC_TOKEN_KEYS":           "k2026:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"NOTIONSYNC_NOTION_CLIENT_ID":     "my-client-id",
		"NOTIONSYNC_NOTION_CLIENT_SECRET": "secret_abc",
		"NOTIONSYNC_REDIS_URL":            "redis://:hunter2@redis:6379/1",
		"NOTIONSYNC_WORKER_CONCURRENCY":   "20",
	}
	cfg, err := config.LoadWorkerFrom(config.MapLookup(env))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Concurrency, cfg.Queues, cfg.RefreshLockTTL)
	fmt.Println(cfg.Keys.Primary().ID, len(cfg.Keys.Primary().Secret))
	// Secrets print redacted; Value() returns them.
	fmt.Println(cfg.ClientSecret, cfg.ClientSecret.Value())
	fmt.Println(cfg.Redis.URL)
	// Output:
	// 20 tokens=6,sync=3,backfill=1 30s
	// k2026 32
	// [redacted] secret_abc
	// redis://:xxxxx@redis:6379/1
}

func ExampleProblems() {
	_, err := config.LoadWorkerFrom(config.MapLookup(map[string]string{
		"NOTIONSYNC_TOKEN_KEYS":           "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"NOTIONSYNC_NOTION_CLIENT_ID":     "my-client-id",
		"NOTIONSYNC_NOTION_CLIENT_SECRET": "secret_abc",
		"NOTIONSYNC_REFRESH_LOCK_TTL":     "15s",
		"NOTIONSYNC_WORKER_CONCURRENCY":   "abc",
	}))
	for _, p := range config.Problems(err) {
		fmt.Println(p)
	}
	// Output:
	// NOTIONSYNC_REFRESH_LOCK_TTL=15s: must be more than twice NOTIONSYNC_TOKEN_CALL_TIMEOUT (10s), so the lock outlives the token call
	// NOTIONSYNC_WORKER_CONCURRENCY="abc": not an integer
}

func ExampleRedis_UniversalOptions() {
	r := config.Redis{
		URL:            config.NewURL("rediss://:masterpw@/0"),
		SentinelAddrs:  []string{"sentinel-1:26379", "sentinel-2:26379"},
		SentinelMaster: "notionsync",
	}
	opts, err := r.UniversalOptions()
	if err != nil {
		fmt.Println(err)
		return
	}
	// Pass opts to redis.NewUniversalClient: with MasterName set it returns a
	// Sentinel-backed failover client.
	fmt.Println(opts.Addrs, opts.MasterName, opts.TLSConfig != nil)
	// Output:
	// [sentinel-1:26379 sentinel-2:26379] notionsync true
}

func ExampleWriteHelp() {
	var logVars []config.Var
	for _, v := range config.WorkerReference() {
		if v.Group == "Log" {
			logVars = append(logVars, v)
		}
	}
	_ = config.WriteHelp(os.Stdout, logVars)
	// Output:
	// Environment variables (an empty value counts as unset):
	//
	// Log
	//   NOTIONSYNC_LOG_LEVEL (string, default info)
	//       Log level: debug, info, warn or error.
	//   NOTIONSYNC_LOG_FORMAT (string, default json)
	//       Log format: json or console.
}
