-- Returns a cursor at the end of one user's inbox stream.
--
-- KEYS[1]  the user's stream
-- ARGV[1]  retention (ms); 0 = none
--
-- A missing stream is created empty (a placeholder added and removed at once, its id
-- recorded as the low-water mark, see inbox_append.lua) so the returned cursor is a real
-- position: if the stream later expires, or expires and is created again, the cursor reads
-- as unknown instead of silently skipping what was appended and lost in between.

local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  local id = redis.call('XADD', key, 'MAXLEN', '0', '*', 'd', '')
  redis.call('XSETID', key, id, 'MAXDELETEDID', id)
  local retention = tonumber(ARGV[1])
  if retention > 0 then
    redis.call('PEXPIRE', key, retention)
  end
  return id
end
local info = redis.call('XINFO', 'STREAM', key)
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then
    return info[i + 1]
  end
end
return redis.error_reply('stream without last-generated-id')
