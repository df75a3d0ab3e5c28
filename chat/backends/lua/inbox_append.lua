-- Appends payloads to one user's inbox stream and keeps its low-water mark.
--
-- KEYS[1]  the user's stream; each entry has one field "d" holding the payload
-- ARGV[1]  max entries (approximate trimming, MAXLEN ~)
-- ARGV[2]  retention (ms): entries older than this before the newest one are trimmed
--          (MINID ~) and the whole stream expires this long after the last append; 0 = none
-- ARGV[3..] payloads, in order
--
-- The stream's max-deleted-entry-id serves as the low-water mark: a cursor below it may
-- have missed entries. Redis only moves that field on XDEL (never used here), so it is set
-- here, with XSETID:
--   * when the stream is created: a placeholder entry is added and removed at once and the
--     mark set to its id, so a cursor from an earlier, expired stream reads as trimmed;
--   * when trimming removed entries: just below the first retained entry.
-- Returns the new ids, in order.

local key = KEYS[1]
local max_entries = ARGV[1]
local retention = tonumber(ARGV[2])

local function before(id)
  -- the greatest stream id smaller than id
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if seq ~= '0' then
    return ms .. '-' .. string.format('%.0f', tonumber(seq) - 1)
  end
  return string.format('%.0f', tonumber(ms) - 1) .. '-18446744073709551615'
end

local mark = nil
if redis.call('EXISTS', key) == 0 then
  mark = redis.call('XADD', key, 'MAXLEN', '0', '*', 'd', '')
end
local length = redis.call('XLEN', key)

local ids = {}
for i = 3, #ARGV do
  ids[#ids + 1] = redis.call('XADD', key, 'MAXLEN', '~', max_entries, '*', 'd', ARGV[i])
end
local last = ids[#ids]
if last == nil then
  last = mark
end

if retention > 0 and last ~= nil then
  local newest = tonumber(string.match(last, '^(%d+)'))
  if newest > retention then
    redis.call('XTRIM', key, 'MINID', '~', string.format('%.0f', newest - retention))
  end
  redis.call('PEXPIRE', key, retention)
end

if redis.call('XLEN', key) < length + #ids then
  local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)
  if #first > 0 then
    mark = before(first[1][1])
  else
    mark = last
  end
end
if mark ~= nil then
  redis.call('XSETID', key, last, 'MAXDELETEDID', mark)
end
return ids
