// Package demo runs notionsync locally as a set of processes: a
// redis-server, the Notion sandbox (cmd/notion-sandbox), one or more
// schedulers and several workers, each its own child process configured
// through NOTIONSYNC_* variables exactly as an operator would, with the file
// sink under a local folder. It is what `make demo` runs (cmd/demo, through
// Run) and what the multi-process tests drive (internal/systemtest, through
// Cluster).
//
// # What it owns
//
//   - Options and the environment of every process: a random token key and
//     admin token per run, the sandbox's client credentials, a short access
//     token lifetime (sent by the sandbox as expires_in, and the refresh
//     margin and jitter scaled to it) so that coordinated refreshes happen
//     while one watches, scheduler 0's address as the public URL and
//     redirect URI of every scheduler (the OAuth state lives in Redis, so any
//     replica can answer a callback).
//   - The processes' lives: start in dependency order with a readiness check
//     each (PING, the sandbox's ready line, GET /readyz), logs in
//     <Dir>/logs/<name>.log, crash and graceful stop of single processes,
//     and Stop, which ends them all: workers and schedulers first (SIGTERM,
//     so workers hand unfinished tasks back), then the sandbox, then Redis,
//     SIGKILL after Options.StopTimeout. Every child is in its own process
//     group (a Ctrl-C in the terminal reaches the demo only, which stops the
//     children in order) and, on Linux, dies with the demo (Pdeathsig).
//   - Faults for load and chaos tests (bench/fleet): RestartWorker and
//     RestartScheduler start a killed or stopped node again (a scheduler on
//     its old address), RestartRedis crashes Redis and starts it again on
//     the same port and append-only file. With Options.RedisCluster, Redis
//     is a Redis Cluster of three masters and three replicas instead, and
//     KillRedisMaster crashes a master, waits for its replica's promotion
//     and restarts the node as a replica.
//   - Connect: the real OAuth redirect flow with a cookie-keeping client.
//   - Progress and Watch: the sink's page documents against the sandbox's
//     /_sandbox/expected, the sandbox's token counters, the connection as
//     the admin API shows it.
//   - Leader: which scheduler holds the lease, mapped from the lease's
//     default instance id "<hostname>-<pid>-<random>" to a process id.
//
// Redis is started by this package rather than internal/redistest, whose
// servers share the test binary's process group (a Ctrl-C would stop Redis
// before the workers had handed their tasks back), and with the append-only
// file fsynced on every write.
//
// # Concurrency
//
// Cluster.Start may be called once. Cluster.Stop may be called at any time,
// more than once, and concurrently with other methods. All other methods of
// Cluster and Process are safe for concurrent use after Start has returned
// nil. Run owns its Cluster and blocks until it has stopped it.
package demo
