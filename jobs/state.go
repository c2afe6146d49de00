package jobs

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
)

// Sync state per connection lives in Redis, every key of a connection
// under its shard's prefix <c> = keyspace.Conn(<prefix>, <conn>), e.g.
// "notionsync:{s7.113}:", so that each script and MULTI below names keys of
// one Redis Cluster slot:
//
//	<c>sync:<conn>          hash: cursor, target (ms), last_sweep, last_sync (ms),
//	                        pages_synced, last_error
//	<c>sync:<conn>:pending  set: objects discovered and not yet durably in the sink
//	<c>sync:<conn>:errors   hash: object id -> a per-object error (e.g. a database
//	                        the API version cannot query): JSON {since, kind, msg}
//	                        (objerror.go), or a plain message written before kinds
//	<c>sync:<conn>:dbcur    hash: database id -> row cursor (ms)
//	<c>sync:<conn>:todo     hash: page id -> todoItem (JSON): pages waiting for the
//	                        connection's drain task
//	<c>sync:<conn>:users    string: when the user listing was last claimed (users.go)
//	<c>drain:<conn>         string with a TTL: a drain task exists for the connection
//	<c>busy:<conn>:page:<id>  string with a TTL: a task is syncing the page (its claim)
//	<c>ckpt:<conn>:<kind>:<id>  string: pagination checkpoint (JSON), with a TTL
//	<c>ckpt:<conn>:tree:<id>    hash: a page's block walk, one field per
//	                        listing request (see walk.go), with a TTL
//	<c>sync:<conn>:recon    hash: the reconciliation's status (running,
//	                        last_started, last_finished, last pass's counts)
//	<c>recon:<conn>         string: a reconciliation pass in progress (JSON
//	                        checkpoint), with :seen (set of ids enumerated),
//	                        :walk and :check (lists) and :lock (the running
//	                        slice's lease); see reconcile.go
//	<c>capped:<conn>:<id>   string with a TTL: the version (ms) of a page
//	                        that failed permanently (its walk stopped at a
//	                        cap, or Notion answered a permanent error)
//
// Two indexes span connections. Each is 64 shards, shard i under
// <s_i> = keyspace.Shard(<prefix>, i) holding the connections of shard i
// (keyspace.ShardOf), so the scripts that change a connection's keys and
// its index entry together stay in one slot:
//
//	<s_i>busy:leases        sorted set: leases of running tasks by deadline (lease.go)
//	<s_i>sync:errored       sorted set: connections that may have per-object
//	                        errors (errindex.go)
//
// Their readers (the reaper, ErroredPage) walk the 64 shards in one
// pipeline, which go-redis splits per node on a cluster.
//
// Cursor discipline: a sweep records the newest last_edited_time it
// discovered as the target, and adds every object it hands out to the
// pending set. A task removes its object once the sink has it. The cursor
// moves to the target only when the pending set is empty, in one script, so
// it never passes an object that is not yet stored.
type state struct {
	rdb    redis.UniversalClient
	prefix string
	// claimTTL is how long a running task's claims and drain flag outlive
	// its last renewal (Config.ClaimTTL; see lease.go).
	claimTTL time.Duration
}

// cp is the prefix of conn's keys: its shard's (keyspace.Conn).
func (s *state) cp(conn string) string { return keyspace.Conn(s.prefix, conn) }

func (s *state) key(conn string) string        { return s.cp(conn) + "sync:" + conn }
func (s *state) pendingKey(conn string) string { return s.key(conn) + ":pending" }
func (s *state) errorsKey(conn string) string  { return s.key(conn) + ":errors" }
func (s *state) dbCurKey(conn string) string   { return s.key(conn) + ":dbcur" }
func (s *state) todoKey(conn string) string    { return s.key(conn) + ":todo" }
func (s *state) drainKey(conn string) string   { return s.cp(conn) + "drain:" + conn }
func (s *state) claimKey(conn, kind, id string) string {
	return s.cp(conn) + "busy:" + conn + ":" + kind + ":" + id
}
func (s *state) ckptKey(conn, kind, id string) string {
	return s.cp(conn) + "ckpt:" + conn + ":" + kind + ":" + id
}

