// Command fleet is notionsync's fleet-level load and fault suite: it starts
// the real binaries (redis-server, notion-sandbox, a scheduler and W
// workers, through internal/demo's Cluster) on this machine, creates N
// connections quickly (the sandbox seeds N small workspaces and issues one
// authorization code each; the suite exchanges each code at the sandbox's
// token endpoint and stores the pair with the admin API's import route),
// drives one scenario, and prints a report: figures, then PASS/FAIL per
// invariant and "GOAL met/missed" per performance goal. It exits 1 when an
// invariant fails (goals never fail the run; the report says by how much
// one was missed).
//
//	go run ./bench/fleet -scenario fleet-sync -connections 1000 -duration 3m
//
// Scenarios: fleet-sync (throughput against the aggregate rate-limit
// budget and against each connection's own budget while it synced, 429s,
// sync lag, CPU and memory per process, Redis round trips per Notion
// request by component, Redis memory per 1000 connections), refresh-storm
// (access tokens living a few seconds: one grant per rotation, no
// invalid_grant, 401s seen by data calls, refresh lock waits), revocation
// (10% revoked mid-run: needs_reauth once, then quiet; reconnected, they
// resume), chaos (with short token lifetimes and 2 schedulers: SIGKILL a
// worker, the leader scheduler, Redis, in turn, each restarted; time until
// every connection is swept again, connections lost, grants per rotation),
// token-faults (with short token lifetimes, a token call timeout of 2s and
// a refresh lock TTL of 5s: the token endpoint slow inside the call
// timeout, answering 500, rotating then dropping its answers, and slower
// than the lock TTL; per fault connections lost and why, invalid_grant,
// time to recover; the sandbox commits a rotation before its late answer,
// so the last two faults must lose exactly the connections whose answer
// was lost, each needs_reauth with reason lost_rotation_response, and no
// other) and bad-input (poisoned pages answering truncated JSON, HTML 403s
// or 500s on their page or block-children GET, huge pages, unknown block
// types, refused cursors, one-shot faults: per-object errors that hold the
// cursor while everything else lands, then recovery once the poison is
// lifted; and hostile answers: block cycles, endless listings, huge bodies,
// wrong JSON types and bad search result ids, each a per-object error or
// note, with the workers' peak memory bounded and every worker stopped by
// SIGTERM in the middle of an endless walk and started again; edited after
// the poison is lifted, those pages sync too) and kill-sync (while the
// connections backfill, SIGKILL the worker that runs a connection's drain, -kills times, alternately anywhere
// in the drain and with page claims in flight, each restarted: time until
// that connection stores a page again, PASS within 20s, the reaper's
// takeover time from the scheduler's log, and backfill times of killed
// connections against the others; run by name only, with workspaces that
// take a while to backfill, e.g. -connections 20 -pages 100 -blocks 2
// -rate-limit 90 -workers 3 -concurrency 10 -sync-interval 5m).
// fidelity (run by name: -scenario fidelity -connections 100 -pages 6):
// workspaces with nested pages, two databases of 25 rows, one with a second
// data source, rows with 30 references, every imperfection of the sandbox
// on (truncation, a result limit of 10, 10% of pages missing from search, a
// search lag, multi-source databases unreadable in 2022-06-28) and a
// permanent 403 on a tenth of the workspaces' pages; after the first sweep
// a page is trashed, one unshared and one edited in every fifth workspace;
// after a sweep past the search lag, one reconciliation (reconcileAll, a
// hook until reconciliation exists), then every file sink is compared with
// its workspace's ground truth (internal/fidelity): missing, stale,
// live-but-gone, truncated, missing data sources, extra, each a goal of 0.
// internal/systemtest's TestFidelityShort is its short version in make
// test.
// fleet_test.go runs a short fleet-sync, refresh-storm and bad-input in CI.
//
// Timing: the scheduler ticks every 1s with a 3s leader lease (the demo's,
// which the scenarios' waits assume), not the shipped defaults of 5s and
// 15s; the report's header says which ran. -production-timing runs the
// shipped ones (read from the configuration's reference), -tick and
// -leader-lease any other, and -env NOTIONSYNC_NAME=VALUE (repeatable)
// gives every scheduler and worker another setting, since the demo keeps
// the shell's NOTIONSYNC_* variables out. An idle fleet's round trips per
// Notion request depend on the tick: quote the shipped figure to operators.
//
// Measurements: Notion requests, 429s, 401s and token grants are the
// sandbox's counters (GET /_sandbox/stats); Redis round trips are the sum
// of every worker's and scheduler's notionsync_redis_round_trips_total
// (one per command or pipeline sent, by the component its first key
// belongs to), scraped at the edges of each window; Redis commands are
// the sum of INFO commandstats calls, which include the commands Lua
// scripts run; CPU and memory come from /proc/<pid>/stat and status.
// Sync lag runs from a connection's import to the moment its pages are in
// the file sink (fleet-sync polls the sink, which costs no Redis command,
// then checks every cursor at its target) or to the first admin-API poll
// (every second) that shows its cursor at its target with nothing pending
// (the other scenarios).
package main
