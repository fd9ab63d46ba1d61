--[[ instance-group-replace.lua — a compare-and-set of an instance group's settings (keys: see instance-heartbeat.lua).
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, name, settings JSON, expected updated ('' for "the group must not exist yet"), at.
  Atomically: with no expected time, creates the group (created = updated = `at`) only if it does not
  exist; otherwise replaces its settings, keeping created, only if its updated is still the expected
  time, and moves updated to `at` or 1 ms past the last write if that is later (as instance-group-save.lua).
  Returns: { created, updated }, or an empty array when another writer got there first (nothing changed). ]]
local name, expected, at = ARGV[2], ARGV[4], tonumber(ARGV[5])
local g = k('ig', name)
if expected == '' then
  if redis.call('EXISTS', g) == 1 then return {} end
  local now = string.format('%d', at)
  redis.call('HSET', g, 'settings', ARGV[3], 'created', now, 'updated', now)
  redis.call('SADD', k('igroups'), name)
  return { now, now }
end
local last = num(redis.call('HGET', g, 'updated'))
if not last or last ~= tonumber(expected) then return {} end
local updated = at
if last + 1 > updated then updated = last + 1 end
redis.call('HSET', g, 'settings', ARGV[3], 'updated', string.format('%d', updated))
return redis.call('HMGET', g, 'created', 'updated')
