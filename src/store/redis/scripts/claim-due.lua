--[[ claim-due.lua — admits waiting queue messages and leases due work, in one atomic step.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, now, limit, leaseId, leaseUntil, excludedCount, excluded origins…
  Atomically: 1) every unpaused queue moves its oldest due waiting messages (by due time, then acceptance)
  into its free slots (waiting → pending, holding the slot); 2) up to `limit` messages are leased, oldest
  due first, from: free pending messages due by now, active ones whose lease ended (due at their lease end),
  and per unpaused flow-control key its oldest due ones within free parallelism and the rate window left;
  messages to an excluded origin are skipped. Each gets state active, the lease, an ACTIVE event; each
  keyed attempt counts against its key's rate window (a new window opens if the last one ended).
  Because the whole step is one script, two nodes can never lease one message, overfill a queue or a key.
  Returns: claimed × [spec JSON, body, retried]. ]]
local now, limit, leaseId, untilAt = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local excluded = {}
local anyExcluded = false
for i = 7, 6 + tonumber(ARGV[6]) do excluded[ARGV[i]] = true; anyExcluded = true end

for _, name in ipairs(redis.call('SMEMBERS', k('qready'))) do
  local q = redis.call('HMGET', k('q', name), 'par', 'paused')
  if q[1] and q[2] ~= '1' then
    local free = tonumber(q[1]) - redis.call('SCARD', k('qs', name))
    if free > 0 then
      for _, member in ipairs(redis.call('ZRANGEBYSCORE', k('qw', name), '-inf', now, 'LIMIT', 0, free)) do
        local id = idof(member)
        local f = redis.call('HMGET', k('m', id), 'seq', 'due', 'fc')
        unplace_waiting(id, f[1], name)
        redis.call('HSET', k('m', id), 'state', 'pending', 'slot', name)
        redis.call('SADD', k('qs', name), id)
        place_pending(id, f[1], f[2], f[3])
      end
    end
  end
end

local candidates = {}
-- The oldest members scored ≤ now of a sorted set, skipping excluded origins, at most `want`.
local function collect(set, want, key)
  if want <= 0 then return end
  local offset, taken = 0, 0
  while taken < want do
    local chunk = anyExcluded and math.max(want * 2, 50) or want
    local rows = redis.call('ZRANGEBYSCORE', set, '-inf', now, 'WITHSCORES', 'LIMIT', offset, chunk)
    if #rows == 0 then return end
    for j = 1, #rows, 2 do
      local id = idof(rows[j])
      if not anyExcluded or not excluded[redis.call('HGET', k('m', id), 'origin')] then
        candidates[#candidates + 1] = { id = id, at = tonumber(rows[j + 1]), ord = #candidates, key = key }
        taken = taken + 1
        if taken >= want then return end
      end
    end
    if #rows < chunk * 2 then return end
    offset = offset + chunk
  end
end

collect(k('free'), limit, nil)
collect(k('leases'), limit, 'stalled')
for _, key in ipairs(redis.call('SMEMBERS', k('fcready'))) do
  local c = redis.call('HMGET', k('fck', key), 'par', 'rate', 'period', 'paused', 'rc', 'rps')
  if c[4] ~= '1' then
    local room = limit
    if num(c[1]) then room = math.min(room, tonumber(c[1]) - redis.call('SCARD', k('fca', key))) end
    if num(c[2]) then
      local over = now >= tonumber(c[6]) + tonumber(c[3])
      room = math.min(room, tonumber(c[2]) - (over and 0 or tonumber(c[5])))
    end
    collect(k('fcp', key), room, key)
  end
end
table.sort(candidates, function(a, b)
  if a.at ~= b.at then return a.at < b.at end
  return a.ord < b.ord
end)

local out, attempts = {}, {}
for n = 1, math.min(limit, #candidates) do
  local id = candidates[n].id
  local f = redis.call('HMGET', k('m', id), 'seq', 'state', 'fc', 'retried', 'spec', 'body')
  local seq, fc = f[1], f[3]
  if f[2] == 'pending' then
    unplace_pending(id, seq, fc)
    count_state('pending', -1)
    count_state('active', 1)
  end
  redis.call('HSET', k('m', id), 'state', 'active', 'lease', leaseId, 'until', untilAt)
  redis.call('ZADD', k('leases'), untilAt, mem(seq, id))
  if fc ~= '' then
    redis.call('SADD', k('fca', fc), id)
    -- A redelivery after an expired lease is an attempt too, and counts against its key's rate.
    attempts[fc] = (attempts[fc] or 0) + 1
  end
  event(id, ARGV[2], 'ACTIVE')
  out[#out + 1] = f[5]; out[#out + 1] = f[6]; out[#out + 1] = f[4]
end
for key, started in pairs(attempts) do
  local c = redis.call('HMGET', k('fck', key), 'period', 'rc', 'rps')
  if c[1] then
    if now >= tonumber(c[3]) + tonumber(c[1]) then
      redis.call('HSET', k('fck', key), 'rc', started, 'rps', ARGV[2])
    else
      redis.call('HINCRBY', k('fck', key), 'rc', started)
    end
  end
end
return out
