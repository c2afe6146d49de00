package metrics

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// The values of the component label of notionsync_redis_round_trips_total
// and notionsync_redis_commands_total: which part of notionsync a Redis
// call served, read from the first key it names (see RedisHook).
const (
	// RedisComponentQueue: asynq's own keys ("asynq:...").
	RedisComponentQueue = "queue"
	// RedisComponentTokens: the token store, refresh locks, the expiry
	// and status indexes and the token-events channel (prefix + "conn:",
	// "lock:", "due", "connections", "status:", "token-events").
	RedisComponentTokens = "tokens"
	// RedisComponentRateLimit: the Notion rate limiter (prefix + "notion:").
	RedisComponentRateLimit = "ratelimit"
	// RedisComponentSyncState: sync cursors, checkpoints, busy markers and
	// drain state (prefix + "sync:", "ckpt:", "busy:", "drain:").
	RedisComponentSyncState = "syncstate"
	// RedisComponentSchedule: the scheduler's lease and sweep schedule
	// (prefix + "scheduler:", "sweeps").
	RedisComponentSchedule = "schedule"
	// RedisComponentControl: every other key under the prefix (OAuth state,
	// webhook dedup and verification, workspace index).
	RedisComponentControl = "control"
	// RedisComponentOther: calls without a key (PING, INFO, CLIENT,
	// connection set-up) and keys outside both namespaces.
	RedisComponentOther = "other"
)

// RedisComponents returns every component label value, in a fixed order.
func RedisComponents() []string {
	out := make([]string, numRedisComponents)
	for c := range numRedisComponents {
		out[c] = c.String()
	}
	return out
}

// redisComponent indexes RedisHook's prebound counters.
type redisComponent uint8

const (
	compOther redisComponent = iota
	compQueue
	compTokens
	compRateLimit
	compSyncState
	compSchedule
	compControl
	numRedisComponents
)

func (c redisComponent) String() string {
	switch c {
	case compQueue:
		return RedisComponentQueue
	case compTokens:
		return RedisComponentTokens
	case compRateLimit:
		return RedisComponentRateLimit
	case compSyncState:
		return RedisComponentSyncState
	case compSchedule:
		return RedisComponentSchedule
	case compControl:
		return RedisComponentControl
	}
	return RedisComponentOther
}

// asynqKeyPrefix starts every key asynq writes (asynq does not take a
// prefix of its own).
const asynqKeyPrefix = "asynq:"

// RedisHook is a go-redis hook (redis.Hook) that counts, per component,
// the round trips a client makes to Redis
// (notionsync_redis_round_trips_total{component}) and the commands they
// carry (notionsync_redis_commands_total{component}). Install it once on
// the process's shared client, which every component uses (asynq through
// NewServerFromRedisClient and NewClientFromRedisClient, redsync through
// its go-redis pool):
//
//	h, err := metrics.NewRedisHook(reg, cfg.Redis.KeyPrefix)
//	...
//	rdb.AddHook(h)
//
// # What is counted
//
// A round trip is one call of the hook chain as go-redis issues it: one per
// command sent on its own (Process), one per pipeline or MULTI/EXEC
// transaction (ProcessPipeline), whatever the number of commands in it. A
// pipeline's commands all count, MULTI and EXEC included (what Redis
// executes). go-redis' own retries of a failed command are not counted
// again. Script.Run is EVALSHA, and EVAL after a NOSCRIPT reply: two round
// trips the first time a server sees the script. Connection set-up (HELLO,
// CLIENT SETINFO, SELECT) runs through the hooks and counts as "other".
// Pub/Sub (SUBSCRIBE and the messages it receives) bypasses the hooks and
// is not counted; PUBLISH is. On a cluster client, a pipeline that spans
// several nodes counts once.
//
// # Classification
//
// A call belongs to the component of the first key of its first command
// that names one (a pipeline's MULTI, for example, names none): keys under
// "asynq:" are the queue's; keys under the configured key prefix are
// split by what follows it, after the hash tag of the cluster key scheme
// if there is one ("<prefix>{<tag>}:<name>" counts as "<prefix><name>"; see
// internal/keyspace and the RedisComponent constants); anything
// else, and calls that name no key, are "other". The key is args[1] of an
// ordinary command (the channel of PUBLISH), the first of the numkeys keys
// of EVAL, EVALSHA, their _RO forms and FCALL, args[2] of MEMORY and
// OBJECT, and the first stream of XREAD and XREADGROUP. Only fixed label values are ever used: no key or
// key fragment becomes a label.
//
// # Concurrency and cost
//
// The hook is safe for concurrent use. Each call classifies from the
// command's existing argument slice and adds to counters bound at
// construction: no allocation, no lock, no Redis call. It never changes or
// fails a command.
type RedisHook struct {
	prefix   string
	trips    [numRedisComponents]prometheus.Counter
	commands [numRedisComponents]prometheus.Counter
}

var _ redis.Hook = (*RedisHook)(nil)

