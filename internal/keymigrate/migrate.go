package keymigrate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
)

// Defaults of Config.
const (
	DefaultKeyPrefix        = "notionsync:"
	DefaultLockWait         = 2 * time.Minute
	DefaultRetryInterval    = time.Second
	DefaultScanCount        = 1000
	DefaultBatchSize        = 200
	DefaultProgressInterval = 2 * time.Second
)

// ErrCluster is returned when the target is a Redis Cluster node.
var ErrCluster = errors.New("the target is a Redis Cluster: migrate-keys renames keys in place on the " +
	"single Redis (or Sentinel primary) that holds the old layout; migrate there, then move the data to " +
	"the cluster (redis-cli --cluster import; see docs/runbook.md)")

// ErrNotPrimary is returned when the target is a replica.
var ErrNotPrimary = errors.New("the target is a replica: point NOTIONSYNC_REDIS_URL (or the Sentinel " +
	"variables) at the primary")

// Conflict is a connection that was not moved because a key of it exists
// under both its old and its new name.
type Conflict struct {
	ConnID string `json:"conn_id"`
	// Key is the old name whose new name already exists.
	Key string `json:"key"`
}

// IncompleteError reports connections a run left under the old names. The
// Result still counts what moved; running again after the cause is gone
// moves the rest.
type IncompleteError struct {
	// Locked are connections whose old refresh lock was still held when
	// Config.LockWait ran out.
	Locked []string
	// Conflicts are connections with keys under both names.
	Conflicts []Conflict
}

func (e *IncompleteError) Error() string {
	var parts []string
	if n := len(e.Locked); n > 0 {
		parts = append(parts, fmt.Sprintf("%d connections still locked by a refresh in flight (%s): run again",
			n, sample(e.Locked)))
	}
	if n := len(e.Conflicts); n > 0 {
		ids := make([]string, 0, n)
		for _, c := range e.Conflicts {
			ids = append(ids, c.ConnID)
		}
		parts = append(parts, fmt.Sprintf("%d connections have keys under both the old and the new names (%s): "+
			"nothing of them was moved; see docs/runbook.md", n, sample(ids)))
	}
	return "keymigrate: " + strings.Join(parts, "; ")
}

func sample(ids []string) string {
	if len(ids) > 5 {
		return strings.Join(ids[:5], ", ") + ", ..."
	}
	return strings.Join(ids, ", ")
}

