package jobs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/notionsync/notionsync/internal/keyspace"
)

// What a running task holds in Redis expires with the task's liveness, not
// after minutes: a worker that is SIGKILLed must not stall its connections.
// asynq cannot be relied on for that: it re-delivers a dead worker's task
// only after the task's 30 s lease, a 30 s allowance for clock skew and its
// recoverer's one-minute poll (60 to 120 s, asynq v0.26).
//
// So every claim on a page, the drain flag of a running drain, and the
// pending entry of a running sweep or database task lives ClaimTTL (8 s by
// default) and is renewed by the worker's keeper every ClaimTTL/3: one
// pipeline per interval (a Lua script per key shard it touches) for all
// leases of the worker process, however
// many tasks it runs. A worker that dies stops renewing; its claims expire
// by themselves, and the scheduler's reaper (Reaper.Reap, every tick)
// finds the drain flags and sweep or database entries whose lease ran out
// in the lease index and hands their work to new tasks. Heal time after a
// kill: ClaimTTL + the scheduler's tick + a dequeue.
//
// The lease index is a sorted set: member = kind, connection, owner (and
// an object id), separated by "\n"; score = the deadline in Redis server
// time (ms), so worker and scheduler clocks never disagree about it. It is
// split into keyspace.Shards shards, shard i holding the leases of the
// connections of shard i (keyspace.ShardOf), in their slot: the scripts
// that take a drain flag or end a sweep name the connection's keys and its
// lease together. Each shard's deadlines are therefore written and read by
// the clock of the one Redis node that holds it.

// DefaultClaimTTL is the default of Config.ClaimTTL.
const DefaultClaimTTL = 8 * time.Second

// Lease kinds in the lease index.
const (
	leaseDrain = "drain" // a running drain's flag: start a new drain
	leaseSweep = "sweep" // a running sweep's pending entry: release it, sweep again
	leaseDB    = "db"    // a running database task: run it again
	leaseDS    = "ds"    // a running data source task: run it again
)

// leasesKey is the lease index shard of conn's leases.
func (s *state) leasesKey(conn string) string { return s.cp(conn) + "busy:leases" }

// leasesShardKey is shard i of the lease index.
func (s *state) leasesShardKey(i int) string { return keyspace.Shard(s.prefix, i) + "busy:leases" }

func leaseMember(kind, conn, owner string, extra ...string) string {
	return strings.Join(append([]string{kind, conn, owner}, extra...), "\n")
}

// nowMsLua is the Redis server's clock in ms.
const nowMsLua = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// leaseAddLua records a lease in the index (KEYS[1]) for ARGV[2] ms.
const leaseAddLua = nowMsLua + `
redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[2]), ARGV[1])
return 0
`

var leaseAddScript = redis.NewScript(leaseAddLua)

// renewScript extends leases of one shard. KEYS[1] is the shard's lease
// index, KEYS[2..] the leases' keys (all in the shard's slot). ARGV[1]: TTL (ms); then per lease
// (in KEYS order from 2) a token and an index member (” none). A key lease
// (a claim, a drain flag) is extended only while its value is the token; an
// index-only lease (a sweep, a database task) has the key ” and is
// extended only while its member is still in the index. Returns the
// positions (1-based) of the leases that were lost.
var renewScript = redis.NewScript(nowMsLua + `
local ttl = tonumber(ARGV[1])
local deadline = now_ms() + ttl
local lost = {}
for i = 2, #KEYS do
  local tok, member = ARGV[2*i-2], ARGV[2*i-1]
  local ok
  if tok ~= '' then
    ok = redis.call('GET', KEYS[i]) == tok
    if ok then redis.call('PEXPIRE', KEYS[i], ttl) end
  else
    ok = redis.call('ZSCORE', KEYS[1], member) ~= false
  end
  if ok then
    if member ~= '' then redis.call('ZADD', KEYS[1], deadline, member) end
  else
    if member ~= '' then redis.call('ZREM', KEYS[1], member) end
    lost[#lost+1] = i - 1
  end
end
return lost
`)

