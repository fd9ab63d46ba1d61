--[[ next-due.lua — the earliest time after `now` at which claim-due may find work it cannot find now.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, now.
  Reads (one consistent snapshot): the first free pending message due after now, the first lease ending
  after now, per unpaused queue its first waiting message due after now, per unpaused flow-control key its
  first pending message due after now and, when its rate window is full and it has pending messages, the
  window's end. Work held only by a full queue or key is not reported (the settle that frees it publishes).
  Returns: that time as a string, or '' when there is none. ]]
local now = tonumber(ARGV[2])
local best = nil
local function first_after(set)
  local row = redis.call('ZRANGEBYSCORE', set, '(' .. ARGV[2], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #row > 0 then best = earliest(best, tonumber(row[2])) end
end
first_after(k('free'))
first_after(k('leases'))
for _, name in ipairs(redis.call('SMEMBERS', k('qready'))) do
  if redis.call('HGET', k('q', name), 'paused') ~= '1' then first_after(k('qw', name)) end
end
for _, key in ipairs(redis.call('SMEMBERS', k('fcready'))) do
  local c = redis.call('HMGET', k('fck', key), 'rate', 'period', 'paused', 'rc', 'rps')
  if c[3] ~= '1' then
    first_after(k('fcp', key))
    if num(c[1]) and tonumber(c[4]) >= tonumber(c[1]) then
      local reopens = tonumber(c[5]) + tonumber(c[2])
      if reopens > now and redis.call('ZCARD', k('fcp', key)) > 0 then best = earliest(best, reopens) end
    end
  end
end
if best == nil then return '' end
return string.format('%d', best)
