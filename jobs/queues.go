package jobs

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/hibiken/asynq"

	"github.com/notionsync/notionsync/internal/keyspace"
)

// Queues that spread over a Redis Cluster.
//
// asynq keeps each queue in one hash slot ("asynq:{sync}:pending", ...), so
// on a cluster one master would carry all of a queue's traffic. With n
// parts (NOTIONSYNC_QUEUE_SHARDS), every base queue (tokens, sync, backfill)
// becomes n queues named by keyspace.SpreadName, whose slots lie in n equal
// slot ranges: on a cluster of n masters made by redis-cli each part sits
// on its own master. A connection's tasks always go to the same part, so
// its deterministic task ids stay unique in one queue (asynq refuses a
// duplicate id only within a queue). A worker serves every part with its
// base's weight (ServedQueues), so tokens > sync > backfill still holds.
//
// The part is the connection's shard scaled to n (shard*n/Shards), not
// shard mod n: shard i's keys sit in slot range i of keyspace.Shards, so
// this puts a connection's tasks on the master that holds its keys. A
// master's failure then stalls the same connections' keys and tasks (a
// third of them with 3 masters) instead of a third for each, and the
// balance is the same (22, 21 and 21 shards of 64 for 3 parts).

// QueueFor returns the queue that a task of base queue for connID goes to
// when queues are spread over n parts: base itself when n <= 1 (a single
// Redis, today's names), else part keyspace.ShardOf(connID)*n/Shards. A
// task that names no connection (connID "") is placed by its task id
// instead: pass the id as connID.
func QueueFor(base, connID string, n int) string {
	if n <= 1 {
		return base
	}
	return keyspace.SpreadName(base, keyspace.ShardOf(connID)*n/keyspace.Shards, n)
}

// ServedQueues expands a worker's base queue weights (NOTIONSYNC_WORKER_QUEUES)
// into the asynq queues it serves with n parts: the n parts of each base,
// each with the base's weight, so the ratio between bases is unchanged.
// existing names the queues that already exist in Redis
// (asynq.Inspector.Queues): a base queue itself (tasks queued before the
// queues were spread) or a part under another number of parts (the number
// changed) found there is served too, with its base's weight, so its tasks
// are not stranded. A base queue that does not exist is not served when
// n > 1: an idle worker polls every queue it serves, and the three base
// queues all hash to the same master (slots 11935, 11216 and 13666), which
// would load it more than the others. With n <= 1 and no leftovers it
// returns weights as given.
func ServedQueues(weights map[string]int, n int, existing []string) map[string]int {
	out := make(map[string]int, len(weights)*(n+1))
	for base, w := range weights {
		if n <= 1 || slices.Contains(existing, base) {
			out[base] = w
		}
		for j := 0; n > 1 && j < n; j++ {
			out[keyspace.SpreadName(base, j, n)] = w
		}
	}
	for _, q := range existing {
		if _, served := out[q]; served {
			continue
		}
		if base, ok := spreadBase(q); ok {
			if w, ok := weights[base]; ok {
				out[q] = w
			}
		}
	}
	return out
}

// spreadBase returns the base of a queue named like a part made by
// keyspace.SpreadName: base.<j> or base.<j>.<k>, digits only.
func spreadBase(q string) (string, bool) {
	parts := strings.Split(q, ".")
	digits := 0
	for i := len(parts) - 1; i > 0 && digits < 2; i-- {
		if !allDigits(parts[i]) {
			break
		}
		digits++
	}
	if digits == 0 {
		return "", false
	}
	return strings.Join(parts[:len(parts)-digits], "."), true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// SpreadQueues returns an Enqueuer that sends every task to its part of the
// queue it names (QueueFor with n parts): the connection is the payload's
// conn_id (every payload of this package with one connection has it), or
// else the task id. With n <= 1 it returns e unchanged. Every Enqueuer
// given to this package (Config.Enqueuer, ReaperConfig.Enqueuer, NewClient)
// should be wrapped with the same n, or a connection's tasks would land in
// two queues and escape each other's de-duplication.
func SpreadQueues(e Enqueuer, n int) Enqueuer {
	if n <= 1 {
		return e
	}
	return spreadEnqueuer{e: e, n: n}
}

type spreadEnqueuer struct {
	e Enqueuer
	n int
}

func (s spreadEnqueuer) EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	var p struct {
		ConnID string `json:"conn_id"`
	}
	// A payload that is not a JSON object (or has no conn_id) is placed by
	// its task id: still one queue per id.
	_ = json.Unmarshal(task.Payload(), &p)
	base, id, qi := "default", "", -1
	for i, o := range opts {
		switch o.Type() {
		case asynq.QueueOpt:
			base, qi = o.Value().(string), i
		case asynq.TaskIDOpt:
			id = o.Value().(string)
		}
	}
	key := p.ConnID
	if key == "" {
		key = id
	}
	if key == "" {
		// A random id: no de-duplication to keep, and no way to choose.
		return s.e.EnqueueContext(ctx, task, opts...)
	}
	q := asynq.Queue(QueueFor(base, key, s.n))
	out := append([]asynq.Option(nil), opts...)
	if qi >= 0 {
		out[qi] = q
	} else {
		out = append(out, q)
	}
	return s.e.EnqueueContext(ctx, task, out...)
}

// SpreadQueues tells RunningTasks that tasks were enqueued through
// SpreadQueues with n parts, so it looks for them in the connection's part
// of each queue (and in the base queue, for tasks queued before). It returns
// r.
func (r *StateReader) SpreadQueues(n int) *StateReader {
	r.queueShards = n
	return r
}

// taskQueues returns the queues a running sync task of conn can be in.
func (r *StateReader) taskQueues(conn string) []string {
	if r.queueShards <= 1 {
		return []string{QueueSync, QueueBackfill}
	}
	return []string{QueueFor(QueueSync, conn, r.queueShards), QueueFor(QueueBackfill, conn, r.queueShards), QueueSync, QueueBackfill}
}
