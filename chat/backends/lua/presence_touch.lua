-- Extends the life of some of one entity's entries.
--
-- KEYS[1]  expiries zset:  conn -> expiry (epoch ms)
-- KEYS[2]  due zset:       entity -> earliest expiry among its entries
-- ARGV[1]  now (epoch ms, the caller's clock)
-- ARGV[2]  ttl (ms)
-- ARGV[3]  entity (member name in the due zset)
-- ARGV[4..] conns
--
-- Only live entries (expiry > now) are extended: a dead one stays dead until a sweep drops
-- it and reports the change, so a status never comes back without being reported.
-- Returns the number of entries extended.

local expiries, due = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local expiry = now + tonumber(ARGV[2])
local extended = 0
for i = 4, #ARGV do
  local current = tonumber(redis.call('ZSCORE', expiries, ARGV[i]) or '')
  if current ~= nil and current > now and current < expiry then
    redis.call('ZADD', expiries, expiry, ARGV[i])
    extended = extended + 1
  end
end
if extended > 0 then
  local first = redis.call('ZRANGE', expiries, 0, 0, 'WITHSCORES')
  redis.call('ZADD', due, first[2], ARGV[3])
end
return extended
