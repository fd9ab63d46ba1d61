--[[ delete-dead-letters.lua — removes DLQ entries.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, dlqIds…
  Atomically: each entry that still exists is removed (its message becomes purgeable); others are ignored.
  Returns: how many entries were removed. ]]
local deleted = 0
for i = 2, #ARGV do
  if remove_dead_letter(ARGV[i]) then deleted = deleted + 1 end
end
return deleted
