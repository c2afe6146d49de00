// Package tokens keeps OAuth2 connections alive when the provider rotates
// refresh tokens (every refresh returns a new pair and kills the old refresh
// token), across any number of goroutines and processes sharing one Redis.
//
// It owns: the connection record (Store: sealed token pair, expiry, version,
// status, timeline, refresh-due index), the refresh protocol (Source), and
// the error vocabulary callers branch on (ErrReauthRequired, ErrTransient,
// ErrPaused, ...). It knows the provider only through the one-method Provider
// interface; tokens/notionauth implements it for Notion.
//
// # The refresh protocol
//
// A caller of Source.Token takes the fast path while the token's refresh is
// not due: a cached token, or one Redis round trip. Otherwise:
//
//  1. In-process single-flight, keyed by connection: however many goroutines
//     of a process need a refresh, one flight runs and the rest share its
//     result.
//  2. The flight takes a redsync lock for the connection (expiry LockTTL,
//     more than twice the token call's deadline, extended every LockTTL/3
//     while the call runs, since redsync has no watchdog).
//  3. Holding the lock, it re-reads the record. If the version moved, another
//     process refreshed: it uses that pair and calls nothing.
//  4. It sets an in-flight marker (fenced), calls the token endpoint with its
//     own deadline, detached from the caller's context, and retries an
//     unknown outcome (timeout, 5xx, dropped connection) with the same
//     refresh token a bounded number of times.
//  5. It stores the new pair with one Lua script that compares the stored
//     version with the one the refresh started from and writes pair, expiry,
//     refresh-due time, version+1, index entry and a timeline event, or
//     nothing. redsync gives no fencing token; the version is the fence, so a
//     holder whose lock expired can never overwrite a newer pair. A response
//     without a refresh token keeps the stored one.
//  6. Only after that write succeeded is the access token returned to anyone.
//     The script publishes a notification; processes waiting for the lock are
//     woken by it (pub/sub), re-read, and never refresh on their own unless
//     the lock is free and the token still needs it.
//
// invalid_grant is judged after a re-read: if the version moved, the loser
// adopts the new pair; if not, the connection becomes needs_reauth with a
// reason: revoked, or lost_rotation_response when an earlier attempt from
// the same version had an unknown outcome (including a process killed
// mid-refresh, which the in-flight marker reveals). A connection that needs
// re-authorization answers every call at once with *ReauthError, without a
// network call, until Store.Connect re-authorizes it.
//
// Transient failures back off per connection (exponential, jittered, stored
// in Redis so every process honours it); while the access token is still
// valid, callers keep getting it.
//
// # Concurrency
//
// Store, Source and Keyring are safe for concurrent use. Hooks are called
// synchronously from the goroutine doing the work.
//
// # Storage
//
// Redis keys follow internal/keyspace, so the package runs unchanged on one
// Redis, Sentinel or a Redis Cluster. A connection's keys carry the hash
// tag of its shard (keyspace.ShardOf(id), one of 64), written {tag} below;
// the indexes are split into 64 shards, shard i holding the connections of
// shard i under tag i. Every script names the keys of one connection and
// its index shards only: one slot. Prefix configurable, "notionsync:" by
// default:
//
//	<prefix>{tag}:conn:<id>          hash: v, status, reason, detail, at, rt
//	                                 (sealed), exp, due, retry, fails,
//	                                 created, updated, refreshed, meta,
//	                                 inflight, nonce
//	<prefix>{tag}:conn:<id>:events   list: timeline, newest first, capped
//	<prefix>{tag}:lock:<id>          redsync lock
//	<prefix>{tag}:due                zset: id by refresh-due time (ms)
//	<prefix>{tag}:connections        zset: id by creation time
//	<prefix>{tag}:status:<status>    zset: id by creation time, one per
//	                                 status (statusindex.go)
//	<prefix>status:indexed           string: IndexStatuses ran (global)
//	<prefix>token-events             pub/sub channel: "<id> <version> <kind>"
//
// Listings (Due, List, PageIDs, CountByStatus, CheckKeys, IndexStatuses)
// read every shard in one pipeline, which a cluster client splits into one
// round trip per master, and merge by (score, id): the order one sorted set
// would give (shards.go).
//
// Secrets are sealed with AES-256-GCM (Keyring) bound to the connection id
// and field, with the key id stored in front of each ciphertext for rotation.
package tokens
