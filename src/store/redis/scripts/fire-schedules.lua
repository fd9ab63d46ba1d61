--[[ fire-schedules.lua — records schedule firings and enqueues their messages.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, at, count, then per firing: scheduleId, expectedNextAt ('' for a trigger-now), nextAt ('' for
  none), error ('' for none), messageIds JSON, messageCount, messageCount × MSG_ARGS message fields (lib.lua).
  Atomically, per firing: a cron tick happens only if the schedule exists, is unpaused and its next tick is
  still expectedNextAt (so of several nodes exactly one fires it) and moves the next tick to nextAt; a
  trigger-now happens if the schedule exists and leaves the next tick. Either records lastAt, the message ids
  and the error, then stores the messages as by enqueue. Publishes the earliest due time stored.
  Returns: per firing, '-1' when it did not happen, else messageCount followed by messageCount ×
  [messageId, deduplicated, leaseId]. ]]
local at, count = ARGV[2], tonumber(ARGV[3])
local i = 4
local out, wake = {}, nil
for _ = 1, count do
  local id, expected, nextAt, err, ids = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local messages = tonumber(ARGV[i + 5])
  local first = i + 6
  i = first + messages * MSG_ARGS
  local h = k('s', id)
  local s = redis.call('HMGET', h, 'paused', 'next', 'dest')
  local fires = s[3] ~= false
  if fires and expected ~= '' then
    fires = s[1] ~= '1' and s[2] ~= '' and tonumber(s[2]) == tonumber(expected)
    if fires then
      redis.call('HSET', h, 'next', nextAt)
      if nextAt ~= '' then redis.call('ZADD', k('snext'), nextAt, id) else redis.call('ZREM', k('snext'), id) end
    end
  end
  if not fires then
    out[#out + 1] = '-1'
  else
    redis.call('HSET', h, 'last', at, 'ids', ids, 'err', err)
    out[#out + 1] = tostring(messages)
    for n = 0, messages - 1 do
      local mid, dedup, lease, due = insert_message(first + n * MSG_ARGS, at, nil)
      out[#out + 1] = mid; out[#out + 1] = dedup; out[#out + 1] = lease
      wake = earliest(wake, due)
    end
  end
end
notify(wake)
return out
