--[[ schedule-save.lua — creates or wholly replaces a schedule.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, scheduleId, cron, destination, template JSON, body, nextAt ('' for none), at.
  Atomically: stores the definition, keeping createdAt and the paused state of an existing one; the next
  tick becomes nextAt unless paused; the destination and next-tick indexes follow.
  Returns: 1. ]]
local id, cron, dest, tpl, body, nextAt, at = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local h = k('s', id)
local old = redis.call('HMGET', h, 'dest', 'paused', 'created')
local paused = old[2] or '0'
if old[1] then redis.call('SREM', k('sdest', old[1]), id) else
  redis.call('HSET', h, 'created', at, 'paused', '0', 'ids', '[]', 'last', '', 'err', '')
  redis.call('ZADD', k('schedules'), at, id)
end
if paused == '1' then nextAt = '' end
redis.call('HSET', h, 'cron', cron, 'dest', dest, 'tpl', tpl, 'body', body, 'updated', at, 'next', nextAt)
redis.call('SADD', k('sdest', dest), id)
if nextAt ~= '' then redis.call('ZADD', k('snext'), nextAt, id) else redis.call('ZREM', k('snext'), id) end
return 1
