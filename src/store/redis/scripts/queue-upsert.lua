--[[ queue-upsert.lua — creates or updates a queue's settings.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, name, parallelism, paused ('1'/'0'), at.
  Atomically: sets parallelism and paused (createdAt is kept when the queue exists). Publishes `at`, since a
  wider or resumed queue may admit at once.
  Returns: 1. ]]
local name, at = ARGV[2], ARGV[5]
if redis.call('EXISTS', k('q', name)) == 0 then
  redis.call('HSET', k('q', name), 'created', at)
  redis.call('SADD', k('queues'), name)
end
redis.call('HSET', k('q', name), 'par', ARGV[3], 'paused', ARGV[4], 'updated', at)
notify(tonumber(at))
return 1
