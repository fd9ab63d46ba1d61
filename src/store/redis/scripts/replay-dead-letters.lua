--[[ replay-dead-letters.lua — moves DLQ entries back into delivery, each at most once.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, at, count, then per item: dlqId followed by MSG_ARGS message fields (lib.lua).
  Atomically, per item: if the entry still exists it is removed and the new message stored as by enqueue;
  otherwise nothing happens for it. Publishes the earliest due time stored.
  Returns: count × [messageId, deduplicated, leaseId] or ['', '', ''] where the entry was already gone. ]]
local at, count = ARGV[2], tonumber(ARGV[3])
local out, wake = {}, nil
for n = 0, count - 1 do
  local i = 4 + n * (MSG_ARGS + 1)
  if remove_dead_letter(ARGV[i]) then
    local id, dedup, lease, due = insert_message(i + 1, at, nil)
    out[#out + 1] = id; out[#out + 1] = dedup; out[#out + 1] = lease
    wake = earliest(wake, due)
  else
    out[#out + 1] = ''; out[#out + 1] = ''; out[#out + 1] = ''
  end
end
notify(wake)
return out
