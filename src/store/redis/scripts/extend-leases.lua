--[[ extend-leases.lua — pushes leases still held out to a new end.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, until, then pairs of messageId, leaseId.
  Atomically: each message still active under that lease gets lease end `until`; other pairs are ignored.
  Returns: how many leases were extended. ]]
local untilAt, extended = ARGV[2], 0
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local f = redis.call('HMGET', k('m', id), 'state', 'lease', 'seq')
  if f[1] == 'active' and f[2] == ARGV[i + 1] then
    redis.call('HSET', k('m', id), 'until', untilAt)
    redis.call('ZADD', k('leases'), untilAt, mem(f[3], id))
    extended = extended + 1
  end
end
return extended
