package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sync state per connection lives in Redis:
//
//	<prefix>sync:<conn>          hash: cursor, target (ms), last_sweep, last_sync (ms),
//	                             pages_synced, last_error
//	<prefix>sync:<conn>:pending  set: objects discovered and not yet durably in the sink
//	<prefix>sync:<conn>:errors   hash: object id -> a per-object error (e.g. a database
//	                             the API version cannot query)
//	<prefix>sync:<conn>:dbcur    hash: database id -> row cursor (ms)
//	<prefix>ckpt:<conn>:<kind>:<id>  string: pagination checkpoint (JSON), with a TTL
//
// Cursor discipline: a sweep records the newest last_edited_time it
// discovered as the target, and adds every object it hands out to the
// pending set. A task removes its object once the sink has it. The cursor
// moves to the target only when the pending set is empty, in one script, so
// it never passes an object that is not yet stored.
type state struct {
	rdb    redis.UniversalClient
	prefix string
}

func (s *state) key(conn string) string        { return s.prefix + "sync:" + conn }
func (s *state) pendingKey(conn string) string { return s.prefix + "sync:" + conn + ":pending" }
func (s *state) errorsKey(conn string) string  { return s.prefix + "sync:" + conn + ":errors" }
func (s *state) dbCurKey(conn string) string   { return s.prefix + "sync:" + conn + ":dbcur" }
func (s *state) ckptKey(conn, kind, id string) string {
	return s.prefix + "ckpt:" + conn + ":" + kind + ":" + id
}

// SyncState is a connection's sync progress.
type SyncState struct {
	// Cursor: every edit before it is in the sink (zero: never synced).
	Cursor time.Time `json:"cursor"`
	// Target is where the cursor moves once Pending reaches zero.
	Target time.Time `json:"target"`
	// Pending counts objects discovered and not yet stored.
	Pending int64 `json:"pending"`
	// LastSweep and LastSync are when a sweep ran and a page was stored.
	LastSweep time.Time `json:"last_sweep"`
	LastSync  time.Time `json:"last_sync"`
	// PagesSynced counts pages written to the sink.
	PagesSynced int64 `json:"pages_synced"`
	// Errors are per-object errors that did not stop the connection's sync
	// (object id -> message).
	Errors map[string]string `json:"errors,omitempty"`
}

func msTime(s string) time.Time {
	n, _ := strconv.ParseInt(s, 10, 64)
	if n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

func (s *state) get(ctx context.Context, conn string) (SyncState, error) {
	var st SyncState
	pipe := s.rdb.Pipeline()
	h := pipe.HGetAll(ctx, s.key(conn))
	n := pipe.SCard(ctx, s.pendingKey(conn))
	e := pipe.HGetAll(ctx, s.errorsKey(conn))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return st, fmt.Errorf("sync state of %s: %w", conn, err)
	}
	m := h.Val()
	st.Cursor, st.Target = msTime(m["cursor"]), msTime(m["target"])
	st.LastSweep, st.LastSync = msTime(m["last_sweep"]), msTime(m["last_sync"])
	st.PagesSynced, _ = strconv.ParseInt(m["pages_synced"], 10, 64)
	st.Pending = n.Val()
	st.Errors = e.Val()
	return st, nil
}

// beginSweep records the sweep's target and marks the objects it hands out
// as pending, in one round trip.
func (s *state) addPending(ctx context.Context, conn string, target time.Time, members []string, now time.Time) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if len(members) > 0 {
			p.SAdd(ctx, s.pendingKey(conn), toAny(members)...)
		}
		if !target.IsZero() {
			p.Eval(ctx, `local t = tonumber(redis.call('HGET', KEYS[1], 'target') or '0')
if tonumber(ARGV[1]) > t then redis.call('HSET', KEYS[1], 'target', ARGV[1]) end
return 0`, []string{s.key(conn)}, target.UnixMilli())
		}
		p.HSet(ctx, s.key(conn), "last_sweep", now.UnixMilli())
		return nil
	})
	return err
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// doneScript removes an object from the pending set and, when the set is
// empty, moves the cursor to the target. Returns 1 when the cursor moved.
var doneScript = redis.NewScript(`
if ARGV[1] ~= '' then redis.call('SREM', KEYS[2], ARGV[1]) end
if tonumber(ARGV[2]) > 0 then
  redis.call('HINCRBY', KEYS[1], 'pages_synced', ARGV[2])
  redis.call('HSET', KEYS[1], 'last_sync', ARGV[3])
end
if redis.call('SCARD', KEYS[2]) == 0 then
  local t = tonumber(redis.call('HGET', KEYS[1], 'target') or '0')
  local c = tonumber(redis.call('HGET', KEYS[1], 'cursor') or '0')
  if t > c then
    redis.call('HSET', KEYS[1], 'cursor', t)
    return 1
  end
end
return 0
`)

