package tokens

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
)

// The status indexes let the operators' console page through the
// connections of one status without reading every record: one sorted set
// per status, member the connection id, score its creation time (ms), like
// the all-connections index. The scripts that change a status (commitScript,
// statusScript) move the id between them in the same atomic write, so an
// index never disagrees with the record it indexes.
//
// Records written before the indexes existed are indexed once by
// IndexStatuses (the scheduler runs it at start; reindexScript is
// idempotent and atomic per connection, so it may race with status
// changes and with another scheduler).
//
// Like the due and all-connections indexes, each status index is split
// into keyspace.Shards shards (a connection is in the shards of its own
// hash tag), so the scripts stay within one Redis Cluster slot; the
// listings below merge the shards (shards.go).

// Statuses lists every status, in the order of KEYS[5..8] of the scripts.
var Statuses = []Status{StatusActive, StatusPaused, StatusNeedsReauth, StatusDisconnected}

// luaStatusIndex defines index_status(status): the connection ARGV[5]
// is put in the index of status (score: its creation time) and removed
// from the others. An unknown status only removes it.
const luaStatusIndex = `
local function index_status(status)
  local names = {'active', 'paused', 'needs_reauth', 'disconnected'}
  local created = tonumber(redis.call('HGET', KEYS[1], 'created') or '0')
  for i, name in ipairs(names) do
    if name == status then
      redis.call('ZADD', KEYS[4 + i], created, ARGV[5])
    else
      redis.call('ZREM', KEYS[4 + i], ARGV[5])
    end
  end
end
`

// reindexScript puts one connection in the index of its stored status
// (or in none when the record is gone). KEYS as scriptKeys, ARGV[5] the id.
var reindexScript = redis.NewScript(luaStatusIndex + `
local status = redis.call('HGET', KEYS[1], 'status')
index_status(status or '')
return 1
`)

// statusKey is shard i of the index of status st.
func (s *Store) statusKey(i int, st Status) string {
	return keyspace.Shard(s.prefix, i) + "status:" + string(st)
}

// statusIndexDone marks that IndexStatuses ran to its end.
func (s *Store) statusIndexDone() string { return s.prefix + "status:indexed" }

// IndexStatuses indexes every connection by status, once per Redis (a
// marker key remembers that it ran; the scripts keep the indexes current
// from then on). It walks the shards of the all-connections index, 500
// members of every shard per pipeline (each script names the keys of one
// connection's shard only). It reports how many connections it indexed (0
// when the marker was set).
func (s *Store) IndexStatuses(ctx context.Context) (int, error) {
	n, err := s.rdb.Exists(ctx, s.statusIndexDone()).Result()
	if err != nil {
		return 0, fmt.Errorf("tokens: status index: %w", err)
	}
	if n == 1 {
		return 0, nil
	}
	// EVALSHA in a pipeline cannot fall back to EVAL, so load it first
	// (a cluster client loads it on every master).
	if err := reindexScript.Load(ctx, s.rdb).Err(); err != nil {
		return 0, fmt.Errorf("tokens: status index: %w", err)
	}
	const batch = 500
	done := 0
	live := make([]int, keyspace.Shards)
	for i := range live {
		live[i] = i
	}
	for start := int64(0); len(live) > 0; start += batch {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.StringSliceCmd, len(live))
		for j, i := range live {
			cmds[j] = pipe.ZRange(ctx, s.allKey(i), start, start+batch-1)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return done, fmt.Errorf("tokens: status index: %w", err)
		}
		pipe = s.rdb.Pipeline()
		var more []int
		count := 0
		for j, i := range live {
			ids := cmds[j].Val()
			for _, id := range ids {
				reindexScript.EvalSha(ctx, pipe, s.scriptKeys(id), s.scriptArgs(id, -1)...)
			}
			count += len(ids)
			if len(ids) == batch {
				more = append(more, i)
			}
		}
		if count > 0 {
			if _, err := pipe.Exec(ctx); err != nil {
				return done, fmt.Errorf("tokens: status index: %w", err)
			}
		}
		done += count
		live = more
	}
	if err := s.rdb.Set(ctx, s.statusIndexDone(), "1", 0).Err(); err != nil {
		return done, fmt.Errorf("tokens: status index: %w", err)
	}
	return done, nil
}

// PageCursor marks a position in an index page through PageIDs: the
// creation time and id of the last connection of the previous page.
// Unlike a rank, it stays valid when connections leave the index between
// two pages (a status index changes all the time).
type PageCursor struct {
	CreatedMs int64
	ID        string
}

// String encodes the cursor for a URL ("" for the start).
func (c PageCursor) String() string {
	if c.ID == "" {
		return ""
	}
	return strconv.FormatInt(c.CreatedMs, 10) + "." + c.ID
}

// ParsePageCursor decodes PageCursor.String.
func ParsePageCursor(v string) (PageCursor, error) {
	if v == "" {
		return PageCursor{}, nil
	}
	ms, id, ok := strings.Cut(v, ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || n < 0 || ValidateID(id) != nil {
		return PageCursor{}, errors.New("tokens: malformed page cursor")
	}
	return PageCursor{CreatedMs: n, ID: id}, nil
}

// PageIDs returns up to limit connection ids after cursor, oldest first
// (ties by id), from the index of status ("" = all connections), and the
// cursor of the next page (zero at the end). The page starts after the
// cursor's (creation time, id) whether or not the cursor's connection is
// still in the index (a status index changes all the time). It costs
// O(limit + shards) plus the connections created in the cursor's
// millisecond (see rangeShards).
func (s *Store) PageIDs(ctx context.Context, status Status, after PageCursor, limit int) ([]string, PageCursor, error) {
	name := "connections"
	if status != "" {
		name = "status:" + string(status)
	}
	if limit <= 0 {
		return nil, PageCursor{}, nil
	}
	// One more than the page tells whether another page follows.
	out, err := s.rangeShards(ctx, s.shardKeys(name), after, "+inf", limit+1)
	if err != nil {
		return nil, PageCursor{}, fmt.Errorf("tokens: page index: %w", err)
	}
	var next PageCursor
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = PageCursor{CreatedMs: last.score, ID: last.id}
	}
	ids := make([]string, len(out))
	for i, e := range out {
		ids[i] = e.id
	}
	return ids, next, nil
}

// CountByStatus returns how many connections each status index holds
// (ZCARD of every shard: O(1) each, one pipeline).
func (s *Store) CountByStatus(ctx context.Context) (map[Status]int64, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([][]*redis.IntCmd, len(Statuses))
	for j, st := range Statuses {
		cmds[j] = make([]*redis.IntCmd, keyspace.Shards)
		for i := range keyspace.Shards {
			cmds[j][i] = pipe.ZCard(ctx, s.statusKey(i, st))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("tokens: count by status: %w", err)
	}
	out := make(map[Status]int64, len(Statuses))
	for j, st := range Statuses {
		for _, c := range cmds[j] {
			out[st] += c.Val()
		}
	}
	return out, nil
}
