package tokens

import "github.com/redis/go-redis/v9"

// The scripts below are the only code that writes a connection record. Each
// runs atomically in Redis, so a check ("is the version still the one I
// started from?") and the write it guards can never be separated by another
// writer. go-redis' Script runs them with EVALSHA and falls back to EVAL.
//
// Common KEYS for every script:
//
//	KEYS[1] connection hash     KEYS[2] refresh-due index (zset)
//	KEYS[3] event list          KEYS[4] all-connections index (zset)
//	KEYS[5..8] status indexes (zsets, by creation time): active, paused,
//	           needs_reauth, disconnected (statusindex.go)
//
// Every script that changes the record appends an event (LPUSH + LTRIM, so
// the timeline is capped) and PUBLISHes "<id> <version> <kind>" on the
// notification channel: waiters in every process wake and re-read, and
// in-process caches drop the entry.
//
// KEYS[2] and KEYS[4..8] are the shards of the indexes that belong to the
// connection's shard (Store.scriptKeys), so on a Redis Cluster every
// script's keys hash to one slot. The notification channel is not a key
// (a cluster forwards PUBLISH to every node).

const luaEvent = `
local function event(kind, v, detail)
  local e = cjson.encode({t = tonumber(ARGV[2]), k = kind, v = v, d = detail})
  redis.call('LPUSH', KEYS[3], e)
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
  redis.call('PUBLISH', ARGV[4], ARGV[5] .. ' ' .. v .. ' ' .. kind)
end
`

// Shared ARGV prefix for every script:
//
//	ARGV[1] expected version ("" = any)   ARGV[2] now (unix ms)
//	ARGV[3] event cap                     ARGV[4] notification channel
//	ARGV[5] connection id
const luaFence = `
local cur = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] ~= '' then
  if tonumber(cur or '0') ~= tonumber(ARGV[1]) then return {0, tonumber(cur or '0')} end
elseif not cur then
  return {-2, 0}
end
cur = tonumber(cur or '0')
`

// commitScript is the fenced write of a token pair (invariant 3): the pair,
// expiry, refresh-due time, version+1 and the index entry are written
// together, only if the stored version equals the expected one.
//
//	ARGV[6] mode: "refresh" (keep status unless needs_reauth) or
//	        "connect" (create / re-authorize: status active, reason cleared)
//	ARGV[7] sealed access token   ARGV[8] sealed refresh token ("" = keep the stored one)
//	ARGV[9] access expiry ms      ARGV[10] refresh due ms
//	ARGV[11] event kind           ARGV[12] event detail
//	ARGV[13] metadata JSON ("" = keep)
//	ARGV[14] workspace id named by the token response ("" = none): a
//	         refresh stores it as meta.workspace_id when that is missing,
//	         in this same fenced write (never a second, racing write)
//	ARGV[15] new link nonce (mode "connect" stores it: links made before
//	         die)
//	ARGV[16] expected link nonce ("" = any; mode "connect")
//
// Returns {1, newVersion}, {0, storedVersion} on a fence mismatch,
// {-1, storedVersion} when a refresh targets a missing or disconnected
// record, or {-3, storedVersion} when the link nonce differs.
var commitScript = redis.NewScript(luaEvent + luaStatusIndex + luaFence + `
local status = redis.call('HGET', KEYS[1], 'status')
local mode = ARGV[6]
if mode == 'refresh' and (not status or status == 'disconnected') then return {-1, cur} end
if mode == 'connect' and ARGV[16] ~= '' and redis.call('HGET', KEYS[1], 'nonce') ~= ARGV[16] then
  return {-3, cur}
end
if mode == 'refresh' and ARGV[14] ~= '' then
  local raw = redis.call('HGET', KEYS[1], 'meta')
  local meta = {}
  if raw and raw ~= '' then
    local ok, m = pcall(cjson.decode, raw)
    if ok and type(m) == 'table' then meta = m else meta = nil end
  end
  if meta and (meta.workspace_id == nil or meta.workspace_id == '') then
    meta.workspace_id = ARGV[14]
    redis.call('HSET', KEYS[1], 'meta', cjson.encode(meta))
  end
end
local v = cur + 1
redis.call('HSET', KEYS[1], 'v', v, 'at', ARGV[7], 'exp', ARGV[9], 'due', ARGV[10],
  'updated', ARGV[2], 'refreshed', ARGV[2], 'fails', 0, 'retry', 0)
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'rt', ARGV[8]) end
redis.call('HDEL', KEYS[1], 'inflight')
if mode == 'connect' then
  redis.call('HSET', KEYS[1], 'status', 'active', 'reason', '', 'detail', '')
  if not redis.call('HGET', KEYS[1], 'created') then redis.call('HSET', KEYS[1], 'created', ARGV[2]) end
  if ARGV[13] ~= '' then redis.call('HSET', KEYS[1], 'meta', ARGV[13]) end
  redis.call('HSET', KEYS[1], 'nonce', ARGV[15])
elseif status == 'needs_reauth' then
  -- A valid rotation that lands after a loser judged the grant dead heals it.
  redis.call('HSET', KEYS[1], 'status', 'active', 'reason', '', 'detail', '')
end
-- Paused connections stay in the index: refreshing keeps their grant alive.
redis.call('ZADD', KEYS[2], tonumber(ARGV[10]), ARGV[5])
redis.call('ZADD', KEYS[4], 'NX', tonumber(redis.call('HGET', KEYS[1], 'created')), ARGV[5])
index_status(redis.call('HGET', KEYS[1], 'status'))
event(ARGV[11], v, ARGV[12])
return {1, v}
`)

