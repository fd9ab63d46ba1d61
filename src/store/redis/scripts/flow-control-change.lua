--[[ flow-control-change.lua — one management action on a flow-control key.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, key, kind ('pause'|'resume'|'pin'|'unpin'|'resetRate'), at, then for pin: parallelism, rate,
  periodMs ('' when not given); for unpin: parallelism ('1'/'0'), rate ('1'/'0').
  Atomically applies it: a pin sets the given limits, pins them and starts the rate count over; resetRate
  starts a fresh window at `at`. Publishes `at` (any of these may let waiting messages start).
  Returns: 1, or 0 when the key is unknown. ]]
local key, kind, at = ARGV[2], ARGV[3], ARGV[4]
local h = k('fck', key)
if redis.call('EXISTS', h) == 0 then return 0 end
if kind == 'pause' then redis.call('HSET', h, 'paused', '1')
elseif kind == 'resume' then redis.call('HSET', h, 'paused', '0')
elseif kind == 'resetRate' then redis.call('HSET', h, 'rc', '0', 'rps', at)
elseif kind == 'unpin' then
  if ARGV[5] == '1' then redis.call('HSET', h, 'pp', '0') end
  if ARGV[6] == '1' then redis.call('HSET', h, 'pr', '0') end
elseif kind == 'pin' then
  local par, rate, period = ARGV[5], ARGV[6], ARGV[7]
  if par ~= '' then redis.call('HSET', h, 'par', par, 'pp', '1') end
  if rate ~= '' then redis.call('HSET', h, 'rate', rate) end
  if period ~= '' then redis.call('HSET', h, 'period', period) end
  if rate ~= '' or period ~= '' then redis.call('HSET', h, 'pr', '1') end
  redis.call('HSET', h, 'rc', '0', 'rps', '0')
end
redis.call('HSET', h, 'updated', at)
notify(tonumber(at))
return 1
