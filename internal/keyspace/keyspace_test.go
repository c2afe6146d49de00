package keyspace

import (
	"fmt"
	"strings"
	"testing"
)

// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
func TestSlotMatchesRedis(t *testing.T) {
	for key, want := range map[string]int{
		"123456789":            0x31C3 % SlotCount, // the spec's CRC16 check value
		"foo":                  12182,
		"bar":                  5061,
		"{user1000}.following": Slot("user1000"),
		"foo{}{bar}":           Slot("foo{}{bar}"),
		"foo{{bar}}zap":        Slot("{bar"),
		"foo{bar}{zap}":        Slot("bar"),
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
	// "foo{}{bar}" hashes the whole key: the first {} is empty.
	if Slot("foo{}{bar}") == Slot("bar") {
		t.Error(`Slot("foo{}{bar}") used "bar" as the tag; an empty first tag means the whole key`)
	}
}

func TestShardTagsSpreadEvenly(t *testing.T) {
	seen := map[string]bool{}
	for i := range Shards {
		tag := Tag(i)
		if seen[tag] {
			t.Fatalf("tag %q repeats", tag)
		}
		seen[tag] = true
		if !strings.HasPrefix(tag, fmt.Sprintf("s%d.", i)) {
			t.Errorf("Tag(%d) = %q, want s%d.<k>", i, tag, i)
		}
		slot := Slot(Shard("notionsync:", i) + "due")
		if lo := i * SlotCount / Shards; slot < lo || slot >= lo+SlotCount/Shards {
			t.Errorf("shard %d (tag %q) is in slot %d, outside [%d, %d)", i, tag, slot, lo, lo+SlotCount/Shards)
		}
	}
	// Three masters with contiguous equal ranges (redis-cli --cluster create)
	// carry 21 or 22 shards each, give or take the shard whose range a
	// boundary splits.
	per := map[int]int{}
	for i := range Shards {
		per[Slot("{"+Tag(i)+"}")*3/SlotCount]++
	}
	for m, n := range per {
		if n < 20 || n > 23 {
			t.Errorf("master %d carries %d shards, want 20 to 23", m, n)
		}
	}
}

func TestConnKeysShareTheirShardsSlot(t *testing.T) {
	counts := make([]int, Shards)
	for n := range 10000 {
		id := fmt.Sprintf("conn-%d", n)
		s := ShardOf(id)
		counts[s]++
		if a, b := Slot(Conn("p:", id)+"conn:"+id), Slot(Shard("p:", s)+"due"); a != b {
			t.Fatalf("connection %s in slot %d, its shard's index in slot %d", id, a, b)
		}
	}
	for s, n := range counts { // mean 156
		if n < 100 || n > 220 {
			t.Errorf("shard %d holds %d of 10,000 connections", s, n)
		}
	}
}

func TestSpreadName(t *testing.T) {
	if got := SpreadName("sync", 0, 1); got != "sync" {
		t.Errorf("SpreadName(sync, 0, 1) = %q", got)
	}
	for _, n := range []int{2, 3, 6} {
		for j := range n {
			name := SpreadName("sync", j, n)
			if !strings.HasPrefix(name, fmt.Sprintf("sync.%d", j)) {
				t.Errorf("SpreadName(sync, %d, %d) = %q", j, n, name)
			}
			if s := Slot(name); s*n/SlotCount != j {
				t.Errorf("SpreadName(sync, %d, %d) = %q in slot %d, not in range %d", j, n, name, s, j)
			}
		}
	}
}