// lease is one thing a running task holds: a key whose value is token
// (a claim, a drain flag), an entry in the lease index, or both.
type lease struct {
	conn       string // the connection: its shard holds key and member
	key, token string // key lease; "" with an index-only lease
	member     string // lease index member; "" none
	onLost     func() // called (from the keeper) once when the lease is lost
}

// keeper renews the leases of one worker process's running tasks. Its
// goroutine runs while it has leases and exits when it has none.
type keeper struct {
	st    *state
	ttl   time.Duration
	log   *zap.Logger
	every time.Duration

	mu      sync.Mutex
	leases  map[*lease]struct{}
	running bool
	wake    chan struct{}
}

func newKeeper(st *state, ttl time.Duration, log *zap.Logger) *keeper {
	return &keeper{st: st, ttl: ttl, every: ttl / 3, log: log, leases: map[*lease]struct{}{}, wake: make(chan struct{}, 1)}
}

// hold starts renewing l; the returned func stops (and is idempotent).
func (k *keeper) hold(l *lease) (drop func()) {
	k.mu.Lock()
	k.leases[l] = struct{}{}
	if !k.running {
		k.running = true
		go k.loop()
	}
	k.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			k.mu.Lock()
			delete(k.leases, l)
			empty := len(k.leases) == 0
			k.mu.Unlock()
			if empty {
				select { // let the goroutine end now, not at its next tick
				case k.wake <- struct{}{}:
				default:
				}
			}
		})
	}
}

func (k *keeper) loop() {
	t := time.NewTicker(k.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-k.wake:
		}
		k.mu.Lock()
		if len(k.leases) == 0 {
			k.running = false
			k.mu.Unlock()
			return
		}
		ls := make([]*lease, 0, len(k.leases))
		for l := range k.leases {
			ls = append(ls, l)
		}
		k.mu.Unlock()
		k.renew(ls)
	}
}

// renew extends ls and reports the ones lost: one script per shard that
// holds some of them (a script names keys of one slot), all in one
// pipeline, so one round trip per node. A failed round trip is retried at
// the next interval: the TTL leaves two of them.
func (k *keeper) renew(ls []*lease) {
	type group struct {
		keys   []string
		args   []any
		leases []*lease
	}
	groups := map[int]*group{}
	var order []int
	for _, l := range ls {
		sh := keyspace.ShardOf(l.conn)
		g := groups[sh]
		if g == nil {
			g = &group{keys: []string{k.st.leasesShardKey(sh)}, args: []any{k.ttl.Milliseconds()}}
			groups[sh] = g
			order = append(order, sh)
		}
		key := l.key
		if key == "" {
			key = g.keys[0] // index-only: the script does not read it
		}
		g.keys = append(g.keys, key)
		g.args = append(g.args, l.token, l.member)
		g.leases = append(g.leases, l)
	}
	calls := make([]scriptCall, len(order))
	for i, sh := range order {
		calls[i] = scriptCall{keys: groups[sh].keys, args: groups[sh].args}
	}
	ctx, cancel := context.WithTimeout(context.Background(), k.every)
	defer cancel()
	cmds, err := runScripts(ctx, k.st.rdb, renewScript, calls)
	if err != nil {
		k.log.Warn("could not renew the leases of running tasks", zap.Int("leases", len(ls)), zap.Error(err))
	}
	for i, sh := range order {
		g := groups[sh]
		lost, err := cmds[i].Int64Slice()
		if err != nil {
			continue // logged above; retried at the next interval
		}
		for _, j := range lost {
			l := g.leases[j-1]
			k.mu.Lock()
			_, held := k.leases[l]
			delete(k.leases, l)
			k.mu.Unlock()
			if held && l.onLost != nil {
				l.onLost()
			}
		}
	}
}

// scriptCall is one run of a script: its keys (of one slot) and args.
type scriptCall struct {
	keys []string
	args []any
}