// treeKey is a page's block-walk checkpoint: a hash of one field per
// listing request (see saveTree). The older string checkpoint under
// ckptKey(conn, "page", id) is no longer read; it expires.
func (s *state) treeKey(conn, id string) string { return s.ckptKey(conn, "tree", id) }

// cappedKey marks the version of a page that failed permanently: its walk
// stopped at a cap, or Notion answered a permanent error (objerror.go). The
// key keeps its first name ("capped"), so marks written before permanent
// errors existed stay valid.
func (s *state) cappedKey(conn, id string) string { return s.cp(conn) + "capped:" + conn + ":" + id }

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
	// ErrorDetails holds the kind (permanent or transient: whether the
	// object holds the cursor) and since of each error in Errors (errors
	// recorded before kinds existed have none).
	ErrorDetails map[string]ObjectError `json:"error_details,omitempty"`
	// Reconcile is the connection's reconciliation (reconcile.go): the
	// latest pass's times and the last finished pass's counts. Nil until a
	// pass starts.
	Reconcile *ReconcileStatus `json:"reconcile,omitempty"`
}

func msTime(s string) time.Time {
	n, _ := strconv.ParseInt(s, 10, 64)
	if n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

func (s *state) get(ctx context.Context, conn string) (SyncState, error) {
	sts, err := s.getMany(ctx, []string{conn})
	if err != nil {
		return SyncState{}, err
	}
	return sts[0], nil
}

// getMany reads the sync state of every connection in conns (in their
// order) in one pipelined round trip: four commands per connection, whose
// replies are all held in memory until the round trip ends.
func (s *state) getMany(ctx context.Context, conns []string) ([]SyncState, error) {
	if len(conns) == 0 {
		return []SyncState{}, nil
	}
	pipe := s.rdb.Pipeline()
	reads := make([]stateReads, len(conns))
	for i, conn := range conns {
		reads[i] = s.queueStateReads(ctx, pipe, conn)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		if len(conns) == 1 {
			return nil, fmt.Errorf("sync state of %s: %w", conns[0], err)
		}
		return nil, fmt.Errorf("sync state of %d connections: %w", len(conns), err)
	}
	out := make([]SyncState, len(conns))
	for i, r := range reads {
		out[i] = r.syncState()
	}
	return out, nil
}

// stateReads are the commands that read one connection's SyncState, queued
// on a pipeline.
type stateReads struct {
	sync    *redis.MapStringStringCmd // the sync hash
	pending *redis.IntCmd             // SCARD of the pending set
	errors  *redis.MapStringStringCmd // the errors hash
	recon   *redis.MapStringStringCmd // the reconciliation status hash
}

func (s *state) queueStateReads(ctx context.Context, p redis.Pipeliner, conn string) stateReads {
	return stateReads{
		sync:    p.HGetAll(ctx, s.key(conn)),
		pending: p.SCard(ctx, s.pendingKey(conn)),
		errors:  p.HGetAll(ctx, s.errorsKey(conn)),
		recon:   p.HGetAll(ctx, s.reconStatusKey(conn)),
	}
}

// syncState parses the replies once the pipeline ran. A connection without
// state (unknown, or never swept) gives zero times and counts and no errors.
func (r stateReads) syncState() SyncState {
	m := r.sync.Val()
	st := SyncState{
		Cursor: msTime(m["cursor"]), Target: msTime(m["target"]),
		LastSweep: msTime(m["last_sweep"]), LastSync: msTime(m["last_sync"]),
		Pending: r.pending.Val(),
	}
	if errs := r.errors.Val(); len(errs) > 0 {
		st.Errors = make(map[string]string, len(errs))
		for id, v := range errs {
			msg, d, ok := decodeError(v)
			st.Errors[id] = msg
			if ok {
				if st.ErrorDetails == nil {
					st.ErrorDetails = map[string]ObjectError{}
				}
				st.ErrorDetails[id] = d
			}
		}
	}
	st.PagesSynced, _ = strconv.ParseInt(m["pages_synced"], 10, 64)
	st.Reconcile = reconcileStatus(r.recon.Val())
	return st
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// moveCursorLua ends the scripts that release a pending entry: when the
// pending set (KEYS[2]) is empty it moves the cursor of the sync hash
// (KEYS[1]) to the target and returns the new cursor (ms), else 0.
const moveCursorLua = `
if redis.call('SCARD', KEYS[2]) == 0 then
  local t = tonumber(redis.call('HGET', KEYS[1], 'target') or '0')
  local c = tonumber(redis.call('HGET', KEYS[1], 'cursor') or '0')
  if t > c then
    redis.call('HSET', KEYS[1], 'cursor', t)
    return t
  end
end
return 0
`

// doneScript removes an object from the pending set (and, for a page, from
// the drain's to-do hash, its checkpoint and its claim, and sets or clears
// its per-object error and its capped mark), counts a stored page, and,
// when the pending set is empty, moves the cursor to the target. Returns
// the new cursor (ms) when it moved, else 0.
//
// KEYS: [1] sync hash, [2] pending set, [3] to-do hash, [4] errors hash,
// [5] checkpoint, [6] claim, [7] capped mark. ARGV: [1] pending member (”
// none), [2] pages stored, [3] now (ms), [4] object id (” none: leave
// [3]..[5] and [7] alone), [5] claim token (” none), [6] error: ” clears
// it, "=" keeps it, anything else is recorded (an encodeError value), [7]
// capped version (ms; ” drops the mark), [8] the mark's TTL (ms).
var doneScript = redis.NewScript(setErrorLua + `
if ARGV[1] ~= '' then redis.call('SREM', KEYS[2], ARGV[1]) end
if ARGV[4] ~= '' then
  redis.call('HDEL', KEYS[3], ARGV[4])
  if ARGV[6] == '' then
    redis.call('HDEL', KEYS[4], ARGV[4])
  elseif ARGV[6] ~= '=' then
    set_err(KEYS[4], ARGV[4], ARGV[6])
  end
  redis.call('DEL', KEYS[5])
  if ARGV[7] == '' then
    redis.call('DEL', KEYS[7])
  else
    redis.call('SET', KEYS[7], ARGV[7], 'PX', ARGV[8])
  end
end
if ARGV[5] ~= '' and redis.call('GET', KEYS[6]) == ARGV[5] then redis.call('DEL', KEYS[6]) end
if tonumber(ARGV[2]) > 0 then
  redis.call('HINCRBY', KEYS[1], 'pages_synced', ARGV[2])
  redis.call('HSET', KEYS[1], 'last_sync', ARGV[3])
end
` + moveCursorLua)

// doneArgs says what else a finished object releases.
type doneArgs struct {
	member   string // pending-set member
	pages    int    // pages stored
	objectID string // a page: drop its to-do entry, error and checkpoint
	claim    *claim // the object's claim, released if still ours
	// errMsg is recorded as the page's per-object error ("": cleared)
	// unless keepError leaves the recorded one as it is; errKind is its
	// kind (default ErrorPermanent: the object is done with it).
	errMsg    string
	errKind   ErrorKind
	keepError bool
	// capped marks this version (ms) of the page as failed permanently
	// (0: no mark).
	capped int64
}

// cappedTTL bounds how long a page that stopped at a cap is remembered.
// The mark only matters while sweeps still see the page (inside the
// overlap after the cursor moved past it, or when a webhook names it); an
// edit gives the page a new version, which is walked whatever the mark.
const cappedTTL = 7 * 24 * time.Hour

// done marks an object as stored; returns the cursor when it moved.
func (s *state) done(ctx context.Context, conn string, a doneArgs, now time.Time) (time.Time, error) {
	ckpt, claimKey, token := s.treeKey(conn, a.objectID), s.claimKey(conn, "page", a.objectID), ""
	if a.claim != nil {
		claimKey, token = a.claim.key, a.claim.token
	}
	errArg := ""
	switch {
	case a.keepError:
		errArg = "="
	case a.errMsg != "":
		errArg = encodeError(cmp.Or(a.errKind, ErrorPermanent), a.errMsg, now)
		if err := s.markErrored(ctx, conn); err != nil {
			return time.Time{}, err
		}
	}
	capped := ""
	if a.capped != 0 {
		capped = strconv.FormatInt(a.capped, 10)
	}
	n, err := doneScript.Run(ctx, s.rdb,
		[]string{s.key(conn), s.pendingKey(conn), s.todoKey(conn), s.errorsKey(conn), ckpt, claimKey, s.cappedKey(conn, a.objectID)},
		a.member, a.pages, now.UnixMilli(), a.objectID, token, errArg, capped, cappedTTL.Milliseconds()).Int64()
	if err != nil {
		return time.Time{}, fmt.Errorf("sync state of %s: %w", conn, err)
	}
	if n > 0 {
		return time.UnixMilli(n), nil
	}
	return time.Time{}, nil
}

var setErrorScript = redis.NewScript(setErrorLua + `set_err(KEYS[1], ARGV[1], ARGV[2]) return 0`)

// setError records msg as objectID's per-object error of kind (keeping the
// since of a recorded error of the same kind).
func (s *state) setError(ctx context.Context, conn, objectID string, kind ErrorKind, msg string, now time.Time) error {
	if err := s.markErrored(ctx, conn); err != nil {
		return err
	}
	return setErrorScript.Run(ctx, s.rdb, []string{s.errorsKey(conn)}, objectID, encodeError(kind, msg, now)).Err()
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
// stop because the connection is paused or needs re-authorization complete
// with their verdicts and keep their ids for their retention; the next generation's tasks get new ids, so a
// sweep after the connection resumes is not refused as a duplicate of them.
func (s *state) bumpGen(ctx context.Context, conn string) error {
	return s.rdb.HIncrBy(ctx, s.key(conn), "gen", 1).Err()
}

// ErrBusy: another task is working on the same object right now. The task
// is retried shortly; this does not count against its retries.
var ErrBusy = errors.New("jobs: another task is syncing this object")

// claim is a short lease on one object; done releases it with the object.
type claim struct{ key, token string }

// pageStart is what claimPage reads besides the claim.
type pageStart struct {
	tree   map[string]string // the block walk's checkpoint (HGETALL)
	capped int64             // the version that stopped at a cap (ms), or 0
}

// claimPage takes the page's claim and, in the same round trip, reads its
// block-walk checkpoint and its capped mark. It fails with ErrBusy when
// another task holds the claim.
func (s *state) claimPage(ctx context.Context, conn, id string) (c *claim, st pageStart, err error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	c = &claim{key: s.claimKey(conn, "page", id), token: hex.EncodeToString(b[:])}
	pipe := s.rdb.Pipeline()
	set := pipe.SetNX(ctx, c.key, c.token, s.claimTTL)
	tree := pipe.HGetAll(ctx, s.treeKey(conn, id))
	capped := pipe.Get(ctx, s.cappedKey(conn, id))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, st, fmt.Errorf("sync state of %s: %w", conn, err)
	}
	if !set.Val() {
		return nil, st, fmt.Errorf("page %s: %w", id, ErrBusy)
	}
	st.tree = tree.Val()
	st.capped, _ = capped.Int64()
	return c, st, nil
}

// saveTree appends the walk's unsaved chunks to its checkpoint (dropping
// a stored checkpoint of another walk first), in one round trip. Only
// what is new is written: the checkpoint grows with the walk, it is not
// rewritten.
func (s *state) saveTree(ctx context.Context, conn string, w *treeWalk) error {
	if !w.reset && len(w.unsaved) == 0 {
		return nil
	}
	key := s.treeKey(conn, w.page)
	pipe := s.rdb.TxPipeline()
	if w.reset {
		pipe.Del(ctx, key)
		pipe.HSet(ctx, key, treeEditedField, w.edited)
	}
	if len(w.unsaved) > 0 {
		fields := make([]any, 0, 2*len(w.unsaved))
		for i, c := range w.unsaved {
			b, err := json.Marshal(c)
			if err != nil {
				return err
			}
			fields = append(fields, strconv.Itoa(w.seq+i), b)
		}
		pipe.HSet(ctx, key, fields...)
	}
	pipe.PExpire(ctx, key, checkpointTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("sync state of %s: %w", conn, err)
	}
	w.seq += len(w.unsaved)
	w.unsaved, w.reset = nil, false
	return nil
}

// release gives a claim back (only if it is still ours: it may have expired
// and been retaken). Best effort: the TTL bounds a claim that stays, and
// the worker's keeper renews it only while its task runs.
func (s *state) release(ctx context.Context, c *claim) {
	_ = s.rdb.Eval(context.WithoutCancel(ctx), `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
		[]string{c.key}, c.token).Err()
}

// todoItem is a page waiting for its connection's drain task.
type todoItem struct {
	LastEdited   int64  `json:"e,omitempty"` // ms; 0: unknown
	DiscoveredAt int64  `json:"d,omitempty"` // ms
	Attempts     int    `json:"n,omitempty"` // failed attempts so far
	NotBefore    int64  `json:"nb,omitempty"`
	ID           string `json:"-"`
}

// drainLease is how long the drain flag of a drain task that waits in the
// queue lives: if the task vanished (archived, lost with its Redis write),
// the next sweep starts another drain after this. It must cover a wait
// behind other connections' tasks; no worker renews a task in the queue.
// A task that runs holds the flag for claimTTL, renewed by its worker's
// keeper, so a worker that dies frees it within claimTTL (lease.go).
const drainLease = 10 * time.Minute

// The drain flag's value names its owner: the task that took it (a sweep,
// a sweep batch's entry, a database task) or the drain task it handed the
// list to. A task that is run again (asynq recovers a task whose worker
// died, or re-queues one a shutdown interrupted) finds its own name there
// and owns the flag again, so a list is never left without a drain until
// the lease runs out.

// takeDrainLua takes the flag (KEYS[1]) for ARGV[1] if it is free or
// already ARGV[1]'s, with a lease of ARGV[2] ms, and records ARGV[3] (”
// none) in the lease index (KEYS[2]) with the same deadline; returns 1 when
// taken.
const takeDrainLua = nowMsLua + `
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if ARGV[3] ~= '' then redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[2]), ARGV[3]) end
  return 1
end
return 0
`

// enqueueTodo adds pages to the pending set and the to-do hash, marks the
// other members pending, and takes the connection's drain flag for owner
// (a running task: for claimTTL, recorded in the lease index) if it is free
// (or owner's already), in one round trip. It reports whether owner holds
// the flag: then it must see the list drained, and keep the flag's lease
// (leaseMember(leaseDrain, conn, owner)) while it runs.
func (s *state) enqueueTodo(ctx context.Context, conn, owner string, members []string, pages []todoItem, now time.Time) (bool, error) {
	var take *redis.Cmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if len(members) > 0 {
			p.SAdd(ctx, s.pendingKey(conn), toAny(members)...)
		}
		if len(pages) > 0 {
			fields := make([]any, 0, 2*len(pages))
			for _, it := range pages {
				b, _ := json.Marshal(it)
				fields = append(fields, it.ID, b)
			}
			p.HSet(ctx, s.todoKey(conn), fields...)
			take = p.Eval(ctx, takeDrainLua, []string{s.drainKey(conn), s.leasesKey(conn)}, owner, s.claimTTL.Milliseconds(), leaseMember(leaseDrain, conn, owner))
		}
		p.HSet(ctx, s.key(conn), "last_sweep", now.UnixMilli())
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sync state of %s: %w", conn, err)
	}
	if take == nil {
		return false, nil
	}
	n, _ := take.Int()
	return n == 1, nil
}

// ensureDrainScript takes the drain flag for ARGV[1] if pages wait and the
// flag is free or ARGV[1]'s (KEYS[3]: the to-do hash).
var ensureDrainScript = redis.NewScript(`
if redis.call('HLEN', KEYS[3]) == 0 then return 0 end
` + takeDrainLua)

// ensureDrain reports whether owner took the drain flag, with a lease of
// lease and index member member (” none), for pages that wait without a
// drain (one lost, stopped with its connection, or on a dead worker).
func (s *state) ensureDrain(ctx context.Context, conn, owner string, lease time.Duration, member string) (bool, error) {
	n, err := ensureDrainScript.Run(ctx, s.rdb, []string{s.drainKey(conn), s.leasesKey(conn), s.todoKey(conn)}, owner, lease.Milliseconds(), member).Int()
	if err != nil {
		return false, fmt.Errorf("sync state of %s: %w", conn, err)
	}
	return n == 1, nil
}

// ownDrainScript starts a drain task's run: the task owns the flag if it
// names it (ARGV[1]), or takes it if it is free and pages wait, or ARGV[3]
// is '1' (a drain run by hand adopts the list). It then holds the flag for
// ARGV[2] ms with lease index member ARGV[4]. Returns 1 when owned, 0 when
// another task holds the flag, 2 when it is free and nothing waits.
var ownDrainScript = redis.NewScript(nowMsLua + `
local v = redis.call('GET', KEYS[1])
if v ~= ARGV[1] and ARGV[3] ~= '1' then
  if v ~= false then return 0 end
  if redis.call('HLEN', KEYS[3]) == 0 then return 2 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[2]), ARGV[4])
