package tokens

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
)

// The indexes (due, connections, status:<status>) are split into
// keyspace.Shards sorted sets, one per connection shard, so that a script
// over a connection names keys of one Redis Cluster slot. A listing reads
// all shards with one pipeline (a cluster client splits it per node: one
// round trip per master, in parallel) and merges them by (score, id):
// exactly the order one sorted set holding every member would have (Redis
// orders equal scores by the member's bytes), so pages look as they did
// before the split.

// entry is one member of an index with its score.
type entry struct {
	score int64
	id    string
}

func (e entry) less(o entry) bool {
	return e.score < o.score || e.score == o.score && e.id < o.id
}

func compareEntries(a, b entry) int {
	if c := cmp.Compare(a.score, b.score); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// shardRangeScript returns up to ARGV[4] members of the sorted set KEYS[1]
// with their scores, in index order, that come after the position
// (ARGV[1] score, ARGV[2] id) and whose
// score is at most ARGV[3] ("+inf" = any). Members with the cursor's own
// score are compared by bytes with string.byte: Lua's < on strings
// follows the server's locale, Redis's order does not. Its cost is
// O(log n + count) plus the members sharing the cursor's score (created
// in the same millisecond).
var shardRangeScript = redis.NewScript(`
local cs, cid, maxs, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local function after(id)
  for i = 1, math.min(#id, #cid) do
    local x, y = string.byte(id, i), string.byte(cid, i)
    if x ~= y then return x > y end
  end
  return #id > #cid
end
local out = {}
local min = cs
local offset = 0
while #out < 2 * n do
  local batch = redis.call('ZRANGE', KEYS[1], min, maxs, 'BYSCORE', 'LIMIT', offset, n, 'WITHSCORES')
  for i = 1, #batch, 2 do
    if #out >= 2 * n then break end
    if tonumber(batch[i + 1]) > tonumber(cs) or after(batch[i]) then
      out[#out + 1] = batch[i]
      out[#out + 1] = batch[i + 1]
    end
  end
  if #batch < 2 * n then break end
  offset = offset + n
end
return out
`)

// rangeEach reads up to count members of each shard keys[j] after
// cursors[j] (see shardRangeScript) with scores at most maxScore, in one
// pipeline. A shard read from its start needs no cursor logic and gets a
// plain ZRANGE BYSCORE (cheaper for Redis than a script); the others run
// shardRangeScript. EVALSHA in a pipeline cannot fall back to EVAL by
// itself, so calls that found no script (a node that restarted, or a
// replica promoted after a failover) are sent again as EVAL.
func (s *Store) rangeEach(ctx context.Context, keys []string, cursors []PageCursor, maxScore string, count int) ([][]entry, error) {
	args := func(j int) []any {
		return []any{strconv.FormatInt(cursors[j].CreatedMs, 10), cursors[j].ID, maxScore, count}
	}
	pipe := s.rdb.Pipeline()
	plain := make([]*redis.ZSliceCmd, len(keys))
	lua := make([]*redis.Cmd, len(keys))
	for j, k := range keys {
		if cursors[j].ID == "" {
			plain[j] = pipe.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
				Key: k, Start: "-inf", Stop: maxScore, ByScore: true, Count: int64(count)})
		} else {
			lua[j] = shardRangeScript.EvalSha(ctx, pipe, []string{k}, args(j)...)
		}
	}
	_, _ = pipe.Exec(ctx)
	var retry []int
	for j := range keys {
		if plain[j] != nil {
			if err := plain[j].Err(); err != nil {
				return nil, err
			}
		} else if err := lua[j].Err(); err != nil {
			if !strings.HasPrefix(err.Error(), "NOSCRIPT") {
				return nil, err
			}
			retry = append(retry, j)
		}
	}
	if len(retry) > 0 {
		pipe = s.rdb.Pipeline()
		for _, j := range retry {
			lua[j] = shardRangeScript.Eval(ctx, pipe, []string{keys[j]}, args(j)...)
		}
		_, _ = pipe.Exec(ctx)
		for _, j := range retry {
			if err := lua[j].Err(); err != nil {
				return nil, err
			}
		}
	}
	out := make([][]entry, len(keys))
	for j := range keys {
		if plain[j] != nil {
			for _, z := range plain[j].Val() {
				id, _ := z.Member.(string)
				out[j] = append(out[j], entry{score: int64(z.Score), id: id})
			}
			continue
		}
		vals, _ := lua[j].StringSlice()
		for k := 0; k+1 < len(vals); k += 2 {
			sc, _ := strconv.ParseFloat(vals[k+1], 64)
			out[j] = append(out[j], entry{score: int64(sc), id: vals[k]})
		}
	}
	return out, nil
}

// shardKeys returns the name of every shard of the index called name.
func (s *Store) shardKeys(name string) []string {
	keys := make([]string, keyspace.Shards)
	for i := range keys {
		keys[i] = keyspace.Shard(s.prefix, i) + name
	}
	return keys
}

// rangeShards returns the first n members, in (score, id) order, of the
// union of the index shards keys that come after cursor (the zero cursor:
// from the start) and have a score of at most maxScore ("+inf": any).
//
// It costs O(n + shards) members read, not O(shards * n): each shard is
// first asked for its fair share and a margin (2n/shards + 4). The merge
// is exact unless a shard that returned all it was asked for stops before
// the n-th merged member (it may hold more members that belong); only
// those shards are asked again, in a second pipeline, for the rest.
func (s *Store) rangeShards(ctx context.Context, keys []string, cursor PageCursor, maxScore string, n int) ([]entry, error) {
	if n <= 0 {
		return nil, nil
	}
	quota := min(n, 2*((n+len(keys)-1)/len(keys))+4)
	per := make([][]entry, len(keys))
	ask := func(idx []int, from func(i int) PageCursor, count int) error {
		sub := make([]string, len(idx))
		curs := make([]PageCursor, len(idx))
		for j, i := range idx {
			sub[j], curs[j] = keys[i], from(i)
		}
		res, err := s.rangeEach(ctx, sub, curs, maxScore, count)
		if err != nil {
			return err
		}
		for j, i := range idx {
			per[i] = append(per[i], res[j]...)
		}
		return nil
	}
	all := make([]int, len(keys))
	for i := range all {
		all[i] = i
	}
	if err := ask(all, func(int) PageCursor { return cursor }, quota); err != nil {
		return nil, err
	}
	merged := merge(per, n)
	if quota < n {
		var again []int
		for i, es := range per {
			if len(es) < quota {
				continue // the shard has nothing more in range
			}
			if len(merged) < n || es[len(es)-1].less(merged[n-1]) {
				again = append(again, i)
			}
		}
		if len(again) > 0 {
			last := func(i int) PageCursor {
				e := per[i][len(per[i])-1]
				return PageCursor{CreatedMs: e.score, ID: e.id}
			}
			if err := ask(again, last, n-quota); err != nil {
				return nil, err
			}
			merged = merge(per, n)
		}
	}
	return merged, nil
}

// merge returns the first n entries of the sorted lists.
func merge(lists [][]entry, n int) []entry {
	var out []entry
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.SortFunc(out, compareEntries)
	if len(out) > n {
		out = out[:n]
	}
	return out
}
