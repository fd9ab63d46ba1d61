--[[ instance-health.lua — replaces an instance's health (keys: see instance-heartbeat.lua).
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, group, id, health JSON.
  Atomically: sets the health only of an instance that is registered, so a transition decided just as the
  instance deregistered cannot leave a stray health field behind.
  Returns: 1, or 0 when the instance is unknown. ]]
local h, id = k('ins', ARGV[2]), ARGV[3]
if redis.call('HEXISTS', h, 'r:' .. id) == 0 then return 0 end
redis.call('HSET', h, 'h:' .. id, ARGV[4])
return 1
