--[[ schedule-pause.lua — pauses or resumes a schedule.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, scheduleId, paused ('1'/'0'), nextAt ('' for none), at.
  Atomically: pausing clears the next tick; resuming sets it to nextAt.
  Returns: 1, or 0 when the schedule is unknown. ]]
local id, paused, nextAt, at = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local h = k('s', id)
if redis.call('EXISTS', h) == 0 then return 0 end
if paused == '1' then nextAt = '' end
redis.call('HSET', h, 'paused', paused, 'next', nextAt, 'updated', at)
if nextAt ~= '' then redis.call('ZADD', k('snext'), nextAt, id) else redis.call('ZREM', k('snext'), id) end
return 1