return 1
`)

// ownDrain reports whether the drain task owner may drain the list now
// (see ownDrainScript); it then holds the flag for claimTTL.
func (s *state) ownDrain(ctx context.Context, conn, owner string, adopt bool) (bool, error) {
	a := ""
	if adopt {
		a = "1"
	}
	n, err := ownDrainScript.Run(ctx, s.rdb, []string{s.drainKey(conn), s.leasesKey(conn), s.todoKey(conn)},
		owner, s.claimTTL.Milliseconds(), a, leaseMember(leaseDrain, conn, owner)).Int()
	if err != nil {
		return false, fmt.Errorf("sync state of %s: %w", conn, err)
	}
	return n == 1, nil
}

// passDrain hands the drain flag to a drain task about to be enqueued, and
// drops the lease index entry of the task that held it (prev, ” none).
func (s *state) passDrain(ctx context.Context, conn, drainTaskID string, lease time.Duration, prev string) error {
	pipe := s.rdb.Pipeline()
	pipe.Set(ctx, s.drainKey(conn), drainTaskID, lease)
	if prev != "" {
		pipe.ZRem(ctx, s.leasesKey(conn), prev)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// releaseDrainScript drops the drain flag and the lease index entry ARGV[1]
// if no page waits.
var releaseDrainScript = redis.NewScript(`
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  if ARGV[1] ~= '' then redis.call('ZREM', KEYS[3], ARGV[1]) end
  return 1