// Config configures a Migrator.
type Config struct {
	// Redis is the single Redis or Sentinel primary holding the old
	// layout. Required.
	Redis redis.UniversalClient
	// KeyPrefix is the services' NOTIONSYNC_REDIS_KEY_PREFIX. Default
	// "notionsync:".
	KeyPrefix string
	// DryRun counts what would move and changes nothing. Locked
	// connections are reported, not waited for.
	DryRun bool
	// LockWait bounds how long connections whose old refresh lock is held
	// are retried. Default 2 minutes: four refresh lock TTLs at the
	// default NOTIONSYNC_REFRESH_LOCK_TTL (30 s), so a lock left by a
	// killed process expires in time.
	LockWait time.Duration
	// RetryInterval is the pause between retries of locked connections.
	// Default 1 s.
	RetryInterval time.Duration
	// ScanCount is SCAN's COUNT hint. Default 1000.
	ScanCount int64
	// BatchSize is how many connections one pipeline moves. Default 200.
	BatchSize int
	// Progress receives progress lines. Default io.Discard.
	Progress io.Writer
	// ProgressInterval is the least time between two progress lines of the
	// same phase. Default 2 s.
	ProgressInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Result counts what a run moved (or, with DryRun, would move).
type Result struct {
	DryRun bool `json:"dry_run"`
	// KeysScanned counts the keys under the prefix SCAN returned.
	KeysScanned int `json:"keys_scanned"`
	// Found counts the connections with something under the old names.
	Found int `json:"connections_found"`
	// Connections counts the connections moved.
	Connections int `json:"connections_moved"`
	// Keys counts the keys renamed.
	Keys int `json:"keys_moved"`
	// IndexEntries counts the index entries moved to their shard.
	IndexEntries int `json:"index_entries_moved"`
	// OAuthStates counts the OAuth flows in progress moved under the
	// {oauth} tag; OAuthStale the entries of the old cap zset whose state
	// had expired (dropped with it).
	OAuthStates int `json:"oauth_states_moved"`
	OAuthStale  int `json:"oauth_stale_entries_dropped"`
	// Retries counts the rounds spent waiting for locked connections.
	Retries int `json:"lock_retries"`
	// Locked and Conflicts are the connections left under the old names
	// (see IncompleteError).
	Locked    []string   `json:"locked,omitempty"`
	Conflicts []Conflict `json:"conflicts,omitempty"`
	// UnknownKeys counts keys under the prefix that match no known pattern:
	// left alone. UnknownSample names a few.
	UnknownKeys   int      `json:"unknown_keys"`
	UnknownSample []string `json:"unknown_sample,omitempty"`
}

// Migrator moves old-layout keys to their new names. A Migrator is used by
// one goroutine at a time; concurrent runs against one Redis are safe (each
// connection moves in one script) but pointless.
type Migrator struct {
	cfg Config
}

// New checks cfg and applies its defaults.
func New(cfg Config) (*Migrator, error) {
	if cfg.Redis == nil {
		return nil, errors.New("keymigrate: Config.Redis is required")
	}
	if cfg.LockWait < 0 || cfg.RetryInterval < 0 || cfg.ScanCount < 0 || cfg.BatchSize < 0 || cfg.ProgressInterval < 0 {
		return nil, errors.New("keymigrate: negative duration or count in Config")
	}
	cfg.KeyPrefix = cmp.Or(cfg.KeyPrefix, DefaultKeyPrefix)
	cfg.LockWait = cmp.Or(cfg.LockWait, DefaultLockWait)
	cfg.RetryInterval = cmp.Or(cfg.RetryInterval, DefaultRetryInterval)
	cfg.ScanCount = cmp.Or(cfg.ScanCount, DefaultScanCount)
	cfg.BatchSize = cmp.Or(cfg.BatchSize, DefaultBatchSize)
	cfg.ProgressInterval = cmp.Or(cfg.ProgressInterval, DefaultProgressInterval)
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Migrator{cfg: cfg}, nil
}

// connWork is what discovery found of one connection besides its fixed
// keys.
type connWork struct {
	variable []string // old names (without the prefix) of keys naming objects
	leases   []string // its members of the old lease index
}

// Run discovers the old-layout keys and moves them, connection by
// connection. It returns an *IncompleteError (with the Result) when
// connections were left under the old names, ErrCluster or ErrNotPrimary
// for a wrong target, or the Redis error that stopped it (what moved
// before stays moved: run again).
func (m *Migrator) Run(ctx context.Context) (Result, error) {
	res := Result{DryRun: m.cfg.DryRun}
	if err := m.checkTarget(ctx); err != nil {
		return res, err
	}
	work, order, states, err := m.discover(ctx, &res)
	if err != nil {
		return res, err
	}
	res.Found = len(order)
	verb := "moving"
	if m.cfg.DryRun {
		verb = "counting (dry run)"
	}
	m.progressf("found %d connections with keys under the old names (%d keys scanned); %s", len(order), res.KeysScanned, verb)

	deadline := m.cfg.Now().Add(m.cfg.LockWait)
	pending := order
	for {
		locked, err := m.moveAll(ctx, pending, work, &res)
		if err != nil {
			return res, err
		}
		if len(locked) == 0 || m.cfg.DryRun || !m.cfg.Now().Before(deadline) {
			res.Locked = locked
			break
		}
		res.Retries++
		m.progressf("%d connections are locked by a refresh in flight (%s); retrying every %s until %s",
			len(locked), sample(locked), m.cfg.RetryInterval, deadline.UTC().Format(time.RFC3339))
		t := time.NewTimer(m.cfg.RetryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return res, ctx.Err()
		case <-t.C:
		}
		pending = locked
	}
	if err := m.moveOAuth(ctx, states, &res); err != nil {
		return res, err
	}
	moved := "moved"
	if m.cfg.DryRun {
		moved = "would move"
	}
	m.progressf("done: %d of %d connections %s, %d keys, %d index entries; %d locked, %d conflicts, %d unknown keys left alone",
		res.Connections, res.Found, moved,
		res.Keys, res.IndexEntries, len(res.Locked), len(res.Conflicts), res.UnknownKeys)
	if len(res.Locked) > 0 || len(res.Conflicts) > 0 {
		return res, &IncompleteError{Locked: res.Locked, Conflicts: res.Conflicts}
	}
	return res, nil
}

func (m *Migrator) progressf(format string, args ...any) {
	fmt.Fprintf(m.cfg.Progress, "migrate-keys: "+format+"\n", args...)
}

// checkTarget refuses a cluster and a replica.
func (m *Migrator) checkTarget(ctx context.Context) error {
	if _, ok := m.cfg.Redis.(*redis.ClusterClient); ok {
		return ErrCluster
	}
	info, err := m.cfg.Redis.Info(ctx, "cluster").Result()
	if err != nil {
		return fmt.Errorf("keymigrate: INFO cluster: %w", err)
	}
	if strings.Contains(info, "cluster_enabled:1") {
		return ErrCluster
	}
	role, err := m.cfg.Redis.Do(ctx, "ROLE").Slice()
	if err != nil {
		return fmt.Errorf("keymigrate: ROLE: %w", err)
	}
	if len(role) == 0 || role[0] != "master" {
		return ErrNotPrimary
	}
	return nil
}

// discover SCANs the keys under the prefix and ZSCANs the old indexes,
// returning what to move per connection, the connections in the order
// found and the OAuth state keys (names without the prefix).
func (m *Migrator) discover(ctx context.Context, res *Result) (map[string]*connWork, []string, []string, error) {
	p := m.cfg.KeyPrefix
	work := map[string]*connWork{}
	var order, states []string
	add := func(id string) *connWork {
		w := work[id]
		if w == nil {
			w = &connWork{}
			work[id] = w
			order = append(order, id)
		}
		return w
	}
	last := m.cfg.Now()
	var cursor uint64
	for {
		keys, next, err := m.cfg.Redis.Scan(ctx, cursor, globEscape(p)+"*", m.cfg.ScanCount).Result()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("keymigrate: SCAN: %w", err)
		}
		for _, key := range keys {
			rest, ok := strings.CutPrefix(key, p)
			if !ok {
				continue
			}
			res.KeysScanned++
			id, k := classify(rest)
			switch k {
			case kindFixed:
				add(id)
			case kindVariable:
				w := add(id)
				w.variable = append(w.variable, rest)
			case kindOAuthState:
				states = append(states, rest)
			case kindUnknown:
				res.UnknownKeys++
				if len(res.UnknownSample) < 5 {
					res.UnknownSample = append(res.UnknownSample, key)
				}
			}
		}
		if now := m.cfg.Now(); now.Sub(last) >= m.cfg.ProgressInterval {
			last = now
			m.progressf("scanning: %d keys, %d connections so far", res.KeysScanned, len(order))
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	for _, name := range append(indexNames, leasesName) {
		var cursor uint64
		for {
			kv, next, err := m.cfg.Redis.ZScan(ctx, p+name, cursor, "", m.cfg.ScanCount).Result()
			if err != nil {
				return nil, nil, nil, fmt.Errorf("keymigrate: ZSCAN %s: %w", p+name, err)
			}
			for i := 0; i < len(kv); i += 2 {
				if name == leasesName {
					if id := leaseConn(kv[i]); id != "" {
						w := add(id)
						w.leases = append(w.leases, kv[i])
					}
				} else if id, k := classify("conn:" + kv[i]); k == kindFixed {
					add(id) // an entry without a record moves too
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	return work, order, states, nil
}

// globEscape escapes the glob characters of SCAN MATCH.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Script results.
const (
	movedCode    = 1
	lockedCode   = -1
	conflictCode = -2
)

// moveScript moves one connection, or nothing.
//
//	KEYS[1]                 the old refresh lock
//	KEYS[2..2n+1]           n pairs: old name, new name
//	then len(indexNames)+1  pairs: old index, new index shard (the last
//	                        pair is the lease index)
//	ARGV[1] connection id   ARGV[2] n   ARGV[3] "1" for a dry run
//	ARGV[4..]               the connection's old lease index members
//
// Returns {1, keys, entries} (moved, or would move), {-1, 0, 0} when the
// lock is held, {-2, i, 0} when pair i's new name exists while its old one
// does too. RENAME keeps value and TTL; entries keep their scores, and an
// entry already in the new shard (written by a new-version process) keeps
// its own (ZADD NX).
var moveScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return {-1, 0, 0} end
local n = tonumber(ARGV[2])
local dry = ARGV[3] == '1'
local present = {}
for i = 1, n do
  if redis.call('EXISTS', KEYS[2 * i]) == 1 then
    if redis.call('EXISTS', KEYS[2 * i + 1]) == 1 then return {-2, i, 0} end
    present[#present + 1] = i
  end
end
local entries = 0
local base = 2 * n + 1
local npairs = (#KEYS - base) / 2
for j = 1, npairs do
  local old, new = KEYS[base + 2 * j - 1], KEYS[base + 2 * j]
  local members = {ARGV[1]}
  if j == npairs then
    members = {}
    for a = 4, #ARGV do members[#members + 1] = ARGV[a] end
  end
  for _, m in ipairs(members) do
    local s = redis.call('ZSCORE', old, m)
    if s then
      entries = entries + 1
      if not dry then
        redis.call('ZADD', new, 'NX', s, m)
        redis.call('ZREM', old, m)
      end
    end
  end
end
if not dry then
  for _, i in ipairs(present) do redis.call('RENAME', KEYS[2 * i], KEYS[2 * i + 1]) end
end
return {1, #present, entries}
`)

// moveAll moves the connections ids in pipelined batches and returns the
// ones whose lock was held.
func (m *Migrator) moveAll(ctx context.Context, ids []string, work map[string]*connWork, res *Result) ([]string, error) {
	var locked []string
	last := m.cfg.Now()
	for start := 0; start < len(ids); start += m.cfg.BatchSize {
		batch := ids[start:min(start+m.cfg.BatchSize, len(ids))]
		olds := make([][]string, len(batch))
		cmds := make([]*redis.Cmd, len(batch))
		// EVALSHA keeps a batch small on the wire; a script cache flushed
		// meanwhile (SCRIPT FLUSH, a restart) answers NOSCRIPT to every
		// command of the batch, which then runs again after a load. A
		// NOSCRIPT command ran nothing, so the retry moves nothing twice.
		for try := 0; ; try++ {
			pipe := m.cfg.Redis.Pipeline()
			for i, id := range batch {
				w := work[id]
				olds[i] = append(fixedKeys(id), w.variable...)
				keys, args := m.scriptArgs(id, olds[i], w.leases)
				cmds[i] = moveScript.EvalSha(ctx, pipe, keys, args...)
			}
			// Exec's error is the first command's; each is checked below.
			_, _ = pipe.Exec(ctx)
			if try > 0 || !slices.ContainsFunc(cmds, func(c *redis.Cmd) bool { return redis.HasErrorPrefix(c.Err(), "NOSCRIPT") }) {
				break
			}
			if err := moveScript.Load(ctx, m.cfg.Redis).Err(); err != nil {
				return locked, fmt.Errorf("keymigrate: SCRIPT LOAD: %w", err)
			}
		}
		for i, id := range batch {
			r, err := cmds[i].Int64Slice()
			if err != nil {
				return locked, fmt.Errorf("keymigrate: moving connection %s: %w", id, err)
			}
			if len(r) != 3 {
				return locked, fmt.Errorf("keymigrate: moving connection %s: unexpected reply %v", id, r)
			}
			switch r[0] {
			case lockedCode:
				locked = append(locked, id)
			case conflictCode:
				res.Conflicts = append(res.Conflicts, Conflict{ConnID: id, Key: m.cfg.KeyPrefix + olds[i][r[1]-1]})
			case movedCode:
				if r[1]+r[2] > 0 {
					res.Connections++
					res.Keys += int(r[1])
					res.IndexEntries += int(r[2])
				}
			}
		}
		if now := m.cfg.Now(); now.Sub(last) >= m.cfg.ProgressInterval {
			last = now
			m.progressf("%d/%d connections done (%d keys, %d index entries)",
				start+len(batch), len(ids), res.Keys, res.IndexEntries)
		}
	}
	return locked, nil
}

// scriptArgs builds moveScript's KEYS and ARGV for connection id.
func (m *Migrator) scriptArgs(id string, olds, leases []string) ([]string, []any) {
	p := m.cfg.KeyPrefix
	shard := keyspace.Shard(p, keyspace.ShardOf(id))
	keys := make([]string, 0, 1+2*len(olds)+2*len(indexNames)+2)
	keys = append(keys, p+"lock:"+id)
	for _, o := range olds {
		keys = append(keys, p+o, newName(p, id, o))
	}
	for _, n := range indexNames {
		keys = append(keys, p+n, shard+n)
	}
	keys = append(keys, p+leasesName, shard+leasesName)
	dry := "0"
	if m.cfg.DryRun {
		dry = "1"
	}
	args := make([]any, 0, 3+len(leases))
	args = append(args, id, len(olds), dry)
	for _, l := range leases {
		args = append(args, l)
	}
	return keys, args
}

// oauthBatch bounds the OAuth states one script moves.
const oauthBatch = 500

// oauthMoveScript moves OAuth states under the {oauth} tag with their
// entries of the cap zset, whose members are the states' full key names.
//
//	KEYS[1] old cap zset   KEYS[2] new cap zset
//	KEYS[3..] pairs: old state key, new state key
//	ARGV[1] "1" for a dry run
//
// Returns {states moved, entries moved}. The new zset gets at least the
// old one's TTL (the control plane keeps it alive with every new state).
var oauthMoveScript = redis.NewScript(`
local dry = ARGV[1] == '1'
local moved, entries = 0, 0
for i = 3, #KEYS, 2 do
  local old, new = KEYS[i], KEYS[i + 1]
  if redis.call('EXISTS', old) == 1 and redis.call('EXISTS', new) == 0 then
    moved = moved + 1
    local s = redis.call('ZSCORE', KEYS[1], old)
    if s then entries = entries + 1 end
    if not dry then
      redis.call('RENAME', old, new)
      if s then
        redis.call('ZADD', KEYS[2], 'NX', s, new)
        redis.call('ZREM', KEYS[1], old)
      end
    end
  end
end
if not dry then
  local t = redis.call('PTTL', KEYS[1])
  local nt = redis.call('PTTL', KEYS[2])
  if t > 0 and (nt == -1 or (nt > 0 and nt < t)) then redis.call('PEXPIRE', KEYS[2], t) end
end
return {moved, entries}
`)

// oauthDropStaleScript deletes the old cap zset once its live states have
// moved: what is left names states that expired (a state's key and its
// entry are written together; only the key expires by itself).
//
//	KEYS[1] old cap zset   ARGV[1] "1" for a dry run
//
// Returns the number of entries dropped.
var oauthDropStaleScript = redis.NewScript(`
local n = redis.call('ZCARD', KEYS[1])
if ARGV[1] ~= '1' then redis.call('DEL', KEYS[1]) end
return n
`)

// moveOAuth moves the OAuth flows in progress, so a user who started
// connecting a workspace before the move can finish after it.
func (m *Migrator) moveOAuth(ctx context.Context, states []string, res *Result) error {
	p := m.cfg.KeyPrefix
	dry := "0"
	if m.cfg.DryRun {
		dry = "1"
	}
	entries := 0
	for start := 0; start < len(states); start += oauthBatch {
		batch := states[start:min(start+oauthBatch, len(states))]
		keys := []string{p + oauthStatesName, p + oauthTag + oauthStatesName}
		for _, st := range batch {
			keys = append(keys, p+st, p+oauthTag+st)
		}
		r, err := oauthMoveScript.Run(ctx, m.cfg.Redis, keys, dry).Int64Slice()
		if err != nil {
			return fmt.Errorf("keymigrate: moving OAuth states: %w", err)
		}
		res.OAuthStates += int(r[0])
		entries += int(r[1])
	}
	n, err := oauthDropStaleScript.Run(ctx, m.cfg.Redis, []string{p + oauthStatesName}, dry).Int()
	if err != nil {
		return fmt.Errorf("keymigrate: OAuth cap zset: %w", err)
	}
	if m.cfg.DryRun {
		// Nothing moved: what is left is the stale part only.
		n -= entries
	}
	res.OAuthStale = max(n, 0)
	return nil
}
