package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Nothing a task holds in a connection's sync state may outlive both the
// task and its lease. A sweep's pending entry holds the cursor; while the
// sweep runs, its lease (lease.go) says so, and the reaper releases the
// entry once the lease runs out. A sweep that fails used to keep its entry
// (and drop its lease) for asynq to run the same task again. asynq may
// never do so in time: a task whose retry or completion it could not write
// (Redis killed or restarting at that moment; asynq v0.26 retries that
// write with a context it has already cancelled) stays "active" until its
// 30 s lease and its recoverer's one-minute poll have passed, 60 to 120 s,
// and the connection's cursor and "synced" waited for it. So a sweep that
// ends without finishing gives its entry back together with its lease, in
// one script: either both go or, when Redis cannot be reached, both stay
// and the reaper releases them after ClaimTTL. Releasing is safe: the
// sweep recorded no target, so the cursor can only move to the target of
// an earlier, complete sweep; the sweep's checkpoint is the connection's,
// so its retry (or the next slot's sweep) resumes where it stopped.

// releaseSweepScript drops a sweep's lease (ARGV[2] in KEYS[3]) and its
// pending entry (ARGV[1] in KEYS[2]), then moves the cursor of the sync
// hash (KEYS[1]) to the target if nothing else is pending. Returns the new
// cursor (ms) when it moved, else 0. The keys are the connection's sync
// hash and pending set and its shard of the lease index (leasesKey(conn),
// i.e. leasesShardKey(keyspace.ShardOf(conn))): one slot, as Redis Cluster
// requires of a script.
var releaseSweepScript = redis.NewScript(`
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('SREM', KEYS[2], ARGV[1])
` + moveCursorLua)

// releaseSweep gives back the pending entry and the lease of a sweep that
// ended without finishing (see above); returns the cursor when it moved.
func (s *state) releaseSweep(ctx context.Context, conn, self string) (time.Time, error) {
	n, err := releaseSweepScript.Run(ctx, s.rdb,
		[]string{s.key(conn), s.pendingKey(conn), s.leasesKey(conn)},
		self, leaseMember(leaseSweep, conn, self)).Int64()
	if err != nil {
		return time.Time{}, fmt.Errorf("sync state of %s: %w", conn, err)
	}
	if n > 0 {
		return time.UnixMilli(n), nil
	}
	return time.Time{}, nil
}