end
return 0
`)

// releaseDrain drops the flag when the to-do hash is empty and reports
// whether it did; if pages arrived meanwhile the drain must go on. member
// is the releasing task's lease index entry (” none).
func (s *state) releaseDrain(ctx context.Context, conn, member string) (bool, error) {
	n, err := releaseDrainScript.Run(ctx, s.rdb, []string{s.todoKey(conn), s.drainKey(conn), s.leasesKey(conn)}, member).Int()
	if err != nil {
		return false, fmt.Errorf("sync state of %s: %w", conn, err)
	}
	return n == 1, nil
}

// dropDrain drops the drain flag whatever waits (the connection stopped:
// its next sweep after resuming starts a new drain), and the lease index
// entry member (” none).
func (s *state) dropDrain(ctx context.Context, conn, member string) error {
	pipe := s.rdb.Pipeline()
	pipe.Del(ctx, s.drainKey(conn))
	if member != "" {
		pipe.ZRem(ctx, s.leasesKey(conn), member)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// addLease records member, a lease of conn, in the lease index for claimTTL.
func (s *state) addLease(ctx context.Context, conn, member string) error {
	return leaseAddScript.Run(ctx, s.rdb, []string{s.leasesKey(conn)}, member, s.claimTTL.Milliseconds()).Err()
}

// dropLease removes member, a lease of conn, from the lease index: its
// task ended.
func (s *state) dropLease(ctx context.Context, conn, member string) error {
	return s.rdb.ZRem(ctx, s.leasesKey(conn), member).Err()
}

// scanTodo reads the next part of the to-do hash from cursor. (The drain
// flag's lease is the keeper's: see lease.go.)
func (s *state) scanTodo(ctx context.Context, conn string, cursor uint64) ([]todoItem, uint64, error) {
	kv, next, err := s.rdb.HScan(ctx, s.todoKey(conn), cursor, "", 64).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("sync state of %s: %w", conn, err)
	}
	items := make([]todoItem, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		it := todoItem{}
		_ = json.Unmarshal([]byte(kv[i+1]), &it) // an unreadable entry is synced as unknown
		it.ID = kv[i]
		items = append(items, it)
	}
	return items, next, nil
}

// deferTodoScript updates a to-do entry only while it exists (the page
// may have been stored meanwhile by another task) and records the error.
var deferTodoScript = redis.NewScript(setErrorLua + `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  if ARGV[3] ~= '' then set_err(KEYS[2], ARGV[1], ARGV[3]) end
end
return 0
`)

// deferTodo puts a page back to wait until it.NotBefore, recording msg as
// its transient per-object error unless msg is empty.
func (s *state) deferTodo(ctx context.Context, conn string, it todoItem, msg string, now time.Time) error {
	b, _ := json.Marshal(it)
	if msg != "" {
		msg = encodeError(ErrorTransient, msg, now)
		if err := s.markErrored(ctx, conn); err != nil {
			return err
		}
	}
	if err := deferTodoScript.Run(ctx, s.rdb, []string{s.todoKey(conn), s.errorsKey(conn)}, it.ID, b, msg).Err(); err != nil {
		return fmt.Errorf("sync state of %s: %w", conn, err)
	}
	return nil
}

// sweepStart is what a sweep reads when it starts.
type sweepStart struct {
	cursor  time.Time
	gen     int64
	pending int64 // before the sweep added itself
	ck      []byte
	// usersDue says the sweep claimed the connection's user listing
	// (usersDueScript); usersPrev is the claim it replaced ("" none).
	usersDue  bool
	usersPrev string
	usersErr  error // the claim failed (the sweep goes on without it)
}

// beginSweep reads the cursor, the task generation, the pending count and
// the sweep's checkpoint, adds the sweep itself to the pending set and
// records its lease (leaseMember(leaseSweep, conn, self)), and, when
// usersEvery > 0, claims the connection's user listing if usersEvery has
// passed since the last claim (see syncUsersClaimed), in one round trip: an
// unchanged workspace's sweep costs a round trip less than with a claim of
// its own.
func (s *state) beginSweep(ctx context.Context, conn, self string, now time.Time, usersEvery time.Duration) (sweepStart, error) {
	var st sweepStart
	pipe := s.rdb.TxPipeline()
	var users *redis.Cmd
	if usersEvery > 0 {
		// EVAL, not EVALSHA: a NOSCRIPT inside MULTI could not be retried
		// alone. The script is a few lines.
		users = usersDueScript.Eval(ctx, pipe, []string{s.usersKey(conn)}, now.UnixMilli(), usersEvery.Milliseconds())
	}
	h := pipe.HMGet(ctx, s.key(conn), "cursor", "gen")
	n := pipe.SCard(ctx, s.pendingKey(conn))
	ck := pipe.Get(ctx, s.ckptKey(conn, "sweep", "search"))
	pipe.SAdd(ctx, s.pendingKey(conn), self)
	pipe.HSet(ctx, s.key(conn), "last_sweep", now.UnixMilli())
	pipe.Eval(ctx, leaseAddLua, []string{s.leasesKey(conn)}, leaseMember(leaseSweep, conn, self), s.claimTTL.Milliseconds())
	cmds, err := pipe.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		// A claim of the user listing that failed (say, an unreadable
		// stored claim) must not fail the sweep: only the other commands'
		// errors do. EXEC runs every queued command whatever another's
		// error.
		for _, c := range cmds {
			if cerr := c.Err(); c != redis.Cmder(users) && cerr != nil && !errors.Is(cerr, redis.Nil) {
				return st, fmt.Errorf("sync state of %s: %w", conn, cerr)
			}
		}
		if len(cmds) == 0 {
			return st, fmt.Errorf("sync state of %s: %w", conn, err)
		}
	}
	vals := h.Val()
	if v, ok := vals[0].(string); ok {
		st.cursor = msTime(v)
	}
	if v, ok := vals[1].(string); ok {
		st.gen, _ = strconv.ParseInt(v, 10, 64)
	}
	st.pending = n.Val()
	st.ck, _ = ck.Bytes()
	if users != nil {
		switch prev, err := users.Text(); {
		case err == nil:
			st.usersDue, st.usersPrev = true, prev
		case !errors.Is(err, redis.Nil): // redis.Nil: not due
			st.usersErr = err
		}
	}
	return st, nil
}

// endSweepScript records a finished sweep's target, drops its checkpoint
// and its lease (ARGV[4] in KEYS[5]) and releases its pending entry,
// moving the cursor if nothing else is pending; returns the new cursor (ms)
// when it moved, else 0. When ARGV[3] is '1' (the search ran to its end) it
// clears the "search" error and the errors with prefix ARGV[5] not named in
// ARGV[6..].
//
// KEYS: [1] sync hash, [2] pending set, [3] search checkpoint, [4] errors
// hash, [5] lease index.
var endSweepScript = redis.NewScript(`
redis.call('ZREM', KEYS[5], ARGV[4])
local t = tonumber(redis.call('HGET', KEYS[1], 'target') or '0')
if tonumber(ARGV[2]) > t then
  t = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'target', ARGV[2])
