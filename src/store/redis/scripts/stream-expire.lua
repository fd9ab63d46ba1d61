--[[ stream-expire.lua — task-stream retention: fails idle open streams, removes old closed ones.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua for the stream keys).
  ARGV: prefix, idleBefore, closedBefore, at, idle event type, idle event data, idle event json ('1'/'0'), limit.
  Atomically, removing at most `limit` closed streams and failing at most `limit` idle ones:
  each open stream whose last write (updated) is before idleBefore gets the idle event under its next seq
  (maxEvents does not apply: it must close) and is failed (ended = updated = at), with its writer and
  followers told on P:streams as by stream-append.lua; before that, each closed stream that ended
  before closedBefore is removed with its events.
  Returns: { ids failed as idle, number removed }. ]]
local idleBefore, closedBefore, at = ARGV[2], ARGV[3], ARGV[4]
local idleType, idleData, idleJson, limit = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local closedIdle, removed = {}, 0
if limit <= 0 then return { closedIdle, removed } end

-- Removal first, so a stream failed as idle below is never removed in the same call.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', k('streams', 'closedat'), '-inf', '(' .. closedBefore, 'LIMIT', 0, limit)) do
  if remove_stream(id) then removed = removed + 1
  else redis.call('ZREM', k('streams', 'closedat'), id) end
end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', k('streams', 'touched'), '-inf', '(' .. idleBefore, 'LIMIT', 0, limit)) do
  local s = load_stream(id)
  if s and s.state == 'open' then
    local seq = tonumber(s.last) + 1
    redis.call('ZADD', k('se', id), seq, encode_stream_event(seq, at, idleJson, idleType, idleData))
    if s.first == '0' then s.first = string.format('%d', seq) end
    s.last = string.format('%d', seq)
    s.updated = at
    s.state = 'failed'
    s.ended = at
    save_stream(id, s)
    index_stream(id, s, 'open')
    notify_stream(id, seq)
    closedIdle[#closedIdle + 1] = id
  else
    -- Not open any more (it should have left this index with its state): drop the stale entry.
    redis.call('ZREM', k('streams', 'touched'), id)
  end
end

return { closedIdle, removed }
