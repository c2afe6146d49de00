// Package keyspace decides which Redis Cluster hash slot each notionsync key
// lives in, so that every Lua script and MULTI touches one slot and the
// slots in use spread evenly over a cluster's masters.
//
// # The scheme
//
// Connections are split into Shards (64) shards by a hash of their id
// (ShardOf). Every key that belongs to a connection, and every shard of a
// global index that scripts update together with a connection (the
// refresh-due index, the connections index, the status indexes, the sweep
// schedule, the lease and error indexes), carries its shard's hash tag:
//
//	<prefix>{<tag>}:conn:<id>          a connection's key (Conn)
//	<prefix>{<tag>}:due                shard <tag> of a global index (Shard)
//
// A script that changes a connection and its index entries therefore names
// keys of one slot only, which Redis Cluster requires, and a single Redis
// (or Sentinel) runs the same scripts unchanged: the braces mean nothing
// outside a cluster.
//
// # Why the tags are computed
//
// A cluster made by redis-cli --cluster create gives each master one
// contiguous, equal range of the 16,384 slots. A tag such as "7" lands on a
// pseudo-random slot, so 64 naive tags spread unevenly over 3 masters (one
// master would typically carry a third more shards than another). Instead,
// Tag(i) is the first string of the form "s<i>.<k>" (k = 0, 1, ...) whose
// slot lies in the i-th of 64 equal slot ranges: shard i sits in slot range
// [i*256, (i+1)*256). Any cluster whose masters own contiguous, equal ranges
// (up to 64 masters) then carries an equal share of shards. The tags are a
// pure function of the shard number: they never change, so key names are
// stable across releases and processes.
//
// Shards is fixed for the same reason: changing it renames every key.
package keyspace

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// Shards is the number of connection shards. It bounds the number of
// cluster masters that share the load (64) and the number of index shards a
// scheduler tick walks (64, pipelined per node). It must never change: key
// names depend on it.
const Shards = 64

// SlotCount is the number of Redis Cluster hash slots.
const SlotCount = 16384

// tags[i] is the hash tag of shard i (without braces).
var tags = func() [Shards]string {
	var t [Shards]string
	width := SlotCount / Shards
	for i := range Shards {
		for k := 0; ; k++ {
			cand := fmt.Sprintf("s%d.%d", i, k)
			if s := int(crc16(cand)) % SlotCount; s >= i*width && s < (i+1)*width {
				t[i] = cand
				break
			}
		}
	}
	return t
}()

// ShardOf returns the shard of a connection: FNV-1a of its id modulo
// Shards. It never changes for an id.
func ShardOf(connID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(connID))
	return int(h.Sum32() % Shards)
}

// Tag returns shard i's hash tag without braces, e.g. "s7.113". It panics
// when i is not in [0, Shards).
func Tag(i int) string { return tags[i] }

// Shard returns the key prefix of shard i: prefix + "{" + Tag(i) + "}:".
// Append a global index's name: Shard(p, i) + "due".
func Shard(prefix string, i int) string { return prefix + "{" + tags[i] + "}:" }

// Conn returns the key prefix of a connection's keys: the prefix of its
// shard. Append the key's own name: Conn(p, id) + "conn:" + id.
func Conn(prefix, connID string) string { return Shard(prefix, ShardOf(connID)) }

// Slot returns the Redis Cluster hash slot of key, honouring hash tags: when
// key has a "{...}" with at least one character between the first "{" and
// the next "}", only that part is hashed.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key)) % SlotCount
}

// SpreadName returns the name of part j of n of something whose Redis keys
// are tagged by its whole name, such as an asynq queue ("asynq:{<name>}:..."):
// base when n <= 1, else the first of base+"."+j, base+"."+j+"."+k (k = 0,
// 1, ...) whose slot lies in the j-th of n equal slot ranges, so the n parts
// land on different masters of a cluster with up to n contiguous, equal
// slot ranges.
func SpreadName(base string, j, n int) string {
	if n <= 1 {
		return base
	}
	width := SlotCount / n
	lo, hi := j*width, (j+1)*width
	if j == n-1 {
		hi = SlotCount
	}
	name := fmt.Sprintf("%s.%d", base, j)
	for k := 0; ; k++ {
		if s := Slot(name); s >= lo && s < hi {
			return name
		}
		name = fmt.Sprintf("%s.%d.%d", base, j, k)
	}
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial 0), the checksum Redis
// Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
