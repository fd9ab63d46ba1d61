--[[ purge.lua — forgets old history.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, logsBefore, deadLettersBefore, dedupBefore, batch.
  Atomically, looking at most at `batch` entries of each kind (the caller repeats while `more`, so Redis
  is never blocked for long; a message still goes whole, with its events): DLQ entries made before
  deadLettersBefore are removed; finished messages that finished before logsBefore and have no DLQ entry
  are removed with all their events and schedule-run entries (one still in the DLQ is parked at +inf in
  P:fin until its entry goes); dedup keys whose window ended, and work-key claims (P:wk) that expired,
  before dedupBefore are forgotten. Unfinished messages keep everything.
  Returns: [messages removed, events removed, DLQ entries removed, more '1'/'0']. ]]
local logsBefore, dlBefore, dedupBefore, batch = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local deadLetters, messages, events = 0, 0, 0
for _, dlqId in ipairs(redis.call('ZRANGEBYSCORE', k('dlqt'), '-inf', '(' .. dlBefore, 'LIMIT', 0, batch)) do
  remove_dead_letter(dlqId)
  deadLetters = deadLetters + 1
end
local scanned = 0
-- Finished messages still in the DLQ are skipped, so the scan goes on past them until `batch` are looked at.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', k('fin'), '-inf', '(' .. logsBefore, 'LIMIT', 0, batch)) do
  scanned = scanned + 1
  local f = redis.call('HMGET', k('m', id), 'dl', 'seq', 'sched')
  if (tonumber(f[1]) or 0) > 0 then
    -- Kept for its DLQ entry: parked at +inf, and moved back by the entry's removal.
    redis.call('ZADD', k('fin'), '+inf', id)
  else
    for _, n in ipairs(redis.call('LRANGE', k('me', id), 0, -1)) do
      redis.call('DEL', k('ev', n))
      redis.call('ZREM', k('events'), n)
      events = events + 1
    end
    redis.call('DEL', k('me', id))
    if f[3] and f[3] ~= '' then redis.call('ZREM', k('sr', f[3]), mem(f[2], id)) end
    redis.call('DEL', k('m', id))
    redis.call('ZREM', k('fin'), id)
    messages = messages + 1
  end
end
local keys = redis.call('ZRANGEBYSCORE', k('dedupx'), '-inf', '(' .. dedupBefore, 'LIMIT', 0, batch)
for _, key in ipairs(keys) do
  redis.call('HDEL', k('dedup'), key)
  redis.call('ZREM', k('dedupx'), key)
end
local workKeys = redis.call('ZRANGEBYSCORE', k('wk'), '-inf', '(' .. dedupBefore, 'LIMIT', 0, batch)
if #workKeys > 0 then redis.call('ZREM', k('wk'), unpack(workKeys)) end
local more = deadLetters == batch or scanned == batch or #keys == batch or #workKeys == batch
return { messages, events, deadLetters, more and '1' or '0' }
