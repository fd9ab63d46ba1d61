--[[ delete-dead-letters.lua — removes DLQ entries.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, dlqIds…
  Atomically: each entry that still exists is removed (its message becomes purgeable); others are ignored.
  Returns: how many entries were removed. ]]
local deleted = 0
for i = 2, #ARGV do
  local dlqId = ARGV[i]
  local owner = redis.call('HGET', k('d', dlqId), 'm')
  if owner then
    redis.call('DEL', k('d', dlqId))
    redis.call('ZREM', k('dlq'), dlqId)
    redis.call('ZREM', k('dlqt'), dlqId)
    release_dead_letter(owner)
    deleted = deleted + 1
  end
end
return deleted