// done marks member as stored; returns whether the cursor moved.
func (s *state) done(ctx context.Context, conn, member string, pages int, now time.Time) (bool, error) {
	n, err := doneScript.Run(ctx, s.rdb, []string{s.key(conn), s.pendingKey(conn)}, member, pages, now.UnixMilli()).Int()
	if err != nil {
		return false, fmt.Errorf("sync state of %s: %w", conn, err)
	}
	return n == 1, nil
}

func (s *state) setError(ctx context.Context, conn, objectID, msg string) error {
	return s.rdb.HSet(ctx, s.errorsKey(conn), objectID, msg).Err()
}

func (s *state) clearError(ctx context.Context, conn, objectID string) error {
	return s.rdb.HDel(ctx, s.errorsKey(conn), objectID).Err()
}

func (s *state) dbCursor(ctx context.Context, conn, dbID string) (time.Time, error) {
	v, err := s.rdb.HGet(ctx, s.dbCurKey(conn), dbID).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return msTime(v), nil
}

func (s *state) setDBCursor(ctx context.Context, conn, dbID string, t time.Time) error {
	return s.rdb.Eval(ctx, `local c = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > c then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return 0`,
		[]string{s.dbCurKey(conn)}, dbID, t.UnixMilli()).Err()
}

// checkpointTTL bounds how long an abandoned checkpoint is kept.
const checkpointTTL = 24 * time.Hour

func (s *state) loadCheckpoint(ctx context.Context, conn, kind, id string, v any) (bool, error) {
	b, err := s.rdb.Get(ctx, s.ckptKey(conn, kind, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		// A checkpoint we cannot read is dropped: the work restarts.
		return false, nil
	}
	return true, nil
}

func (s *state) saveCheckpoint(ctx context.Context, conn, kind, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.rdb.Set(ctx, s.ckptKey(conn, kind, id), b, checkpointTTL).Err()
}

func (s *state) dropCheckpoint(ctx context.Context, conn, kind, id string) error {
	return s.rdb.Del(ctx, s.ckptKey(conn, kind, id)).Err()
}

// gen returns the connection's task-id generation (see bumpGen).
func (s *state) gen(ctx context.Context, conn string) (int64, error) {
	n, err := s.rdb.HGet(ctx, s.key(conn), "gen").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

// bumpGen starts a new task-id generation for the connection. Tasks that
// stop because the connection is paused or needs re-authorization are
// archived with their ids; the next generation's tasks get new ids, so a
// sweep after the connection resumes is not refused as a duplicate of them.
func (s *state) bumpGen(ctx context.Context, conn string) error {
	return s.rdb.HIncrBy(ctx, s.key(conn), "gen", 1).Err()
}

// ErrBusy: another task is working on the same object right now. The task
// is retried shortly; this does not count against its retries.
var ErrBusy = errors.New("jobs: another task is syncing this object")

// claimTTL bounds a claim left by a killed worker.
const claimTTL = 5 * time.Minute

// claim takes a short lease on an object; release gives it back.
func (s *state) claim(ctx context.Context, conn, kind, id string) (release func(), err error) {
	key := s.prefix + "busy:" + conn + ":" + kind + ":" + id
	var b [8]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	ok, err := s.rdb.SetNX(ctx, key, token, claimTTL).Result()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s %s: %w", kind, id, ErrBusy)
	}
	return func() {
		// Delete only our own claim (it may have expired and been retaken).
		_ = s.rdb.Eval(context.WithoutCancel(ctx), `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
			[]string{key}, token).Err()
	}, nil
}

// StateReader reads connections' sync progress without the rest of the
// handlers (for the control plane and metrics). Safe for concurrent use.
type StateReader struct{ s *state }

// NewStateReader reads the state the handlers with the same key prefix
// write ("" means "notionsync:").
func NewStateReader(rdb redis.UniversalClient, keyPrefix string) *StateReader {
	if keyPrefix == "" {
		keyPrefix = "notionsync:"
	}
	return &StateReader{s: &state{rdb: rdb, prefix: keyPrefix}}
}

// State returns a connection's sync progress.
func (r *StateReader) State(ctx context.Context, connID string) (SyncState, error) {
	return r.s.get(ctx, connID)
}
