--[[ instance-heartbeat.lua — an instance's heartbeat into its group (the gateway's registry).
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  Keys: P:igroups names every instance group; P:ig:<group> hash (settings, created, updated);
  P:ins:<group> hash of the group's instances, four fields each: r:<id> registration JSON, t:<id> last
  heartbeat, c:<id> registered at, h:<id> health JSON. Added to layout version 1 without a bump: the keys
  are new and no existing key changes meaning, so an older Courier on the same prefix only ignores them.
  ARGV: prefix, group, id, registration JSON, group defaults JSON, first health JSON, at.
  Atomically: creates the group with the defaults unless it exists; stores the registration and sets the
  last heartbeat to `at`; an instance not yet known also gets registered at = `at` and the first health.
  Returns: { registered at, health JSON }. ]]
local group, id, at = ARGV[2], ARGV[3], ARGV[7]
local g = k('ig', group)
if redis.call('EXISTS', g) == 0 then
  redis.call('HSET', g, 'settings', ARGV[5], 'created', at, 'updated', at)
  redis.call('SADD', k('igroups'), group)
end
local h = k('ins', group)
local fresh = redis.call('HEXISTS', h, 'r:' .. id) == 0
redis.call('HSET', h, 'r:' .. id, ARGV[4], 't:' .. id, at)
if fresh then redis.call('HSET', h, 'c:' .. id, at, 'h:' .. id, ARGV[6]) end
return redis.call('HMGET', h, 'c:' .. id, 'h:' .. id)
