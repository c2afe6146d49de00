package notionclient

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/keyspace"
)

// admitScript decides, in one round trip, whether a request of one
// connection may be sent: first the shared backoff left by a 429 (KEYS[1]),
// then the GCRA budget (KEYS[2]).
//
// The GCRA is the algorithm of github.com/go-redis/redis_rate (a port of
// rwz/redis-gcra) with two changes: it reads the backoff key in the same
// script, and a request that would have to wait at most ARGV[3] reserves its
// slot now and is told how long to wait, so waiting costs no second round
// trip and waiters are served in arrival order. Time is Redis's TIME, in
// integer microseconds since 2017-01-01 (about 2^48 today: exact in Lua's
// doubles), so workers' clocks do not matter.
//
// ARGV: [1] emission interval (µs per request), [2] burst, [3] longest
// acceptable wait (µs). Returns {status, µs}:
//
//	{0, wait}  admitted; send after wait (0: now); the budget is spent
//	{1, ttl}   connection backing off for ttl more; nothing spent
//	{2, wait}  budget spent; the next request may go in wait; nothing spent
var admitScript = redis.NewScript(`
local backoff = redis.call('PTTL', KEYS[1])
if backoff > 0 then
  return {1, backoff * 1000}
end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1483228800) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[2]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + interval
local wait = new_tat - interval * burst - now
if wait > max_wait then
  return {2, wait}
end
if wait < 0 then
  wait = 0
end
redis.call('SET', KEYS[2], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {0, wait}
`)

// backoffScript records that a connection must not send before ARGV[1]
// milliseconds from now, unless a longer backoff is already recorded.
// ARGV[2] is stored as the value (the reason, for operators). Returns the
// backoff in force, in milliseconds.
var backoffScript = redis.NewScript(`
local ttl = redis.call('PTTL', KEYS[1])
local want = tonumber(ARGV[1])
if ttl < want then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', want)
  return want
end
return ttl
`)

const (
	admitOK      = 0
	admitBackoff = 1
	admitBudget  = 2
)

// keys returns the Redis keys of one connection, under the connection's
// shard (keyspace.Conn): the admit script names both, so they must share a
// Redis Cluster slot, and the shard's tag (rather than one tag per
// connection) lets a script that also touches the connection's other keys
// name them too.
func (c *Client) keys(connID string) []string {
	base := keyspace.Conn(c.keyPrefix, connID) + "notion:" + connID + ":"
	return []string{base + "backoff", base + "gcra"}
}

// admit blocks until the request of connID may be sent, spending from
// *budget the time it waits, or returns a *RateLimitError when the wait
// would exceed *budget. It costs one Redis round trip unless the
// connection is backing off.
func (c *Client) admit(ctx context.Context, connID string, keys []string, budget *time.Duration) error {
	for {
		res, err := admitScript.Run(ctx, c.rdb, keys, c.intervalMicros, c.burst, budget.Microseconds()).Int64Slice()
		if err != nil {
			return fmt.Errorf("notionclient: rate limiter for connection %s: %w", connID, err)
		}
		if len(res) != 2 {
			return fmt.Errorf("notionclient: rate limiter for connection %s: unexpected reply %v", connID, res)
		}
		d := time.Duration(res[1]) * time.Microsecond
		switch res[0] {
		case admitOK:
			if d > 0 {
				*budget -= d
				if err := c.wait(ctx, connID, ReasonLocalBudget, d); err != nil {
					return err
				}
			}
			return nil
		case admitBackoff:
			if d <= *budget {
				*budget -= d
				if err := c.wait(ctx, connID, ReasonBackoff, d); err != nil {
					return err
				}
				continue
			}
			c.obs.OnRateLimited(connID, d, ReasonBackoff)
			return &RateLimitError{ConnID: connID, RetryAfter: d, Reason: ReasonBackoff}
		default:
			c.obs.OnRateLimited(connID, d, ReasonLocalBudget)
			return &RateLimitError{ConnID: connID, RetryAfter: d, Reason: ReasonLocalBudget}
		}
	}
}

// setBackoff makes every worker of connID hold off for d (or longer, if a
// longer backoff is already recorded) and returns the backoff in force.
func (c *Client) setBackoff(ctx context.Context, keys []string, d time.Duration, reason string) (time.Duration, error) {
	ms := max(d.Milliseconds(), 1)
	got, err := backoffScript.Run(ctx, c.rdb, keys[:1], ms, reason).Int64()
	if err != nil {
		return d, err
	}
	return time.Duration(got) * time.Millisecond, nil
}

// wait sleeps for d or until ctx is done.
func (c *Client) wait(ctx context.Context, connID, reason string, d time.Duration) error {
	c.obs.OnBackoffWait(connID, reason, d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("notionclient: connection %s: waiting %s (%s): %w", connID, d.Round(time.Millisecond), reason, ctx.Err())
	case <-t.C:
		return nil
	}
}
