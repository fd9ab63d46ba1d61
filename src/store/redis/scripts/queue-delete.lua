--[[ queue-delete.lua — removes a queue.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, name, at.
  Atomically: the queue's settings go, and every message still waiting in it (oldest due first) gets
  CANCEL_REQUESTED + CANCELED; messages already admitted keep their slot and finish their attempts.
  Publishes `at` so other nodes re-read what is claimable.
  Returns: 1, or 0 when the queue is unknown. ]]
local name, at = ARGV[2], ARGV[3]
if redis.call('DEL', k('q', name)) == 0 then return 0 end
redis.call('SREM', k('queues'), name)
for _, member in ipairs(redis.call('ZRANGE', k('qw', name), 0, -1)) do cancel_now(idof(member), at) end
redis.call('DEL', k('qw', name))
redis.call('SREM', k('qready'), name)
notify(tonumber(at))
return 1