// nonceScript gives an existing record a link nonce if it has none, and
// returns the stored nonce (nil when the record does not exist). It does not
// touch the version, the pair or the timeline.
//
//	KEYS[1] connection hash   ARGV[1] candidate nonce
var nonceScript = redis.NewScript(`
if not redis.call('HGET', KEYS[1], 'v') then return false end
redis.call('HSETNX', KEYS[1], 'nonce', ARGV[1])
return redis.call('HGET', KEYS[1], 'nonce')
`)

// statusScript changes a connection's status.
//
//	ARGV[6] allowed current statuses, comma-separated ("" = any)
//	ARGV[7] new status   ARGV[8] reason   ARGV[9] detail
//	ARGV[10] event kind
//	ARGV[11] "1" to delete the token pair (and bump the version, so that an
//	         in-flight refresh can never write it back)
//	ARGV[12] due index: "rem" removes the entry, "add" restores it from the
//	         record's due field, "" leaves it
//
// Returns {1, version}, {0, version} on a fence mismatch, {-1, version} when
// the current status is not allowed, {-2, 0} when the record does not exist.
var statusScript = redis.NewScript(luaEvent + luaStatusIndex + luaFence + `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {-2, 0} end
if ARGV[6] ~= '' then
  local ok = false
  for s in string.gmatch(ARGV[6], '[^,]+') do if s == status then ok = true end end
  if not ok then return {-1, cur} end
end
local v = cur
if ARGV[11] == '1' then
  v = cur + 1
  redis.call('HDEL', KEYS[1], 'at', 'rt', 'inflight')
  redis.call('HSET', KEYS[1], 'v', v)
end
redis.call('HSET', KEYS[1], 'status', ARGV[7], 'reason', ARGV[8], 'detail', ARGV[9], 'updated', ARGV[2])
if ARGV[12] == 'rem' then
  redis.call('ZREM', KEYS[2], ARGV[5])
elseif ARGV[12] == 'add' then
  local due = redis.call('HGET', KEYS[1], 'due')
  if due then redis.call('ZADD', KEYS[2], tonumber(due), ARGV[5]) end
end
index_status(ARGV[7])
event(ARGV[10], v, ARGV[9])
return {1, v}
`)

// beginScript records that a refresh from the expected version is about to
// spend the refresh token (the in-flight marker). A later refresher that gets
// invalid_grant while a marker for the same version is still there knows an
// earlier attempt may have rotated the token and lost the response (a process
// killed mid-refresh): it reports lost_rotation_response, not revoked.
//
//	ARGV[6] marker text
//
// Returns {1, previousMarker or ""} or {0, version} on a fence mismatch.
var beginScript = redis.NewScript(luaEvent + luaFence + `
local prev = redis.call('HGET', KEYS[1], 'inflight') or ''
redis.call('HSET', KEYS[1], 'inflight', ARGV[6])
return {1, prev}
`)

// failScript records a failed refresh that may succeed later: it counts the
// consecutive failure, sets the backoff deadline and moves the due-index
// entry to it (so the scheduler does not pick the connection again before
// then: no refresh storms).
//
//	ARGV[6] base backoff ms   ARGV[7] max backoff ms   ARGV[8] jitter factor [0,1)
//	ARGV[9] minimum delay ms (the provider's Retry-After)
//	ARGV[10] "1" to clear the in-flight marker (the provider certainly did not rotate)
//	ARGV[11] event kind   ARGV[12] event detail
//
// Returns {1, retryAtMs} or {0, version} on a fence mismatch.
var failScript = redis.NewScript(luaEvent + luaFence + `
local fails = tonumber(redis.call('HGET', KEYS[1], 'fails') or '0') + 1
local delay = tonumber(ARGV[6]) * math.pow(2, math.min(fails - 1, 30))
delay = math.min(delay, tonumber(ARGV[7]))
delay = delay + delay * tonumber(ARGV[8]) / 2
delay = math.max(delay, tonumber(ARGV[9]))
local retry = tonumber(ARGV[2]) + math.floor(delay)
redis.call('HSET', KEYS[1], 'fails', fails, 'retry', retry, 'updated', ARGV[2])
if ARGV[10] == '1' then redis.call('HDEL', KEYS[1], 'inflight') end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'active' or status == 'paused' then
  redis.call('ZADD', KEYS[2], retry, ARGV[5])
end
event(ARGV[11], cur, ARGV[12])
return {1, retry}
`)

// rekeyScript rewrites the sealed pair with the current primary key,
// fenced on the version and WITHOUT moving it: a refresh in flight still
// commits (its fence compares versions only), and a commit that lands first
// makes this script write nothing (the refresh sealed with the primary key
// anyway).
//
//	ARGV[6] sealed access token   ARGV[7] sealed refresh token
//
// Returns {1, version} or {0, version} on a fence mismatch.
var rekeyScript = redis.NewScript(luaFence + `
redis.call('HSET', KEYS[1], 'at', ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'rt', ARGV[7]) end
return {1, cur}
`)
