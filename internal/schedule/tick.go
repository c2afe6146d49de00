package schedule

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/tokens"
)

// rescheduleScript moves sweep-schedule entries, each only if it is still at
// the score the tick read (compare-and-set per member): a scheduler that
// acted on stale data (a former leader waking from a pause) cannot move an
// entry that the current leader already moved, nor resurrect one it removed.
//
//	KEYS[1] one shard of the sweep schedule (zset; one slot per call)
//	ARGV    triples: member, expected score (ms), new score (ms, or "-" to remove)
//
// Returns how many entries moved.
var rescheduleScript = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 3 do
  local cur = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if cur and tonumber(cur) == tonumber(ARGV[i + 1]) then
    if ARGV[i + 2] == '-' then
      redis.call('ZREM', KEYS[1], ARGV[i])
    else
      redis.call('ZADD', KEYS[1], ARGV[i + 2], ARGV[i])
    end
    n = n + 1
  end
end
return n
`)

// rescheduleChunk bounds the members one rescheduleScript call moves.
const rescheduleChunk = 1000

// outcome is what one due entry came to.
type outcome int

const (
	outEnqueued outcome = iota + 1
	outSkipped
	outError
	outLost    // the leader lease was lost before acting
	outBatched // left for enqueueBatches
)

// fetched is one connection read for a tick.
type fetched struct {
	conn *tokens.Connection
	err  error
}

// move reschedules (or removes) one sweep-schedule entry.
type move struct {
	id     string
	shard  int   // the schedule shard the entry was read from
	from   int64 // the score the tick read (ms)
	to     time.Time
	remove bool
	retry  time.Time // outBatched: where to move if the batch fails
}

// errLog collects per-connection failures of a tick so that a Redis outage
// produces one log line per tick, not one per connection.
type errLog struct {
	mu    sync.Mutex
	n     int
	first error
	id    string
}

func (l *errLog) add(id string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if l.first == nil {
		l.first, l.id = err, id
	}
}

// tick is one pass: read what is due, read those connections, enqueue,
// reschedule the sweeps, discover new connections. guard, when not nil, is
// asked before every write (enqueue or schedule change); once it says no, the
// tick stops acting and returns errLostLease.
//
// p, when not nil (Run's loop), lets the tick leave out reads that cannot
// find anything, the fixed cost of an idle fleet:
//
//   - the refresh-due index, after a read that found nothing due before
//     now+RefreshLookahead, is read again after RefreshLookahead less half
//     a tick (so within the lookahead, at the tick nearest it): whatever
//     falls due is still enqueued no later than its due time. Entries
//     added meanwhile with an earlier due time (a new connection, a failure
//     backoff) are due at least a token lifetime or a backoff period away
//     in practice; at worst they are picked one lookahead late;
//   - discovery and rescan run every DiscoverInterval, with the budget of
//     the ticks in between.
func (s *Scheduler) tick(ctx context.Context, guard func() bool, p *pace) (TickStats, error) {
	start := time.Now()
	now := s.now()
	var st TickStats
	var errs []error

	// First, so that a long tick does not delay it: the work of tasks
	// whose worker died goes to new tasks (see Config.Reaper).
	if s.cfg.Reaper != nil && (guard == nil || guard()) {
		n, err := s.cfg.Reaper.Reap(ctx)
		st.Reaped = n
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule: reap: %w", err))
		}
	}

	until := now.Add(s.cfg.RefreshLookahead)
	var dueIDs []string
	if p == nil || !now.Before(p.nextRefresh) {
		ids, err := s.store.Due(ctx, until, s.cfg.MaxRefreshPerTick)
		if err != nil {
			errs = append(errs, err)
		}
		dueIDs = ids
		if p != nil {
			p.nextRefresh = time.Time{}
			if err == nil && len(ids) == 0 {
				p.nextRefresh = now.Add(s.cfg.RefreshLookahead - s.cfg.Tick/2)
			}
		}
	}
	sweeps, shards, err := s.dueSweeps(ctx, now)
	if err != nil {
		errs = append(errs, err)
	}
	st.RefreshDue, st.SweepsDue = len(dueIDs), len(sweeps)

	conns := s.fetch(ctx, dueIDs, sweeps)

	var failures errLog
	refreshOut := make([]outcome, len(dueIDs))
	sweepOut := make([]outcome, len(sweeps))
	moves := make([]move, len(sweeps))
	var g errgroup.Group
	g.SetLimit(s.cfg.Concurrency)
	for i, id := range dueIDs {
		g.Go(func() error {
			refreshOut[i] = s.refreshOne(ctx, guard, id, conns[id], until, &failures)
			return nil
		})
	}
	var reconciles atomic.Int64
	for i, z := range sweeps {
		g.Go(func() error {
			sweepOut[i], moves[i] = s.sweepOne(ctx, guard, z, conns, now, &failures)
			moves[i].shard = shards[i]
			if s.reconcileOne(ctx, guard, z, sweepOut[i], conns, &failures) {
				reconciles.Add(1)
			}
			return nil
		})
	}
	_ = g.Wait() // the functions never fail
	s.enqueueBatches(ctx, guard, sweeps, sweepOut, moves, now, &failures)

	lost := false
	count := func(o outcome, enqueued *int) {
		switch o {
		case outEnqueued:
			*enqueued++
		case outSkipped:
			st.Skipped++
		case outError:
			st.Errors++
		case outLost:
			lost = true
		}
	}
	for _, o := range refreshOut {
		count(o, &st.RefreshEnqueued)
	}
	for _, o := range sweepOut {
		count(o, &st.SweepsEnqueued)
	}
	st.ReconcilesEnqueued = int(reconciles.Load())
	if failures.n > 0 && ctx.Err() == nil {
		s.log.Warn("tick: some connections failed; they are retried later",
			zap.Int("failures", failures.n), zap.String("conn_id", failures.id), zap.Error(failures.first))
	}

	if !lost && guard != nil && !guard() {
		lost = true
	}
	if !lost {
		if err := s.reschedule(ctx, moves); err != nil {
			errs = append(errs, err)
		}
		if p == nil || !now.Before(p.nextDiscover) {
			// Run discovers every DiscoverInterval, with the budget of the
			// ticks in between; Tick, every time, with one tick's.
			ticks := 1
			if p != nil {
				ticks = int(s.cfg.DiscoverInterval / s.cfg.Tick)
				p.nextDiscover = now.Add(s.cfg.DiscoverInterval - s.cfg.Tick/2)
			}
			n, err := s.discover(ctx, now, guard, ticks)
			st.Discovered = n
			if errors.Is(err, errLostLease) {
				lost = true
			} else if err != nil {
				errs = append(errs, err)
			}
		}
	}
	if lost {
		errs = append(errs, errLostLease)
	}
	st.Took = time.Since(start)
	if h := s.cfg.Hooks.OnTick; h != nil {
		h(st)
	}
	return st, errors.Join(errs...)
}

// fetch reads every connection a tick needs once (a connection due for both
// a refresh and a sweep is read once), in pipelined batches.
func (s *Scheduler) fetch(ctx context.Context, dueIDs []string, sweeps []redis.Z) map[string]fetched {
	ids := make([]string, 0, len(dueIDs)+len(sweeps))
	seen := make(map[string]struct{}, len(dueIDs)+len(sweeps))
	add := func(id string) {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			ids = append(ids, id)
		}
	}
	for _, id := range dueIDs {
		add(id)
	}
	for _, z := range sweeps {
		id, _ := z.Member.(string)
		add(id)
	}
	// One pipelined round trip per batch instead of one per connection.
	out := make(map[string]fetched, len(ids))
	for start := 0; start < len(ids); start += fetchBatch {
		batch := ids[start:min(start+fetchBatch, len(ids))]
		conns, errs, err := s.store.GetMany(ctx, batch)
		for i, id := range batch {
			switch {
			case err != nil:
				out[id] = fetched{err: err}
			default:
				out[id] = fetched{conn: conns[i], err: errs[i]}
			}
		}
	}
	return out
}

// fetchBatch bounds one pipelined read of connection records.
const fetchBatch = 500

// dueSweeps reads the sweeps due by now: the head of every shard of the
// schedule in one pipeline (a cluster client sends each master its share at
// once, so it is one round trip per master, not one per shard), merged
// oldest first and capped at MaxSweepsPerTick. Each shard is asked for up to
// MaxSweepsPerTick entries, so the merge takes the globally oldest even when
// the backlog sits in a few shards. shards[i] is the shard sweeps[i] was
// read from: its reschedule goes to that shard. A shard that cannot be read
// is skipped (and reported) so the others still make progress.
func (s *Scheduler) dueSweeps(ctx context.Context, now time.Time) (sweeps []redis.Z, shards []int, err error) {
	stop := strconv.FormatInt(now.UnixMilli(), 10)
	cmds := make([]*redis.ZSliceCmd, keyspace.Shards)
	pipe := s.rdb.Pipeline()
	for i := range keyspace.Shards {
		cmds[i] = pipe.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
			Key: s.sweepKeys[i], Start: "-inf", Stop: stop, ByScore: true, Count: int64(s.cfg.MaxSweepsPerTick),
		})
	}
	_, _ = pipe.Exec(ctx) // per-command errors are read below
	type entry struct {
		z     redis.Z
		shard int
	}
	var all []entry
	var failed int
	var first error
	for i, c := range cmds {
		zs, err := c.Result()
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
			continue
		}
		for _, z := range zs {
			all = append(all, entry{z: z, shard: i})
		}
	}
	if failed > 0 {
		err = fmt.Errorf("schedule: read due sweeps: %d of %d shards failed: %w", failed, keyspace.Shards, first)
	}
	slices.SortFunc(all, func(a, b entry) int {
		if c := cmp.Compare(a.z.Score, b.z.Score); c != 0 {
			return c
		}
		am, _ := a.z.Member.(string)
		bm, _ := b.z.Member.(string)
		return strings.Compare(am, bm)
	})
	all = all[:min(len(all), s.cfg.MaxSweepsPerTick)]
	sweeps = make([]redis.Z, len(all))
	shards = make([]int, len(all))
	for i, e := range all {
		sweeps[i], shards[i] = e.z, e.shard
	}
	return sweeps, shards, err
}

// refreshOne enqueues the refresh of one due connection, after checking the
// record: only active and paused connections are refreshed (needs_reauth and
// disconnected ones leave the due index, but the index was read before the
// record), and only if the record still says the refresh is due (another
// process may have refreshed it, or a failure may have pushed it back, since
// the index was read).
func (s *Scheduler) refreshOne(ctx context.Context, guard func() bool, id string, f fetched, until time.Time, failures *errLog) outcome {
	if errors.Is(f.err, tokens.ErrNotFound) {
		return outSkipped
	}
	if f.err != nil {
		failures.add(id, f.err)
		return outError
	}
	c := f.conn
	if c.Status != tokens.StatusActive && c.Status != tokens.StatusPaused {
		return outSkipped
	}
	due := c.RefreshDue
	if c.RetryAt.After(due) {
		due = c.RetryAt
	}
	if due.After(until) {
		return outSkipped
	}
	if guard != nil && !guard() {
		return outLost
	}
	var err error
	if s.enqAt != nil {
		err = s.enqAt.EnqueueRefreshAt(ctx, id, c.Version, due)
	} else {
		err = s.enq.EnqueueRefresh(ctx, id, c.Version)
	}
	if err := duplicateOK(err); err != nil {
		failures.add(id, fmt.Errorf("enqueue refresh: %w", err))
		return outError
	}
	return outEnqueued
}

// sweepOne handles one due sweep-schedule entry and says where it moves:
//
//   - active: enqueue the sweep for its slot, next slot = slot + interval;
//   - paused: no task, next slot = slot + interval (it resumes on time);
//   - needs_reauth, disconnected: no task, looked at again after
//     ParkInterval;
//   - missing: removed from the schedule;
//   - a failed read: tried again after errorRetry (a new slot), so failing
//     entries never pile up at the head of the schedule;
//   - a failed enqueue (Redis down or failing over): tried again at the
//     next tick (enqueueRetry), also a new slot.
func (s *Scheduler) sweepOne(ctx context.Context, guard func() bool, z redis.Z, conns map[string]fetched, now time.Time, failures *errLog) (outcome, move) {
	id, _ := z.Member.(string)
	slotMs := int64(z.Score)
	mv := move{id: id, from: slotMs}
	f := conns[id]
	if errors.Is(f.err, tokens.ErrNotFound) {
		mv.remove = true
		return outSkipped, mv
	}
	if f.err != nil {
		failures.add(id, f.err)
		mv.to = now.Add(s.errorRetry(s.cfg.SyncInterval))
		return outError, mv
	}
	c := f.conn
	interval := s.interval(c)
	slot := time.UnixMilli(slotMs)
	switch c.Status {
	case tokens.StatusActive:
		if s.enqBatch != nil {
			// Handed out with the tick's other sweeps (enqueueBatches).
			mv.to = nextSlot(slot, interval, now)
			mv.retry = now.Add(s.enqueueRetry(interval))
			return outBatched, mv
		}
		if guard != nil && !guard() {
			return outLost, move{}
		}
		if err := duplicateOK(s.enq.EnqueueSweep(ctx, id, slot)); err != nil {
			failures.add(id, fmt.Errorf("enqueue sweep: %w", err))
			mv.to = now.Add(s.enqueueRetry(interval))
			return outError, mv
		}
		mv.to = nextSlot(slot, interval, now)
		return outEnqueued, mv
	case tokens.StatusPaused:
		mv.to = nextSlot(slot, interval, now)
		return outSkipped, mv
	default:
		mv.to = now.Add(s.cfg.ParkInterval)
		return outSkipped, mv
	}
}

// reconcileOne enqueues the connection's reconciliation pass when the
// sweep of slot z (being handed out: out) is the first of a new
// reconciliation period, i.e. the period boundary (ReconcileSlot) lies in
// (slot - sweep interval, slot]. Slots come from the schedule, not from a
// clock, so a late tick still asks at the right sweep. A failure is logged
// with the tick's others; the sweep goes on (the next period asks again).
func (s *Scheduler) reconcileOne(ctx context.Context, guard func() bool, z redis.Z, out outcome, conns map[string]fetched, failures *errLog) bool {
	if s.enqRecon == nil || (out != outEnqueued && out != outBatched) {
		return false
	}
	id, _ := z.Member.(string)
	f := conns[id]
	if f.err != nil || f.conn == nil || f.conn.Status != tokens.StatusActive {
		return false
	}
	slot := time.UnixMilli(int64(z.Score))
	boundary := ReconcileSlot(id, s.cfg.ReconcileInterval, slot)
	if !boundary.After(slot.Add(-s.interval(f.conn))) {
		return false
	}
	if guard != nil && !guard() {
		return false
	}
	if err := duplicateOK(s.enqRecon.EnqueueReconcile(ctx, id, boundary)); err != nil {
		failures.add(id, fmt.Errorf("enqueue reconciliation: %w", err))
		return false
	}
	return true
}

// ReconcileOffset is where in each ReconcileInterval a connection's
// reconciliation period starts: a hash of its id, so that a fleet's passes
// are spread over the interval instead of falling due at once. It is whole
// seconds, so a slot survives a round trip through a task id in ms.
func ReconcileOffset(connID string, interval time.Duration) time.Duration {
	secs := uint64(interval / time.Second)
	if secs == 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(connID))
	return time.Duration(h.Sum64()%secs) * time.Second
}

// ReconcileSlot is the start of connID's reconciliation period that holds
// t (periods of interval, shifted by ReconcileOffset).
func ReconcileSlot(connID string, interval time.Duration, t time.Time) time.Time {
	if interval <= 0 {
		return t
	}
	off := ReconcileOffset(connID, interval)
	return t.Add(-off).Truncate(interval).Add(off)
}

// enqueueBatches hands out the sweeps sweepOne left for a batch, up to
// SweepBatch per call. A batch that cannot be enqueued moves its entries
// to their error-retry slot, like a single sweep that could not.
func (s *Scheduler) enqueueBatches(ctx context.Context, guard func() bool, sweeps []redis.Z, out []outcome, moves []move, now time.Time, failures *errLog) {
	var idx []int
	for i, o := range out {
		if o == outBatched {
			idx = append(idx, i)
		}
	}
	for start := 0; start < len(idx); start += s.cfg.SweepBatch {
		chunk := idx[start:min(start+s.cfg.SweepBatch, len(idx))]
		if guard != nil && !guard() {
			for _, i := range chunk {
				out[i], moves[i] = outLost, move{}
			}
			continue
		}
		ids := make([]string, len(chunk))
		slots := make([]time.Time, len(chunk))
		for k, i := range chunk {
			ids[k], _ = sweeps[i].Member.(string)
			slots[k] = time.UnixMilli(int64(sweeps[i].Score))
		}
		err := duplicateOK(s.enqBatch.EnqueueSweeps(ctx, ids, slots))
		for _, i := range chunk {
			if err != nil {
				failures.add(moves[i].id, fmt.Errorf("enqueue sweeps: %w", err))
				out[i], moves[i].to = outError, moves[i].retry
				continue
			}
			out[i] = outEnqueued
		}
	}
}

// nextSlot is the sweep slot after slot: one interval later, counted from
// the slot rather than from now so the schedule does not drift. When that is
// not in the future (the schedule is more than an interval behind, e.g. the
// scheduler was down), the next slot is counted from now, at a random point
// of the second half of an interval, so a backlog does not come back in
// lockstep.
func nextSlot(slot time.Time, interval time.Duration, now time.Time) time.Time {
	next := slot.Add(interval)
	if next.After(now) {
		return next
	}
	half := interval / 2
	return now.Add(half + rand.N(interval-half))
}

// errorRetry is how long an entry whose read or enqueue failed waits.
func (s *Scheduler) errorRetry(interval time.Duration) time.Duration {
	return min(interval, max(s.cfg.Tick, 30*time.Second))
}

// enqueueRetry is how long an entry whose enqueue failed waits: one tick.
// An enqueue fails only when the queue's Redis does not answer (a
// duplicate is not a failure), which on a Redis Cluster is one master's
// failover: a few seconds, after which the queue part is back on the
// promoted replica. Waiting errorRetry (up to 30 s, a whole sweep interval
// with short intervals) after it doubled the fleet's recovery from a master
// SIGKILL; trying at the next tick costs one enqueue per failed batch per
// tick while Redis is down, and the entry still moves behind the sweeps
// that are due now, so failures do not pile up at the schedule's head.
func (s *Scheduler) enqueueRetry(interval time.Duration) time.Duration {
	return min(interval, s.cfg.Tick)
}

// interval is the connection's sweep interval.
func (s *Scheduler) interval(c *tokens.Connection) time.Duration {
	if v, ok := c.Meta[MetaSyncInterval]; ok {
		if d, err := time.ParseDuration(strings.TrimSpace(v)); err == nil && d > 0 {
			return max(d, s.cfg.Tick)
		}
	}
	return s.cfg.SyncInterval
}

// reschedule writes the tick's moves: one rescheduleScript call per shard
// touched (a script may name keys of one slot only), up to rescheduleChunk
// moves each, all in one pipeline.
func (s *Scheduler) reschedule(ctx context.Context, moves []move) error {
	var calls []scriptCall
	var pending [keyspace.Shards][]any
	for _, m := range moves {
		if m.id == "" {
			continue
		}
		to := "-"
		if !m.remove {
			to = strconv.FormatInt(m.to.UnixMilli(), 10)
		}
		pending[m.shard] = append(pending[m.shard], m.id, m.from, to)
		if len(pending[m.shard]) == 3*rescheduleChunk {
			calls = append(calls, scriptCall{keys: []string{s.sweepKeys[m.shard]}, args: pending[m.shard]})
			pending[m.shard] = nil
		}
	}
	for i, args := range pending {
		if len(args) > 0 {
			calls = append(calls, scriptCall{keys: []string{s.sweepKeys[i]}, args: args})
		}
	}
	if err := runScripts(ctx, s.rdb, rescheduleScript, calls); err != nil {
		return fmt.Errorf("schedule: reschedule sweeps: %w", err)
	}
	return nil
}

// scriptCall is one run of a script: its keys (all of one slot) and args.
type scriptCall struct {
	keys []string
	args []any
}

// runScripts runs script once per call, in one pipeline of EVALSHA (a
// cluster client splits it per master); the calls a server refuses with
// NOSCRIPT (it has not seen the script yet: first run, restart, failover)
// run again with EVAL in a second pipeline. It returns an error when any
// call failed, counting them and wrapping the first.
func runScripts(ctx context.Context, rdb redis.UniversalClient, script *redis.Script, calls []scriptCall) error {
	switch len(calls) {
	case 0:
		return nil
	case 1:
		return script.Run(ctx, rdb, calls[0].keys, calls[0].args...).Err()
	}
	cmds := make([]*redis.Cmd, len(calls))
	pipe := rdb.Pipeline()
	for i, c := range calls {
		cmds[i] = script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // per-command errors are read below
	var retry []int
	for i, c := range cmds {
		if err := c.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			retry = append(retry, i)
		}
	}
	if len(retry) > 0 {
		pipe = rdb.Pipeline()
		for _, i := range retry {
			cmds[i] = script.Eval(ctx, pipe, calls[i].keys, calls[i].args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	var failed int
	var first error
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d script calls failed: %w", failed, len(calls), first)
	}
	return nil
}

// discover adds connections that are not on the sweep schedule yet. Two
// cursors over the store's connection list (ordered by creation) are kept in
// Redis:
//
//   - tail follows the end of the list: newly created connections are added
//     on the next tick (up to DiscoverPerTick per tick; a first run pages
//     through the existing list);
//   - rescan cycles through the whole list, RescanPerTick per tick, and
//     re-adds any connection the schedule lost.
//
// New entries get a random first slot within one interval, stratified over
// the page (the i-th of n gets a random point of the i-th n-th of the
// interval), so connections created together are spread evenly. ZADD NX
// leaves connections already scheduled alone. The cursors move only after
// the entries are written. They hold index positions (see listPage), so
// neither costs a lookup of where it stands: a discovery of an unchanged
// list is the cursors' read, one index read each and the rescanned
// records.
func (s *Scheduler) discover(ctx context.Context, now time.Time, guard func() bool, ticks int) (int, error) {
	cur, err := s.rdb.HMGet(ctx, s.cursorKey, "tail", "rescan").Result()
	if err != nil {
		return 0, fmt.Errorf("schedule: read discovery cursors: %w", err)
	}
	tail, _ := cur[0].(string)
	rescan, _ := cur[1].(string)

	var errs []error
	var members []redis.Z
	newTail, newRescan := tail, rescan
	page, last, _, err := s.listPage(ctx, tail, s.cfg.DiscoverPerTick*ticks)
	if err != nil {
		errs = append(errs, fmt.Errorf("schedule: discover new connections: %w", err))
	} else {
		members = s.spread(members, page, now)
		newTail = cmp.Or(last, tail)
	}
	if s.cfg.RescanPerTick > 0 {
		page, last, more, err := s.listPage(ctx, rescan, s.cfg.RescanPerTick*ticks)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule: rescan connections: %w", err))
		} else {
			members = s.spread(members, page, now)
			newRescan = ""
			if more {
				newRescan = last // else the next pass starts over
			}
		}
	}
	if len(members) == 0 && newTail == tail && newRescan == rescan {
		return 0, errors.Join(errs...)
	}
	if guard != nil && !guard() {
		return 0, errLostLease
	}
	added := 0
	if len(members) > 0 {
		n, err := s.addSweeps(ctx, members)
		if err != nil {
			return 0, errors.Join(append(errs, fmt.Errorf("schedule: add connections to the sweep schedule: %w", err))...)
		}
		added = n
	}
	if newTail != tail || newRescan != rescan {
		if err := s.rdb.HSet(ctx, s.cursorKey, "tail", newTail, "rescan", newRescan).Err(); err != nil {
			errs = append(errs, fmt.Errorf("schedule: write discovery cursors: %w", err))
		}
	}
	if added > 0 {
		s.log.Debug("connections added to the sweep schedule", zap.Int("count", added))
	}
	return added, errors.Join(errs...)
}

// listPage reads up to limit connections of the store's list after the
// cursor raw (a value of the discovery cursors: tokens.PageCursor's
// String, "" for the start), oldest first. last is the cursor of the
// page's last connection ("" for an empty page) and more says whether the
// list goes on after it. The cursor carries the connection's position
// (creation time and id), so a page is one read of the index and one of
// the records; a bare id, as versions before 2026-12 stored, costs
// Store.List's extra lookup of its position, once.
func (s *Scheduler) listPage(ctx context.Context, raw string, limit int) (page []*tokens.Connection, last string, more bool, err error) {
	cur, perr := tokens.ParsePageCursor(raw)
	if perr != nil {
		page, next, err := s.store.List(ctx, raw, limit)
		if err != nil {
			return nil, "", false, err
		}
		if len(page) > 0 {
			c := page[len(page)-1]
			last = tokens.PageCursor{CreatedMs: c.CreatedAt.UnixMilli(), ID: c.ID}.String()
		}
		return page, last, next != "", nil
	}
	ids, next, err := s.store.PageIDs(ctx, "", cur, limit)
	if err != nil {
		return nil, "", false, err
	}
	conns, errs, err := s.store.GetMany(ctx, ids) // no round trip when ids is empty
	if err != nil {
		return nil, "", false, err
	}
	page = make([]*tokens.Connection, 0, len(ids))
	for i, c := range conns {
		switch {
		case errors.Is(errs[i], tokens.ErrNotFound):
			// Deleted since the index was read; nothing to schedule.
		case errs[i] != nil:
			return nil, "", false, errs[i]
		default:
			page = append(page, c)
		}
	}
	switch {
	case next.ID != "":
		last = next.String()
	case len(page) > 0:
		// The index position of the last connection read: its score is
		// the record's creation time.
		c := page[len(page)-1]
		last = tokens.PageCursor{CreatedMs: c.CreatedAt.UnixMilli(), ID: c.ID}.String()
	}
	return page, last, next.ID != "", nil
}

// addSweeps adds entries to the sweep schedule, each to its connection's
// shard, unless the connection is already scheduled (ZADD NX): one ZADD per
// shard touched, all in one pipeline. It returns how many were added.
func (s *Scheduler) addSweeps(ctx context.Context, members []redis.Z) (int, error) {
	var byShard [keyspace.Shards][]redis.Z
	for _, z := range members {
		id, _ := z.Member.(string)
		i := keyspace.ShardOf(id)
		byShard[i] = append(byShard[i], z)
	}
	pipe := s.rdb.Pipeline()
	var cmds []*redis.IntCmd
	for i, zs := range byShard {
		if len(zs) > 0 {
			cmds = append(cmds, pipe.ZAddNX(ctx, s.sweepKeys[i], zs...))
		}
	}
	_, err := pipe.Exec(ctx)
	added := 0
	for _, c := range cmds {
		added += int(c.Val())
	}
	return added, err
}

// spread appends schedule entries for page with stratified random first
// slots within each connection's interval.
func (s *Scheduler) spread(dst []redis.Z, page []*tokens.Connection, now time.Time) []redis.Z {
	n := float64(len(page))
	for i, c := range page {
		frac := (float64(i) + rand.Float64()) / n
		off := time.Duration(frac * float64(s.interval(c)))
		dst = append(dst, redis.Z{Score: float64(now.Add(off).UnixMilli()), Member: c.ID})
	}
	return dst
}

// duplicateOK treats asynq's "already enqueued" errors as success.
func duplicateOK(err error) error {
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	return err
}
