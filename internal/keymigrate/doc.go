// Package keymigrate moves the Redis data of a deployment written before
// the Redis Cluster key scheme (package internal/keyspace) to the new key
// names, in place, on a single Redis or a Sentinel primary. notionsyncctl
// redis migrate-keys runs it; docs/runbook.md ("Moving to the sharded key
// layout / Redis Cluster") says when.
//
// # What moves where
//
// Every key of a connection C keeps its name after the prefix P and gains
// its shard's hash tag: P+"conn:C" becomes keyspace.Conn(P, C)+"conn:C",
// P+"sync:C:todo" becomes keyspace.Conn(P, C)+"sync:C:todo", and so on for
// the token record and timeline, the sync state (state, pending, errors,
// dbcur, todo, recon, users), the drain flag, the reconciliation keys, the
// page claims (busy:C:...), checkpoints (ckpt:C:...), capped marks
// (capped:C:...), needs_reauth webhook marks (reauth-notified:C:...) and
// webhook de-duplication marks (webhook:notion:dedup:C:...).
// The rate limiter's P+"notion:{C}:gcra" and ":backoff" become
// keyspace.Conn(P, C)+"notion:C:gcra" and ":backoff".
//
// The global indexes due, connections, status:<status>, sweeps,
// sync:errored and busy:leases are split: C's entry, with its score, moves
// to shard keyspace.ShardOf(C) of the same index
// (keyspace.Shard(P, i)+name). busy:leases members name their connection
// in their second "\n"-separated field.
//
// The OAuth flows in progress (oauth:state:<digest>) and their cap zset
// (oauth:states, whose members are the state keys' full names) move under
// the control plane's shared tag: P+"{oauth}:oauth:state:...", so a user
// who started connecting before the move can finish after it.
//
// Other keys not tied to a connection keep their names (status:indexed,
// sweeps:cursor, scheduler:leader, webhook:notion:event:*,
// webhook:notion:verification, workspace:*), and so do asynq's keys. Keys
// under the prefix that match no known pattern are counted and left alone.
//
// Nothing live is dropped; only the old OAuth cap zset's entries whose
// state had already expired go with it. The short-lived keys (rate limiter state, page
// claims, drain flags, checkpoints) are renamed like the others: RENAME
// keeps a key's value and TTL and costs the same as a DEL, and keeping the
// limiter's backoff means Notion's Retry-After is still honoured after the
// move, and keeping claims and lease entries lets the new reaper recover
// work of a worker that died just before the move.
//
// # Atomicity and the refresh lock
//
// One Lua script moves one connection: its record, timeline, sync state,
// every other key found for it and its index entries, or nothing. So a
// reader sees a connection either wholly under the old names or wholly
// under the new ones, and a writer of the old version (whose token scripts
// are fenced on the record's version) either wrote before the move, and its
// write moved with the record, or finds no record and writes nothing.
//
// The script moves nothing while the connection's old refresh lock
// (P+"lock:C") is held: an old-version process may be between Notion's
// rotation of the refresh token and its compare-and-set of the new pair;
// moving the record then would make that compare-and-set fail and lose the
// only valid refresh token. Locked connections are retried until
// Config.LockWait has passed (a lock lives at most the refresh lock TTL,
// 30 s by default, after its holder stops extending it).
//
// A connection that already has a key under a new name that it also has
// under the old one (a new-version process re-created it while it was not
// yet moved) is a conflict: nothing of it moves, and it is reported, so an
// operator decides rather than the tool overwriting either copy.
//
// # Running it
//
// Discovery is SCAN-based (MATCH on the prefix, no KEYS), plus ZSCAN of the
// old indexes (an index entry without any key is moved too). The run is
// idempotent: a connection with nothing under the old names costs one
// script call that changes nothing, and a second run finds no old keys and
// moves nothing. It is resumable: an interrupted run leaves every
// connection wholly old or wholly new, and the next run moves the rest.
// Memory is O(connections found) for the discovery.
//
// Redis Cluster targets are refused (ErrCluster): this migration renames in
// place on the node that holds all keys; a cluster is filled afterwards
// from the migrated node (redis-cli --cluster import, or replication).
package keymigrate