// NewRedisHook creates the Redis round-trip metrics, registers them with
// reg and returns the hook that feeds them. keyPrefix is the prefix of
// notionsync's own keys (config.Redis.KeyPrefix, "notionsync:" by
// default); with an empty prefix every key outside asynq's that matches no
// component counts as "control". It fails if reg is nil or the metrics are
// already registered there; nothing stays registered then.
func NewRedisHook(reg prometheus.Registerer, keyPrefix string) (*RedisHook, error) {
	if reg == nil {
		return nil, errors.New("metrics: a prometheus.Registerer is required")
	}
	b := builder{}
	trips := b.counterVec("redis_round_trips_total",
		"Round trips to Redis (one per command sent alone, one per pipeline or transaction), by the component of the first key.", "component")
	commands := b.counterVec("redis_commands_total",
		"Commands sent to Redis (a pipeline's commands each count), by the component of the round trip's first key.", "component")
	h := &RedisHook{prefix: keyPrefix}
	for c := range numRedisComponents {
		h.trips[c] = trips.WithLabelValues(c.String())
		h.commands[c] = commands.WithLabelValues(c.String())
	}
	if err := registerAll(reg, b.all); err != nil {
		return nil, err
	}
	return h, nil
}

// DialHook implements redis.Hook; dials are not counted.
func (h *RedisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook: one round trip, one command.
func (h *RedisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c := compOther
		if key, ok := redisFirstKey(cmd.Name(), cmd.Args()); ok {
			c = redisKeyComponent(h.prefix, key)
		}
		h.trips[c].Inc()
		h.commands[c].Inc()
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook: one round trip, len(cmds)
// commands. go-redis passes transactions here too, wrapped in MULTI and
// EXEC.
func (h *RedisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 {
			c := compOther
			for _, cmd := range cmds {
				if key, ok := redisFirstKey(cmd.Name(), cmd.Args()); ok {
					c = redisKeyComponent(h.prefix, key)
					break
				}
			}
			h.trips[c].Inc()
			h.commands[c].Add(float64(len(cmds)))
		}
		return next(ctx, cmds)
	}
}

// redisFirstKey returns the first key a command names: name is the
// lower-cased command name (redis.Cmder.Name), args its arguments with the
// name first (redis.Cmder.Args). ok is false for commands that name no
// key.
func redisFirstKey(name string, args []any) (key string, ok bool) {
	switch name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		// name, script or function, numkeys, key...
		if len(args) < 4 || !positiveInt(args[2]) {
			return "", false
		}
		key, ok = args[3].(string)
		return key, ok
	case "xread", "xreadgroup":
		// ... STREAMS key... id...
		for i := 1; i+1 < len(args); i++ {
			if s, isStr := args[i].(string); isStr && strings.EqualFold(s, "streams") {
				key, ok = args[i+1].(string)
				return key, ok
			}
		}
		return "", false
	case "memory", "object":
		// name, subcommand, key (MEMORY USAGE, OBJECT ENCODING ...)
		if len(args) < 3 {
			return "", false
		}
		key, ok = args[2].(string)
		return key, ok
	case "ping", "echo", "time", "info", "hello", "auth", "select", "client", "config", "command",
		"multi", "exec", "discard", "unwatch", "script", "function", "cluster", "dbsize", "scan",
		"wait", "role", "quit", "readonly", "readwrite", "slowlog", "latency", "debug", "acl",
		"module", "pubsub", "flushdb", "flushall", "swapdb", "lastsave":
		// No key in args[1] (a subcommand or an option, if anything).
		return "", false
	}
	if len(args) < 2 {
		return "", false
	}
	key, ok = args[1].(string)
	return key, ok
}

// positiveInt reports whether v, an EVAL numkeys argument, is above zero.
// go-redis sends an int; a command built with Do may carry a string.
func positiveInt(v any) bool {
	switch n := v.(type) {
	case int:
		return n > 0
	case int64:
		return n > 0
	case string:
		i, err := strconv.Atoi(n)
		return err == nil && i > 0
	}
	return false
}

// redisKeyComponent is the component a key belongs to (see RedisHook).
func redisKeyComponent(prefix, key string) redisComponent {
	if strings.HasPrefix(key, asynqKeyPrefix) {
		return compQueue
	}
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return compOther
	}
	// A key of the cluster scheme (internal/keyspace) carries a hash tag
	// after the prefix, "{s7.113}:conn:<id>" or "{oauth}:oauth:states":
	// what follows the tag is the key's name as before.
	if strings.HasPrefix(rest, "{") {
		if i := strings.Index(rest, "}:"); i > 1 {
			rest = rest[i+2:]
		}
	}
	switch {
	case hasAnyPrefix(rest, "conn:", "lock:", "due", "connections", "token-events", "status:"):
		return compTokens
	case strings.HasPrefix(rest, "notion:"):
		return compRateLimit
	case hasAnyPrefix(rest, "sync:", "ckpt:", "busy:", "drain:"):
		return compSyncState
	case hasAnyPrefix(rest, "scheduler:", "sweeps"):
		return compSchedule
	}
	return compControl
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
