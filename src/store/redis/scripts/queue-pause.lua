--[[ queue-pause.lua — pauses or resumes a queue.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, name, paused ('1'/'0'), at.
  Atomically: sets the flag of an existing queue; publishes `at` on resume.
  Returns: 1, or 0 when the queue is unknown. ]]
local name, at = ARGV[2], ARGV[4]
if redis.call('EXISTS', k('q', name)) == 0 then return 0 end
redis.call('HSET', k('q', name), 'paused', ARGV[3], 'updated', at)
if ARGV[3] == '0' then notify(tonumber(at)) end
return 1
