package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
)

// The errored index lets the operators' console list the connections that
// have per-object errors without reading every connection's errors hash:
//
//	<s_i>sync:errored   sorted set, every score 0 (so it pages by id
//	                    with ZRANGE BYLEX): connections of shard i that
//	                    may have per-object errors
//
// with <s_i> = keyspace.Shard(<prefix>, i) for each of the keyspace.Shards
// shards: a connection's entry sits in its own slot, next to its errors
// hash, so the pruning script names keys of one slot. A page merges the
// shards (one pipeline per step: one round trip per Redis node).
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

// erroredKey is the errored index shard that holds conn.
func (s *state) erroredKey(conn string) string { return s.cp(conn) + "sync:errored" }

// erroredShardKey is shard i of the errored index.
func (s *state) erroredShardKey(i int) string { return keyspace.Shard(s.prefix, i) + "sync:errored" }

// markErrored adds conn to the errored index (before its error is written).
func (s *state) markErrored(ctx context.Context, conn string) error {
	if err := s.rdb.ZAddNX(ctx, s.erroredKey(conn), redis.Z{Score: 0, Member: conn}).Err(); err != nil {
		return fmt.Errorf("sync state of %s: errored index: %w", conn, err)
	}
	return nil
}

// pruneErroredScript removes from an errored index shard (KEYS[1]) each
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
//
// Each step reads up to the page's remainder from every shard (one
// pipeline), keeps the smallest ids of their union, and prunes those (one
// pipeline of one script per shard concerned): ids in shard order would
// not page.
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
		pipe := s.rdb.Pipeline()
		reads := make([]*redis.StringSliceCmd, keyspace.Shards)
		for i := range reads {
			reads[i] = pipe.ZRangeArgs(ctx, redis.ZRangeArgs{
				Key: s.erroredShardKey(i), Start: min, Stop: "+", ByLex: true, Count: int64(want),
			})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, "", fmt.Errorf("errored index: %w", err)
		}
		var ids []string
		for _, c := range reads {
			ids = append(ids, c.Val()...)
		}
		if len(ids) == 0 {
			return out, "", nil
		}
		slices.Sort(ids)
		ended := len(ids) < want // every shard is read to its end
		if len(ids) > want {
			ids = ids[:want]
		}
		byShard := map[int][]string{}
		var order []int
		for _, id := range ids {
			sh := keyspace.ShardOf(id)
			if byShard[sh] == nil {
				order = append(order, sh)
			}
			byShard[sh] = append(byShard[sh], id)
		}
		calls := make([]scriptCall, len(order))
		for i, sh := range order {
			keys := make([]string, 0, len(byShard[sh])+1)
			keys = append(keys, s.erroredShardKey(sh))
			for _, id := range byShard[sh] {
				keys = append(keys, s.errorsKey(id))
			}
			calls[i] = scriptCall{keys: keys, args: toAny(byShard[sh])}
		}
		cmds, err := runScripts(ctx, s.rdb, pruneErroredScript, calls)
		if err != nil {
			return nil, "", fmt.Errorf("errored index: %w", err)
		}
		var kept []string
		for _, c := range cmds {
			k, _ := c.StringSlice()
			kept = append(kept, k...)
		}
		slices.Sort(kept)
		out = append(out, kept...)
		min = "(" + ids[len(ids)-1]
		if ended {
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
// drains and database tasks). It reads conn's shard of the lease index,
// whose size is bounded by the fleet's running tasks (worker slots), not
// by the number of connections, then asks asynq for each of conn's tasks in the
// queues it can be in (a drain or database task of a first sync runs in
// the backfill queue, a takeover in sync).
func (r *StateReader) RunningTasks(ctx context.Context, conn string) ([]TaskRef, error) {
	members, err := r.s.rdb.ZRange(ctx, r.s.leasesKey(conn), 0, -1).Result()
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