end
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[2], ARGV[1])
if ARGV[3] == '1' then
  redis.call('HDEL', KEYS[4], 'search')
` + pruneLua(5) + `
end
` + moveCursorLua)

// pruneLua drops the fields of the errors hash KEYS[4] that start with
// ARGV[at] except those named in ARGV[at+1..].
func pruneLua(at int) string {
	return fmt.Sprintf(`
  local keep = {}
  for i = %[1]d + 1, #ARGV do keep[ARGV[i]] = true end
  for _, f in ipairs(redis.call('HKEYS', KEYS[4])) do
    if string.sub(f, 1, #ARGV[%[1]d]) == ARGV[%[1]d] and not keep[f] then redis.call('HDEL', KEYS[4], f) end
  end`, at)
}

// pruneErrorsScript drops the error of object ARGV[1] and the errors with
// prefix ARGV[4] not named in ARGV[5..] (ARGV[2], ARGV[3] unused).
var pruneErrorsScript = redis.NewScript(`
redis.call('HDEL', KEYS[4], ARGV[1])
` + pruneLua(4) + `
return 0`)

// pruneErrors drops object's error and the errors whose key starts with
// prefix, except keep, in one round trip.
func (s *state) pruneErrors(ctx context.Context, conn, object, prefix string, keep []string) error {
	args := append([]any{object, "", "", prefix}, toAny(keep)...)
	ek := s.errorsKey(conn) // pruneLua reads KEYS[4]
	if err := pruneErrorsScript.Run(ctx, s.rdb, []string{ek, ek, ek, ek}, args...).Err(); err != nil {
		return fmt.Errorf("sync state of %s: %w", conn, err)
	}
	return nil
}

// endSweep: complete says the search ran to its end, which clears an
// error recorded for an earlier one that did not, and the errors of
// skipped results ("search:<hash>") other than bad, the ones it recorded.
func (s *state) endSweep(ctx context.Context, conn, self string, target time.Time, complete bool, bad []string) (time.Time, error) {
	var ms int64
	if !target.IsZero() {
		ms = target.UnixMilli()
	}
	c := "0"
	if complete {
		c = "1"
	}
	n, err := endSweepScript.Run(ctx, s.rdb,
		[]string{s.key(conn), s.pendingKey(conn), s.ckptKey(conn, "sweep", "search"), s.errorsKey(conn), s.leasesKey(conn)},
		append([]any{self, ms, c, leaseMember(leaseSweep, conn, self), "search:"}, toAny(bad)...)...).Int64()
	if err != nil {
		return time.Time{}, fmt.Errorf("sync state of %s: %w", conn, err)
	}
	if n > 0 {
		return time.UnixMilli(n), nil
	}
	return time.Time{}, nil
}

// StateReader reads connections' sync progress without the rest of the
// handlers (for the control plane and metrics). Safe for concurrent use.
type StateReader struct {
	s           *state
	queueShards int // see SpreadQueues
}

// NewStateReader reads the state the handlers with the same key prefix
// write ("" means "notionsync:").
func NewStateReader(rdb redis.UniversalClient, keyPrefix string) *StateReader {
	if keyPrefix == "" {
		keyPrefix = "notionsync:"
	}
	return &StateReader{s: &state{rdb: rdb, prefix: keyPrefix}}
}

// State returns a connection's sync progress (zero times and counts and no
// errors for a connection without any).
func (r *StateReader) State(ctx context.Context, connID string) (SyncState, error) {
	return r.s.get(ctx, connID)
}

// States returns the sync progress of each of connIDs, in their order, in
// one pipelined Redis round trip; each is what State would return for it
// (so an unknown connection gets zero times and counts). The replies of the whole batch
// are held in memory at once, so callers with many connections read them a
// page (a few hundred) at a time.
func (r *StateReader) States(ctx context.Context, connIDs []string) ([]SyncState, error) {
	return r.s.getMany(ctx, connIDs)
}
