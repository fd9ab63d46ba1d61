--[[ instance-deregister.lua — removes an instance from its group (keys: see instance-heartbeat.lua).
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, group, id.
  Atomically: deletes the instance's four fields; the group stays, even when left empty.
  Returns: 1, or 0 when the instance is unknown. ]]
local id = ARGV[3]
local removed = redis.call('HDEL', k('ins', ARGV[2]), 'r:' .. id, 't:' .. id, 'c:' .. id, 'h:' .. id)
if removed > 0 then return 1 end
return 0
