-- Changes one entity's presence entries and reports its combined status.
--
-- KEYS[1]  entries hash:   conn -> "<status>:<member>"
-- KEYS[2]  expiries zset:  conn -> expiry (epoch ms)
-- KEYS[3]  meta hash:      "status" -> last combined status reported, "seen" -> last_seen (ms)
-- KEYS[4]  due zset:       entity -> earliest expiry among its entries (shared by the entities
--                           of one presence shard, whose hash tag all four keys carry)
-- ARGV[1]  operation: "set" | "remove" | "expire" | "touch"
-- ARGV[2]  now (epoch ms, the caller's clock)
-- ARGV[3]  ttl (ms)
-- ARGV[4]  entity (member name in the due zset)
-- ARGV[5]  how long (ms) to keep the meta hash of an entity with no entries; 0 keeps it
-- ARGV[6]  conn                      (set, remove)
-- ARGV[7]  status, ARGV[8] member    (set)
-- ARGV[6..] conn, status, member, conn, status, member, ...   (touch)
--
-- Entries whose expiry is <= now are dead: they are dropped first, each counting as seen at
-- its last touch (expiry - ttl); entries set "offline" (invisible) never count as seen. The combined status of the live entries is compared with
-- the stored one and stored; the reply is {changed (0|1), status, last_seen or nil}. Since
-- the compare and the store happen inside the script, each change is reported once.
--
-- "touch" is the heartbeat of connections the caller knows are alive: a live entry lives ttl
-- from now and keeps its status (only "set" changes it); a missing one (Redis restarted empty,
-- or a sweep dropped it while heartbeats were late) is created with the given status, and the
-- change that causes is reported like any other.

local entries, expiries, meta, due = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local entity = ARGV[4]
local keep_meta = tonumber(ARGV[5])

local function entry_status(value)
  return string.match(value, '^([^:]*)')
end

local seen = tonumber(redis.call('HGET', meta, 'seen') or '')
local function saw(t)
  if seen == nil or t > seen then
    seen = t
  end
end

local dead = redis.call('ZRANGEBYSCORE', expiries, '-inf', now, 'WITHSCORES')
if #dead > 0 then
  for i = 1, #dead, 2 do
    local conn = dead[i]
    local value = redis.call('HGET', entries, conn)
    if value and entry_status(value) ~= 'offline' then
      saw(tonumber(dead[i + 1]) - ttl)
    end
    redis.call('HDEL', entries, conn)
  end
  redis.call('ZREMRANGEBYSCORE', expiries, '-inf', now)
end

if op == 'set' then
  redis.call('HSET', entries, ARGV[6], ARGV[7] .. ':' .. ARGV[8])
  redis.call('ZADD', expiries, now + ttl, ARGV[6])
elseif op == 'touch' then
  local expiry = now + ttl
  for i = 6, #ARGV - 2, 3 do
    local conn = ARGV[i]
    if redis.call('HEXISTS', entries, conn) == 1 then
      local current = tonumber(redis.call('ZSCORE', expiries, conn) or '')
      if current == nil or current < expiry then
        redis.call('ZADD', expiries, expiry, conn)
      end
    else
      redis.call('HSET', entries, conn, ARGV[i + 1] .. ':' .. ARGV[i + 2])
      redis.call('ZADD', expiries, expiry, conn)
    end
  end
elseif op == 'remove' then
  local value = redis.call('HGET', entries, ARGV[6])
  if value then
    redis.call('HDEL', entries, ARGV[6])
    redis.call('ZREM', expiries, ARGV[6])
    if entry_status(value) ~= 'offline' then
      saw(now)
    end
  end
end

local values = redis.call('HVALS', entries)
local any_online, all_away = false, #values > 0
for _, value in ipairs(values) do
  local s = entry_status(value)
  if s == 'online' then
    any_online = true
  elseif s ~= 'away' then
    all_away = false
  end
end
local status = 'offline'
if any_online then
  status = 'online'
elseif all_away then
  status = 'away'
end
-- While connected the entity is seen now. A sweep only learns that entries died, so it
-- stores nothing new for the survivors: their own expiry will tell their last touch.
local reply_seen = seen
if status ~= 'offline' then
  reply_seen = now
  if op ~= 'expire' then
    seen = now
  end
end

local previous = redis.call('HGET', meta, 'status') or 'offline'
redis.call('HSET', meta, 'status', status)
if seen ~= nil then
  redis.call('HSET', meta, 'seen', string.format('%.0f', seen))
end

local first = redis.call('ZRANGE', expiries, 0, 0, 'WITHSCORES')
if #first > 0 then
  redis.call('ZADD', due, first[2], entity)
  redis.call('PERSIST', meta)
else
  redis.call('ZREM', due, entity)
  if keep_meta > 0 then
    redis.call('PEXPIRE', meta, keep_meta)
  end
end

local changed = 0
if previous ~= status then
  changed = 1
end
if reply_seen == nil then
  return {changed, status}
end
return {changed, status, reply_seen}
