--[[ instance-group-delete.lua — deletes an instance group and its instances (keys: see instance-heartbeat.lua).
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, name.
  Atomically: removes the group's settings, its instances and its name from the index.
  Returns: 1, or 0 when the group is unknown. ]]
local name = ARGV[2]
local existed = redis.call('DEL', k('ig', name))
redis.call('DEL', k('ins', name))
redis.call('SREM', k('igroups'), name)
return existed
