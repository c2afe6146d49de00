package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// The errored index lets the operators' console list the connections that
// have per-object errors without reading every connection's errors hash:
//
//	<prefix>sync:errored   sorted set, every score 0 (so it pages by id
//	                       with ZRANGE BYLEX): connections that may have
//	                       per-object errors
//
// It is a superset, kept cheap on the write path: every writer that
// records an error adds the connection first (markErrored, ZADD NX, before
// the script that writes the error), so a connection with an error is
// always in it; nothing removes it when its errors clear. The reader prunes
// instead: ErroredPage checks each candidate's errors hash and removes the
// ones whose hash is empty, atomically (pruneErroredScript), so an error
// written in between is never lost from the index. A stale entry is pruned
// the first time a reader meets it, so a page costs O(page size) amortized.
//
// Writers of the errors hash that record an error must call markErrored
// first: setError, deferTodo and done do.

func (s *state) erroredKey() string { return s.prefix + "sync:errored" }

// markErrored adds conn to the errored index (before its error is written).
func (s *state) markErrored(ctx context.Context, conn string) error {
	if err := s.rdb.ZAddNX(ctx, s.erroredKey(), redis.Z{Score: 0, Member: conn}).Err(); err != nil {
		return fmt.Errorf("sync state of %s: errored index: %w", conn, err)
	}
	return nil
}

// pruneErroredScript removes from the errored index (KEYS[1]) each
// connection ARGV[i] whose errors hash KEYS[i+1] is empty, and returns
// the connections it kept.
var pruneErroredScript = redis.NewScript(`
local kept = {}
for i, conn in ipairs(ARGV) do
  if redis.call('HLEN', KEYS[i + 1]) == 0 then
    redis.call('ZREM', KEYS[1], conn)
  else
    table.insert(kept, conn)
  end
end
return kept
`)

// ErroredPage returns up to limit connections that have per-object errors,
// by id after the id after ("" = from the start), and the id to pass as
// after for the next page ("" at the end). Entries whose errors cleared
// are pruned on the way (see the errored index above).
func (r *StateReader) ErroredPage(ctx context.Context, after string, limit int) ([]string, string, error) {
	s := r.s
	if limit <= 0 {
		return nil, "", nil
	}
	var out []string
	min := "-"
	if after != "" {
		min = "(" + after
	}
	for len(out) < limit {
		want := limit - len(out)
		ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
			Key: s.erroredKey(), Start: min, Stop: "+", ByLex: true, Count: int64(want),
		}).Result()
		if err != nil {
			return nil, "", fmt.Errorf("errored index: %w", err)
		}
		if len(ids) == 0 {
			return out, "", nil
		}
		keys := make([]string, 0, len(ids)+1)
		keys = append(keys, s.erroredKey())
		for _, id := range ids {
			keys = append(keys, s.errorsKey(id))
		}
		kept, err := pruneErroredScript.Run(ctx, s.rdb, keys, toAny(ids)...).StringSlice()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, "", fmt.Errorf("errored index: %w", err)
		}
		out = append(out, kept...)
		min = "(" + ids[len(ids)-1]
		if len(ids) < want {
			return out, "", nil // the index ended
		}
	}
	// A full page (its last id is the last one read): the next page starts
	// after it, and may turn out empty.
	return out, out[len(out)-1], nil
}

// TaskRef names a running task of a connection, as the lease index knows
// it.
type TaskRef struct {
	// Kind is the lease kind: "sweep", "drain" or "db".
	Kind string
	// ID names the asynq task.
	ID string
	// Queue is the task's queue, and State its asynq state ("active",
	// "retry", ...), as asynq answers; both "" when asynq no longer has
	// the task (its lease outlived it until the reaper's next pass).
	Queue, State string
}

// RunningTasks returns the tasks of conn that hold a lease now (sweeps,
// drains and database tasks). It reads the whole lease index, whose size
// is bounded by the fleet's running tasks (worker slots), not by the
// number of connections, then asks asynq for each of conn's tasks in the
// queues it can be in (a drain or database task of a first sync runs in
// the backfill queue, a takeover in sync).
func (r *StateReader) RunningTasks(ctx context.Context, conn string) ([]TaskRef, error) {
	members, err := r.s.rdb.ZRange(ctx, r.s.leasesKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("lease index: %w", err)
	}
	var out []TaskRef
	var insp *asynq.Inspector
	for _, m := range members {
		parts := strings.Split(m, "\n")
		if len(parts) < 3 || parts[1] != conn {
			continue
		}
		ref := TaskRef{Kind: parts[0], ID: parts[2]}
		if insp == nil {
			// Not closed: it would close the shared client.
			insp = asynq.NewInspectorFromRedisClient(r.s.rdb)
		}
		for _, q := range r.taskQueues(conn) {
			if info, err := insp.GetTaskInfo(q, ref.ID); err == nil {
				ref.Queue, ref.State = q, info.State.String()
				break
			}
		}
		out = append(out, ref)
	}
	return out, nil
}