// runScripts runs sc once per call in one pipeline (plain, not MULTI: the
// calls may name different slots, and go-redis sends each node its part)
// and returns the commands in calls' order; the error is the first call's
// that failed. It sends EVALSHA, then EVAL in a second round trip for the
// calls a node answered NOSCRIPT (a restarted node, or a replica promoted
// since the script was first run, has an empty script cache).
func runScripts(ctx context.Context, rdb redis.UniversalClient, sc *redis.Script, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	pipe := rdb.Pipeline()
	for i, c := range calls {
		cmds[i] = sc.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	if len(calls) > 0 {
		_, _ = pipe.Exec(ctx) // errors are read per command
	}
	var again []int
	for i, c := range cmds {
		if err := c.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		pipe := rdb.Pipeline()
		for _, i := range again {
			cmds[i] = sc.Eval(ctx, pipe, calls[i].keys, calls[i].args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return cmds, err
		}
	}
	return cmds, nil
}

// reapScript takes up to ARGV[1] members whose deadline has passed out of
// the index (KEYS[1]) and returns them: whoever runs it acts on them, so two
// schedulers never both do.
var reapScript = redis.NewScript(nowMsLua + `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[1]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
`)

// ReaperConfig configures a Reaper.
type ReaperConfig struct {
	// Redis and KeyPrefix must be the handlers'. Required / default
	// "notionsync:".
	Redis     redis.UniversalClient
	KeyPrefix string
	// Enqueuer receives the tasks that take over. Required.
	Enqueuer Enqueuer
	// Max bounds the leases taken out of each of the lease index's
	// keyspace.Shards shards per Reap call. Default 100.
	Max int
	// Logger: default none.
	Logger *zap.Logger
}

// Reaper hands the work of tasks whose worker died (their leases ran out)
// to new tasks. The scheduler's leader calls Reap every tick.
type Reaper struct {
	cfg ReaperConfig
	st  *state
	log *zap.Logger
}

// NewReaper returns a Reaper.
func NewReaper(cfg ReaperConfig) (*Reaper, error) {
	if cfg.Redis == nil || cfg.Enqueuer == nil {
		return nil, errors.New("jobs: ReaperConfig.Redis and Enqueuer are required")
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "notionsync:"
	}
	if cfg.Max <= 0 {
		cfg.Max = 100
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Reaper{cfg: cfg, st: &state{rdb: cfg.Redis, prefix: cfg.KeyPrefix}, log: cfg.Logger}, nil
}

// Reap acts on every lease whose deadline has passed (up to Max per
// shard of the lease index): a dead drain's connection gets a new drain if
// pages wait, a dead sweep's pending entry is released and the sweep runs
// again, a dead database or data source task runs again. It returns how
// many it handed on. It walks the index's shards in one pipeline: one
// round trip per Redis node when nothing is due.
func (r *Reaper) Reap(ctx context.Context) (int, error) {
	calls := make([]scriptCall, keyspace.Shards)
	for i := range calls {
		calls[i] = scriptCall{keys: []string{r.st.leasesShardKey(i)}, args: []any{r.cfg.Max}}
	}
	cmds, err := runScripts(ctx, r.cfg.Redis, reapScript, calls)
	var errs []error
	if err != nil {
		// Act on the shards that answered: what they returned is out of
		// the index. The others are read again at the next tick.
		errs = append(errs, fmt.Errorf("jobs: reap leases: %w", err))
	}
	n := 0
	for i, cmd := range cmds {
		due, err := cmd.StringSlice()
		if err != nil {
			continue
		}
		for _, m := range due {
			ok, err := r.reap(ctx, m)
			if err != nil {
				// The member is gone from the index: put it back so the next
				// tick tries again.
				if aerr := leaseAddScript.Run(context.WithoutCancel(ctx), r.cfg.Redis, []string{r.st.leasesShardKey(i)}, m, 0).Err(); aerr != nil {
					err = errors.Join(err, aerr)
				}
				errs = append(errs, err)
				continue
			}
			if ok {
				n++
			}
		}
	}
	return n, errors.Join(errs...)
}

func (r *Reaper) reap(ctx context.Context, member string) (bool, error) {
	f := strings.Split(member, "\n")
	if len(f) < 3 {
		return false, nil // not ours: dropped
	}
	kind, conn, owner := f[0], f[1], f[2]
	log := r.log.With(zap.String("conn_id", conn), zap.String("kind", kind), zap.String("owner", owner))
	switch kind {
	case leaseDrain:
		// The takeover itself goes to the sync queue: the connection lost
		// the worker slot it had, and must not wait behind every other
		// backfill for a new one. Its continuations go back to the backfill
		// queue for a first sync (no cursor yet), as its sweep put them, so
		// a backfill does not stay ahead of incremental syncs.
		queue := QueueSync
		if cur, err := r.cfg.Redis.HGet(ctx, r.st.key(conn), "cursor").Result(); errors.Is(err, redis.Nil) || err == nil && msTime(cur).IsZero() {
			queue = QueueBackfill
		} else if err != nil {
			return false, err
		}
		id := newDrainID(conn)
		took, err := r.st.ensureDrain(ctx, conn, id, drainLease, "")
		if err != nil || !took {
			return false, err
		}
		// Drain ids are unique: nothing to de-duplicate, nothing to retain.
		if _, err := enqueue(ctx, r.cfg.Enqueuer, TypeDrain, DrainPayload{ConnID: conn, Queue: queue}, id, QueueSync, asynq.Retention(0)); err != nil {
			_ = r.st.dropDrain(context.WithoutCancel(ctx), conn, "")
			return false, err
		}
		log.Info("a drain's worker stopped renewing its lease; started a new drain", zap.String("drain", id))
		return true, nil
	case leaseSweep:
		// Released without a target: the cursor cannot pass what the dead
		// sweep did not hand out; its checkpoint is the connection's, so
		// the new sweep resumes where it stopped.
		if _, err := r.st.done(ctx, conn, doneArgs{member: owner}, time.Now()); err != nil {
			return false, err
		}
		if _, err := enqueue(ctx, r.cfg.Enqueuer, TypeSweep, SweepPayload{ConnID: conn}, reapID(owner), QueueSync); err != nil {
			return false, err
		}
		log.Info("a sweep's worker stopped renewing its lease; sweeping again")
		return true, nil
	case leaseDB:
		if len(f) < 4 {
			return false, nil
		}
		// Its pending entry stays: the new task releases it.
		if _, err := enqueue(ctx, r.cfg.Enqueuer, TypeDatabase, DatabasePayload{ConnID: conn, DatabaseID: f[3]}, reapID(owner), QueueSync); err != nil {
			return false, err
		}
		log.Info("a database task's worker stopped renewing its lease; running it again", zap.String("database_id", f[3]))
		return true, nil
	case leaseDS:
		if len(f) < 5 {
			return false, nil
		}
		// Its pending entry stays: the new task releases it.
		if _, err := enqueue(ctx, r.cfg.Enqueuer, TypeDataSource, DataSourcePayload{ConnID: conn, DataSourceID: f[3], DatabaseID: f[4]}, reapID(owner), QueueSync); err != nil {
			return false, err
		}
		log.Info("a data source task's worker stopped renewing its lease; running it again", zap.String("data_source_id", f[3]))
		return true, nil
	}
	return false, nil
}

// reapID names the task that takes over from a dead one. The reap script
// hands each lease to one reaper, so the id need not de-duplicate; it must
// not collide with an earlier takeover of the same task (retained an hour).
func reapID(owner string) string {
	return fmt.Sprintf("reap:%s:%d", owner, time.Now().UnixMilli())
}

// newDrainID names a new drain task (and the flag it holds).
func newDrainID(conn string) string {
	return fmt.Sprintf("drain:%s:%d:%x", conn, time.Now().UnixMilli(), rand.Uint64())
}
