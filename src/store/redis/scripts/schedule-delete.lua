--[[ schedule-delete.lua — removes a schedule.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, scheduleId.
  Atomically: the schedule and its index entries go; its messages (and their run history) stay.
  Returns: 1, or 0 when the schedule is unknown. ]]
local id = ARGV[2]
local dest = redis.call('HGET', k('s', id), 'dest')
if not dest then return 0 end
redis.call('DEL', k('s', id))
redis.call('SREM', k('sdest', dest), id)
redis.call('ZREM', k('schedules'), id)
redis.call('ZREM', k('snext'), id)
return 1
