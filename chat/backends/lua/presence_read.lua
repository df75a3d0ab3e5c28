-- Reads one entity's live entries (read only).
--
-- KEYS[1]  entries hash:   conn -> "<status>:<member>"
-- KEYS[2]  expiries zset:  conn -> expiry (epoch ms)
-- KEYS[3]  meta hash:      "seen" -> last_seen (ms)
-- ARGV[1]  now (epoch ms, the caller's clock)
-- ARGV[2]  ttl (ms)
--
-- Returns {last_seen or "", value, value, ...}: the values of the live entries (expiry > now).
-- last_seen also counts dead entries not yet swept, at their last touch (expiry - ttl).

local entries, expiries, meta = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local seen = tonumber(redis.call('HGET', meta, 'seen') or '')
local out = {''}

local all = redis.call('ZRANGE', expiries, 0, -1, 'WITHSCORES')
for i = 1, #all, 2 do
  local value = redis.call('HGET', entries, all[i])
  if value then
    local expiry = tonumber(all[i + 1])
    if expiry > now then
      out[#out + 1] = value
    elseif string.match(value, '^([^:]*)') ~= 'offline' then
      local t = expiry - ttl
      if seen == nil or t > seen then
        seen = t
      end
    end
  end
end
if seen ~= nil then
  out[1] = string.format('%.0f', seen)
end
return out
