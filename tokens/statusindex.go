package tokens

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
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
// A later issue hash-tags keys per connection for Redis Cluster: these
// indexes, like the due index, are shared by all connections and will
// need the same treatment as the due index then.

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

func (s *Store) statusKey(st Status) string { return s.prefix + "status:" + string(st) }

// statusIndexDone marks that IndexStatuses ran to its end.
func (s *Store) statusIndexDone() string { return s.prefix + "status:indexed" }

// IndexStatuses indexes every connection by status, once per Redis (a
// marker key remembers that it ran; the scripts keep the indexes current
// from then on). It reads the all-connections index in batches of 500.
// It reports how many connections it indexed (0 when the marker was set).
func (s *Store) IndexStatuses(ctx context.Context) (int, error) {
	n, err := s.rdb.Exists(ctx, s.statusIndexDone()).Result()
	if err != nil {
		return 0, fmt.Errorf("tokens: status index: %w", err)
	}
	if n == 1 {
		return 0, nil
	}
	// EVALSHA in a pipeline cannot fall back to EVAL, so load it first.
	if err := reindexScript.Load(ctx, s.rdb).Err(); err != nil {
		return 0, fmt.Errorf("tokens: status index: %w", err)
	}
	const batch = 500
	done := 0
	for start := int64(0); ; start += batch {
		ids, err := s.rdb.ZRange(ctx, s.allKey(), start, start+batch-1).Result()
		if err != nil {
			return done, fmt.Errorf("tokens: status index: %w", err)
		}
		pipe := s.rdb.Pipeline()
		for _, id := range ids {
			reindexScript.EvalSha(ctx, pipe, s.scriptKeys(id), s.scriptArgs(id, -1)...)
		}
		if len(ids) > 0 {
			if _, err := pipe.Exec(ctx); err != nil {
				return done, fmt.Errorf("tokens: status index: %w", err)
			}
		}
		done += len(ids)
		if len(ids) < batch {
			break
		}
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

// PageIDs returns up to limit connection ids after cursor, oldest first,
// from the index of status ("" = all connections), and the cursor of the
// next page (zero at the end). Its cost is O(log n + limit) Redis work
// (ZRANGE BYSCORE with a LIMIT), plus the connections that share the
// cursor's creation millisecond.
func (s *Store) PageIDs(ctx context.Context, status Status, after PageCursor, limit int) ([]string, PageCursor, error) {
	key := s.allKey()
	if status != "" {
		key = s.statusKey(status)
	}
	if limit <= 0 {
		return nil, PageCursor{}, nil
	}
	min := "-inf"
	if after.ID != "" {
		min = strconv.FormatInt(after.CreatedMs, 10)
	}
	var out []redis.Z
	// Members with the cursor's score sort by id; skip those up to the
	// cursor's id. Ties are rare (same creation millisecond), so this
	// normally takes one round trip.
	// One more than the page tells whether another page follows.
	for offset := int64(0); len(out) <= limit; {
		want := int64(limit + 1 - len(out))
		zs, err := s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
			Key: key, Start: min, Stop: "+inf", ByScore: true, Offset: offset, Count: want,
		}).Result()
		if err != nil {
			return nil, PageCursor{}, fmt.Errorf("tokens: page index: %w", err)
		}
		for _, z := range zs {
			id, _ := z.Member.(string)
			if after.ID != "" && int64(z.Score) == after.CreatedMs && id <= after.ID {
				continue
			}
			out = append(out, z)
		}
		if int64(len(zs)) < want {
			break
		}
		offset += int64(len(zs))
	}
	var next PageCursor
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = PageCursor{CreatedMs: int64(last.Score), ID: last.Member.(string)}
	}
	ids := make([]string, len(out))
	for i, z := range out {
		ids[i] = z.Member.(string)
	}
	return ids, next, nil
}

// CountByStatus returns how many connections each status index holds
// (ZCARD: O(1) each, one round trip).
func (s *Store) CountByStatus(ctx context.Context) (map[Status]int64, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(Statuses))
	for i, st := range Statuses {
		cmds[i] = pipe.ZCard(ctx, s.statusKey(st))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("tokens: count by status: %w", err)
	}
	out := make(map[Status]int64, len(Statuses))
	for i, st := range Statuses {
		out[st] = cmds[i].Val()
	}
	return out, nil
}
