package keymigrate

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fixtureFile holds old-layout data: token records written by tokens.Store
// at e4807bb (before the key scheme) plus the jobs, scheduler, limiter and
// control plane keys in the formats of that commit. See
// fixture_gen_test.go for how it was made.
const fixtureFile = "testdata/old-layout.json"

// fixturePrefix is the key prefix the fixture was written under.
const fixturePrefix = "notionsync:"

// fixtureKeySecret is the token key the fixture's records are sealed with
// (test data, not a secret).
var fixtureKeySecret = []byte("keymigrate-fixture-key-32-bytes!")

// fixtureKey is one key of a dump, its name without the prefix.
type fixtureKey struct {
	Key  string `json:"key"`
	Type string `json:"type"`
	// TTLMs is the time to live in ms (0: none).
	TTLMs  int64             `json:"ttl_ms,omitempty"`
	String string            `json:"string,omitempty"`
	Hash   map[string]string `json:"hash,omitempty"`
	List   []string          `json:"list,omitempty"`
	Set    []string          `json:"set,omitempty"`
	ZSet   map[string]string `json:"zset,omitempty"` // member -> score as Redis prints it
}

// dumpKeys reads every key matching pattern (SCAN) into fixture form, names
// without strip, sorted by name. TTLs are relative (PTTL).
func dumpKeys(ctx context.Context, rdb redis.UniversalClient, pattern, strip string) ([]fixtureKey, error) {
	var out []fixtureKey
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		k, err := readKey(ctx, rdb, iter.Val())
		if err != nil {
			return nil, err
		}
		k.Key = strings.TrimPrefix(k.Key, strip)
		if k.TTLMs > 0 {
			k.TTLMs = (k.TTLMs + 999) / 1000 * 1000 // round: the dump is committed
		}
		out = append(out, k)
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// readKey reads one key; TTLMs is its PTTL.
func readKey(ctx context.Context, rdb redis.UniversalClient, key string) (fixtureKey, error) {
	k := fixtureKey{Key: key}
	typ, err := rdb.Type(ctx, key).Result()
	if err != nil {
		return k, err
	}
	k.Type = typ
	switch typ {
	case "string":
		k.String, err = rdb.Get(ctx, key).Result()
	case "hash":
		k.Hash, err = rdb.HGetAll(ctx, key).Result()
	case "list":
		k.List, err = rdb.LRange(ctx, key, 0, -1).Result()
	case "set":
		k.Set, err = rdb.SMembers(ctx, key).Result()
		sort.Strings(k.Set)
	case "zset":
		var zs []redis.Z
		zs, err = rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
		k.ZSet = map[string]string{}
		for _, z := range zs {
			k.ZSet[z.Member.(string)] = fmt.Sprint(int64(z.Score))
		}
	default:
		return k, fmt.Errorf("key %s: type %s not supported by the fixture", key, typ)
	}
	if err != nil {
		return k, err
	}
	ttl, err := rdb.PTTL(ctx, key).Result()
	if err != nil {
		return k, err
	}
	if ttl > 0 {
		k.TTLMs = ttl.Milliseconds()
	}
	return k, nil
}

// loadFixture writes the fixture's keys under prefix. A TTL is at least
// minFixtureTTL, so that no key expires while a test runs (the fixture's
// claims live 8 s, as in production) and a key's PEXPIRETIME before and
// after the migration can be compared exactly.
func loadFixture(ctx context.Context, tb testing.TB, rdb redis.UniversalClient, prefix string) []fixtureKey {
	tb.Helper()
	b, err := os.ReadFile(fixtureFile)
	if err != nil {
		tb.Fatal(err)
	}
	var keys []fixtureKey
	if err := json.Unmarshal(b, &keys); err != nil {
		tb.Fatal(err)
	}
	pipe := rdb.Pipeline()
	for _, k := range keys {
		name := prefix + k.Key
		switch k.Type {
		case "string":
			pipe.Set(ctx, name, k.String, 0)
		case "hash":
			pipe.HSet(ctx, name, k.Hash)
		case "list":
			pipe.RPush(ctx, name, toAny(k.List)...)
		case "set":
			pipe.SAdd(ctx, name, toAny(k.Set)...)
		case "zset":
			for m, s := range k.ZSet {
				// The OAuth cap zset's members are full key names.
				if rest, ok := strings.CutPrefix(m, fixturePrefix); ok {
					m = prefix + rest
				}
				pipe.Do(ctx, "ZADD", name, s, m)
			}
		}
		if k.TTLMs > 0 {
			pipe.PExpire(ctx, name, max(time.Duration(k.TTLMs)*time.Millisecond, minFixtureTTL))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		tb.Fatal(err)
	}
	return keys
}

const minFixtureTTL = time.Hour

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
