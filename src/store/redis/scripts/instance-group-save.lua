--[[ instance-group-save.lua — creates or replaces an instance group's settings (keys: see instance-heartbeat.lua).
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, name, settings JSON, at.
  Atomically: stores the settings; created is set only when the group is new. updated becomes `at`, or
  1 ms past the last write if that is later (clocks of several nodes disagree), so every write moves it
  forward and instance-group-replace.lua's compare-and-set sees it.
  Returns: { created, updated }. ]]
local name, at = ARGV[2], tonumber(ARGV[4])
local g = k('ig', name)
local updated = at
if redis.call('EXISTS', g) == 1 then
  local last = num(redis.call('HGET', g, 'updated'))
  if last and last + 1 > updated then updated = last + 1 end
else
  redis.call('HSET', g, 'created', string.format('%d', at))
  redis.call('SADD', k('igroups'), name)
end
redis.call('HSET', g, 'settings', ARGV[3], 'updated', string.format('%d', updated))
return redis.call('HMGET', g, 'created', 'updated')
