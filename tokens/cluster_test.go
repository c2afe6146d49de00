package tokens_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/tokens"
)

// idsCoveringShards returns perShard connection ids (prefix + number) in
// every shard.
func idsCoveringShards(prefix string, perShard int) []string {
	var ids []string
	count := make([]int, keyspace.Shards)
	for i := 0; len(ids) < perShard*keyspace.Shards; i++ {
		id := fmt.Sprintf("%s%d", prefix, i)
		if sh := keyspace.ShardOf(id); count[sh] < perShard {
			count[sh]++
			ids = append(ids, id)
		}
	}
	return ids
}

// On a Redis Cluster, every script over a connection names keys of one
// slot: the whole lifecycle (connect, refresh, failure, pause, resume,
// needs_reauth, re-authorization, rekey, disconnect) runs without a
// CROSSSLOT error for connections in every shard, and every key it leaves
// carries a hash tag, except the two documented global ones.
func TestClusterScriptsStayInOneSlot(t *testing.T) {
	t.Parallel()
	t.Run("cluster", func(t *testing.T) {
		e := newEnv(t, notionfake.Options{})
		ctx := context.Background()
		ids := idsCoveringShards("slot-", 1)
		src := e.source(nil)
		rotated := newKeyring(t, "k2", "k1")
		rekeyStore := e.store(rotated)
		st := e.store(nil)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, id := range ids {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				step := func(what string, err error) bool {
					if err != nil {
						t.Errorf("%s %s (shard %d): %v", what, id, keyspace.ShardOf(id), err)
					}
					return err == nil
				}
				e.connect(id)
				_, err := src.ForceRefresh(ctx, id)
				ok := step("refresh", err) &&
					step("pause", st.Pause(ctx, id)) &&
					step("resume", st.Resume(ctx, id)) &&
					step("needs_reauth", st.MarkNeedsReauth(ctx, id, "test"))
				if !ok {
					return
				}
				_, err = st.Connect(ctx, id, &tokens.Grant{AccessToken: "a-" + id, RefreshToken: "r-" + id}, testTiming, tokens.ConnectOptions{})
				_, nerr := st.EnsureLinkNonce(ctx, id)
				_, rerr := rekeyStore.Rekey(ctx, id)
				_ = step("reconnect", err) && step("link nonce", nerr) && step("rekey", rerr) &&
					step("disconnect", st.Disconnect(ctx, id))
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		counts, err := st.CountByStatus(ctx)
		if err != nil || counts[tokens.StatusDisconnected] != int64(len(ids)) {
			t.Fatalf("counts %v, %v; want %d disconnected", counts, err, len(ids))
		}
		keys, err := redisKeys(ctx, e.rdb, e.prefix+"*")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			rest := strings.TrimPrefix(k, e.prefix)
			if !strings.HasPrefix(rest, "{") && rest != "status:indexed" {
				t.Errorf("key %s has no hash tag", k)
			}
		}
	})
}

// The sharded listings return exactly what one sorted set holding every
// member returns (the single-shard version): the same ids in the same
// order, across shard boundaries, also when many connections share a
// millisecond and when one shard holds far more than its share; and
// paging by any page size neither skips nor repeats.
func TestShardedListingsMatchOneIndex(t *testing.T) {
	onBackends(t, true, testShardedListingsMatchOneIndex)
}

func testShardedListingsMatchOneIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t, notionfake.Options{})
	ctx := context.Background()
	st := e.store(nil)
	ids := idsCoveringShards("l", 3)
	// 60 more of shard 5 only, created in a burst: one shard holds far
	// more than its share of every page.
	for i := 0; len(ids) < 3*keyspace.Shards+60; i++ {
		if id := fmt.Sprintf("hot%d", i); keyspace.ShardOf(id) == 5 {
			ids = append(ids, id)
		}
	}
	for i, id := range ids {
		if i%9 == 0 {
			e.clock.Advance(time.Millisecond) // the others share a millisecond
		}
		if _, err := st.Connect(ctx, id, &tokens.Grant{AccessToken: "a", RefreshToken: "r"}, testTiming, tokens.ConnectOptions{}); err != nil {
			t.Fatal(err)
		}
		if i%4 == 1 {
			if err := st.Pause(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The reference: one sorted set (one key, one slot) holding the
	// members and scores of every shard of an index.
	reference := func(name string) string {
		ref := e.prefix + "ref:" + name
		var members []redis.Z
		for i := range keyspace.Shards {
			zs, err := e.rdb.ZRangeWithScores(ctx, keyspace.Shard(e.prefix, i)+name, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			members = append(members, zs...)
		}
		if len(members) == 0 {
			t.Fatalf("index %s is empty", name)
		}
		if err := e.rdb.ZAdd(ctx, ref, members...).Err(); err != nil {
			t.Fatal(err)
		}
		return ref
	}
	refAll, refPaused, refDue := reference("connections"), reference("status:paused"), reference("due")
	want := func(ref string) []string {
		out, err := e.rdb.ZRange(ctx, ref, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := want(refAll); len(got) != len(ids) {
		t.Fatalf("reference holds %d, want %d", len(got), len(ids))
	}

	if got := pageAll(t, st, tokens.StatusPaused, 1); !slices.Equal(got, want(refPaused)) {
		t.Errorf("PageIDs(paused) in pages of 1:\n got %v\nwant %v", got, want(refPaused))
	}
	for _, size := range []int{7, 51, 1000} {
		for status, ref := range map[tokens.Status]string{"": refAll, tokens.StatusPaused: refPaused} {
			if got := pageAll(t, st, status, size); !slices.Equal(got, want(ref)) {
				t.Errorf("PageIDs(%q) in pages of %d:\n got %v\nwant %v", status, size, got, want(ref))
			}
		}
		var listed []string
		after := ""
		for range 1000 {
			page, next, err := st.List(ctx, after, size)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page {
				listed = append(listed, c.ID)
			}
			if next == "" {
				break
			}
			after = next
		}
		if w := want(refAll); !slices.Equal(listed, w) {
			t.Errorf("List in pages of %d:\n got %v\nwant %v", size, listed, w)
		}
	}

	// A page after a cursor runs a script; one that Redis forgot (a
	// restarted node, a promoted replica) is sent again in full.
	if err := e.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if got := pageAll(t, st, "", 51); !slices.Equal(got, want(refAll)) {
		t.Errorf("PageIDs after SCRIPT FLUSH:\n got %v\nwant %v", got, want(refAll))
	}

	// Due: the earliest limit up to until, for untils inside and past the
	// range of due times.
	dues, err := e.rdb.ZRangeWithScores(ctx, refDue, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []int{0, len(dues) / 3, len(dues) - 1} {
		until := time.UnixMilli(int64(dues[q].Score))
		for _, limit := range []int{1, 10, 100, 1000} {
			w, err := e.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: refDue, Start: "-inf",
				Stop: strconv.FormatInt(until.UnixMilli(), 10), ByScore: true, Count: int64(limit)}).Result()
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.Due(ctx, until, limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, w) {
				t.Errorf("Due(until #%d, %d):\n got %v\nwant %v", q, limit, got, w)
			}
		}
	}
}
