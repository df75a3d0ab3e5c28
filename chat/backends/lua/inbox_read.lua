-- Reads one user's inbox stream from a cursor (read only).
--
-- KEYS[1]  the user's stream
-- ARGV[1]  cursor (a stream id; the range starts AT it, the caller drops it)
-- ARGV[2]  max entries to return
--
-- Returns nil when the stream does not exist, else {last-generated-id, low-water mark
-- (max-deleted-entry-id), entries}, read together so a trim cannot fall in between.

local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  return nil
end
local last, mark = nil, nil
local info = redis.call('XINFO', 'STREAM', key)
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then
    last = info[i + 1]
  elseif info[i] == 'max-deleted-entry-id' then
    mark = info[i + 1]
  end
end
return {last, mark, redis.call('XRANGE', key, ARGV[1], '+', 'COUNT', ARGV[2])}
