package files

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
)

// Quota counts the bytes of each connection's stored files, so that the
// downloads of every worker together stay within Config.ConnectionQuota. A
// download reserves bytes before it streams (the declared length, or as
// much of the file cap as is left when the length is unknown) and settles
// the reservation to the bytes it really added afterwards. Safe for
// concurrent use.
type Quota interface {
	// Reserve reserves up to n bytes of conn's quota of limit bytes and
	// returns how many it reserved: n, or with partial what is left when
	// less than n is (0: nothing left); without partial, 0 unless all n
	// fit. usage returns the bytes the store holds for conn: it seeds a
	// counter that does not exist yet.
	Reserve(ctx context.Context, conn string, n, limit int64, partial bool, usage func(context.Context) (int64, error)) (int64, error)
	// Settle replaces a reservation of reserved bytes with used bytes
	// stored (0: nothing added, the reservation is released).
	Settle(ctx context.Context, conn string, reserved, used int64) error
	// Release gives back n bytes of stored files that were deleted.
	Release(ctx context.Context, conn string, n int64) error
}

// DefaultQuotaResync is RedisQuota's default Resync.
const DefaultQuotaResync = 24 * time.Hour

// RedisQuota is the Quota shared by every worker: one counter per
// connection in Redis, changed by Lua scripts, so a reservation is checked
// and taken in one step whatever the number of workers. The key is
//
//	<prefix>{<shard tag>}:files:<connection id>:bytes
//
// in the connection's shard (keyspace.Conn), like every key of the
// connection: on a Redis Cluster each script touches one key, one slot.
type RedisQuota struct {
	rdb    redis.Scripter
	prefix string
	resync time.Duration
}

// RedisQuotaConfig configures a RedisQuota.
type RedisQuotaConfig struct {
	// KeyPrefix starts every key; default "notionsync:".
	KeyPrefix string
	// Resync is how long a counter lives before it is seeded again from
	// the store's usage (the truth): a worker that died between a
	// reservation and its settlement leaves the counter too high until
	// then. Default DefaultQuotaResync.
	Resync time.Duration
}

// NewRedisQuota returns the RedisQuota of rdb (a client of a single
// Redis, Sentinel or Cluster).
func NewRedisQuota(rdb redis.Scripter, cfg RedisQuotaConfig) (*RedisQuota, error) {
	if rdb == nil {
		return nil, errors.New("files: nil Redis client for the quota")
	}
	if cfg.Resync < 0 {
		return nil, errors.New("files: negative quota Resync")
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "notionsync:"
	}
	if cfg.Resync == 0 {
		cfg.Resync = DefaultQuotaResync
	}
	return &RedisQuota{rdb: rdb, prefix: cfg.KeyPrefix, resync: cfg.Resync}, nil
}

// Key returns the counter's key for conn.
func (q *RedisQuota) Key(conn string) string {
	return keyspace.Conn(q.prefix, conn) + "files:" + conn + ":bytes"
}

// reserveScript: KEYS[1] the counter; ARGV n, limit, partial (1/0), the
// seed ("" when unknown), the counter's lifetime in ms. Returns the bytes
// reserved, or -1 when the counter does not exist and no seed was given.
var reserveScript = redis.NewScript(`
local used = redis.call('GET', KEYS[1])
if not used then
  if ARGV[4] == '' then return -1 end
  used = ARGV[4]
  redis.call('SET', KEYS[1], used, 'PX', ARGV[5])
end
used = tonumber(used)
local n, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local left = limit - used
if left <= 0 then return 0 end
if n > left then
  if ARGV[3] ~= '1' then return 0 end
  n = left
end
redis.call('INCRBY', KEYS[1], n)
return n
`)

// adjustScript: KEYS[1] the counter; ARGV[1] the change. A counter that
// expired meanwhile is left absent: its next seed reads the store.
var adjustScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v < 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL') end
return 1
`)

// Reserve implements Quota.
func (q *RedisQuota) Reserve(ctx context.Context, conn string, n, limit int64, partial bool, usage func(context.Context) (int64, error)) (int64, error) {
	key, p := q.Key(conn), "0"
	if partial {
		p = "1"
	}
	seed := ""
	for range 2 {
		got, err := reserveScript.Run(ctx, q.rdb, []string{key}, n, limit, p, seed, q.resync.Milliseconds()).Int64()
		if err != nil {
			return 0, fmt.Errorf("files: quota: %w", err)
		}
		if got >= 0 {
			return got, nil
		}
		u, err := usage(ctx)
		if err != nil {
			return 0, fmt.Errorf("file usage: %w", err)
		}
		seed = fmt.Sprint(u)
	}
	return 0, errors.New("files: quota counter not seeded")
}

// Settle implements Quota.
func (q *RedisQuota) Settle(ctx context.Context, conn string, reserved, used int64) error {
	return q.adjust(ctx, conn, used-reserved)
}

// Release implements Quota.
func (q *RedisQuota) Release(ctx context.Context, conn string, n int64) error {
	return q.adjust(ctx, conn, -n)
}

func (q *RedisQuota) adjust(ctx context.Context, conn string, delta int64) error {
	if delta == 0 {
		return nil
	}
	if err := adjustScript.Run(ctx, q.rdb, []string{q.Key(conn)}, delta).Err(); err != nil {
		return fmt.Errorf("files: quota: %w", err)
	}
	return nil
}

// localQuota is the Quota of one process (Config.Quota unset): counters in
// memory, seeded from the store. Workers that do not share it can together
// pass the quota by what each reserved at once.
type localQuota struct {
	mu   sync.Mutex
	used map[string]int64 // by connection; absent: not seeded
}

func (q *localQuota) Reserve(ctx context.Context, conn string, n, limit int64, partial bool, usage func(context.Context) (int64, error)) (int64, error) {
	q.mu.Lock()
	_, ok := q.used[conn]
	q.mu.Unlock()
	if !ok {
		u, err := usage(ctx)
		if err != nil {
			return 0, fmt.Errorf("file usage: %w", err)
		}
		q.mu.Lock()
		if _, raced := q.used[conn]; !raced {
			q.used[conn] = u
		}
		q.mu.Unlock()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	left := limit - q.used[conn]
	switch {
	case left <= 0:
		return 0, nil
	case n > left && !partial:
		return 0, nil
	case n > left:
		n = left
	}
	q.used[conn] += n
	return n, nil
}

func (q *localQuota) Settle(_ context.Context, conn string, reserved, used int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.used[conn]; ok {
		q.used[conn] = max(0, q.used[conn]+used-reserved)
	}
	return nil
}

func (q *localQuota) Release(ctx context.Context, conn string, n int64) error {
	return q.Settle(ctx, conn, n, 0)
}
