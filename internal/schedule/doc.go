// Package schedule is the scheduler loop that cmd/scheduler runs: it keeps
// OAuth tokens fresh before they expire and sweeps every active connection
// on its own interval, by enqueuing tasks that workers run. It owns the
// leader lease, the sweep schedule and the discovery of connections; it
// reads connections only through tokens.Store (Due, Get, List) and writes
// tasks only through the Enqueuer (package jobs).
//
// # Leadership
//
// Any number of replicas may run; one acts. The lease is a Redis key
// (<prefix>scheduler:leader) holding the leader's InstanceID:
//
//   - a standby tries SET NX PX LeaseTTL every Tick;
//   - the leader renews it with a compare-and-PEXPIRE script every
//     LeaseTTL/5, and acts only while its last successful renewal was sent
//     less than LeaseTTL/2 ago (IsLeader). A leader whose renewals fail
//     stops acting at that point, well before Redis expires its lease, and
//     the tick in progress is cancelled;
//   - Run releases the lease with a compare-and-DEL when its context ends,
//     so a standby takes over at its next attempt (within Tick). After a
//     crash, a standby takes over within LeaseTTL + Tick.
//
// The lease runs on the real monotonic clock (Config.Now is for scheduling
// decisions only). Counting the validity window from when a renewal was
// sent makes it end no later than the expiry Redis applies, which starts
// when Redis runs the script; the remaining LeaseTTL/2 covers clock-rate
// differences and the time between the validity check and a write reaching
// Redis. It cannot cover everything: a process paused (GC, VM steal, SIGSTOP)
// for longer than that between the check and the write, or a Sentinel
// failover that loses the lease key (replication is asynchronous), can give
// two leaders for a moment. That is safe by construction, not by timing:
//
//   - a refresh task's id is derived from (connection, token version), so
//     any number of leaders asking for the same version get one task;
//   - a sweep task's id is derived from (connection, slot), where slot is the
//     score read from the sweep schedule (not anyone's clock), so two
//     leaders acting on the same entry ask for the same task;
//   - the schedule is moved with a compare-and-set per entry, so a stale
//     leader cannot move an entry the current leader already moved.
//
// # Proactive refresh (token-lifecycle invariants 9 and 10)
//
// Each tick reads up to MaxRefreshPerTick ids from the store's refresh-due
// index (Store.Due, a ZRANGE BYSCORE: the cost grows with the number due, not
// with the number of connections) for refreshes due before
// now+RefreshLookahead, reads the records (Store.GetMany) and enqueues a refresh
// of its current version if the connection is active or paused and the
// record still says the refresh is due (it may have been refreshed, or
// backed off, since the index was read). needs_reauth and disconnected
// connections are not in the index (tokens removes them) and are skipped if
// met anyway: a dead connection costs nothing. A transient refresh failure
// moves the connection's index entry to the end of its backoff (tokens'
// failScript), so it is picked again once per backoff period, not every
// tick.
//
// A task may be picked up to RefreshLookahead before the token is due. The
// refresh task must therefore refresh a due-within-lookahead token (or run
// at the due time), and a retained task id must not block the next attempt
// of the same version after a transient failure. An Enqueuer that also
// implements RefreshAtEnqueuer receives the due time (refresh-due or end of
// backoff) and can solve both: task id from (connection, version, due) and
// asynq.ProcessAt(due). A negative RefreshLookahead disables the lookahead.
//
// # Sync sweeps
//
// The sweep schedule is a sorted set split into 64 shards
// (internal/keyspace): member connection id, score the next sweep slot
// (unix ms); shard i holds the connections whose keyspace.ShardOf is i.
// Each tick reads the head of every shard in one pipeline (a cluster client
// splits it per master), merges them and takes the up to MaxSweepsPerTick
// oldest entries with score <= now; per connection:
//
//   - active: enqueues EnqueueSweep(id, slot) and moves the entry to
//     slot+interval (from the slot, so the schedule does not drift; from now
//     plus a random half-to-whole interval when more than an interval
//     behind);
//   - paused: no task; the entry moves on as if swept, so a resumed
//     connection is swept at its next slot;
//   - needs_reauth, disconnected: no task; looked at again after
//     ParkInterval (one read per ParkInterval; re-authorizing through the
//     control plane enqueues the first sync itself);
//   - missing: removed; a failed read or enqueue: retried shortly after.
//
// The interval is Config.SyncInterval unless the connection's metadata
// (tokens.ConnectOptions.Meta) has MetaSyncInterval, a Go duration. The
// metadata was chosen over a separate Redis hash because the scheduler
// reads the record anyway (no extra command) and the setting lives with the
// connection; it is set when the connection is created, re-authorized or
// imported.
//
// Connections enter the schedule by discovery, after the due work of each
// tick: one cursor follows the tail of the store's connection list (new
// connections are scheduled on the next tick), another cycles through the
// whole list, RescanPerTick per tick, to repair the schedule. A new entry
// gets a random first slot within its interval, stratified over the page,
// so a fleet created at once does not sweep in lockstep.
//
// # Redis keys
//
//	<prefix>scheduler:leader   string: the leader's instance id, PX LeaseTTL
//	<prefix>{<tag i>}:sweeps   zset, shard i of the sweep schedule (i in 0..63,
//	                           keyspace.Shard): connection id by next slot (ms)
//	<prefix>sweeps:cursor      hash: tail, rescan (discovery cursors: index
//	                           positions "<created ms>.<id>", "" = the start;
//	                           a bare id from older versions is still read)
//
// Redis Cluster: every script names one key (the lease, or one shard of the
// schedule), so each runs on one slot; the shards spread over the masters;
// the discovery cursor stays one global key and is never in a script or
// MULTI with a shard. Plain pipelines span shards (go-redis's cluster client
// sends each master its part). A single Redis or Sentinel runs the same
// code: the braces mean nothing there.
//
// # Cost of a tick
//
// With D refreshes and S sweeps due: the due refreshes (Store.Due), one
// ZRANGE per schedule shard (64 commands in one pipeline: one round trip
// per master), one HMGET per distinct connection (D+S at most) sent in
// pipelined batches of 500 (Store.GetMany: one round trip per batch), one
// enqueue per due connection, one reschedule script per shard touched (at
// most min(S, 64), in one pipeline), and discovery (a cursor read, two List
// pages: 2 commands plus one read per connection listed, and a pipeline of
// ZADDs and a cursor write only when something changed). Nothing depends on
// the total number of connections: the cost is O(D + S + shards).
//
// # Concurrency
//
// A Scheduler is safe for concurrent use. Run may run once at a time
// (ErrAlreadyRunning otherwise); IsLeader may be called at any time; Tick
// may run concurrently with Run or with another Tick, with the same effect as
// two leaders (no duplicate tasks). Hooks are called synchronously: OnTick
// from the goroutine running the tick, OnLeaderChange from the goroutine
// maintaining the lease.
package schedule
