--[[ instance-group-save.lua — creates or replaces an instance group's settings (keys: see instance-heartbeat.lua).
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, name, settings JSON, at.
  Atomically: stores the settings and updated = `at`; created is set only when the group is new.
  Returns: created (the group's creation time). ]]
local name, at = ARGV[2], ARGV[4]
local g = k('ig', name)
if redis.call('EXISTS', g) == 0 then
  redis.call('HSET', g, 'created', at)
  redis.call('SADD', k('igroups'), name)
end
redis.call('HSET', g, 'settings', ARGV[3], 'updated', at)
return redis.call('HGET', g, 'created')
