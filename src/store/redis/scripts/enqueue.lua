--[[ enqueue.lua — stores a batch of messages in one atomic step.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, at, handoffLimit, leaseId, leaseUntil, count, then count × MSG_ARGS message fields (lib.lua).
  Atomically, per message in input order: a live dedup key answers its holder and stores nothing; otherwise
  the message is stored waiting (it names a queue, which is created if unknown), pending, or — while
  handoffLimit lasts and it is eligible (due, ungated, origin not excluded) — active under the shared lease,
  with CREATED (and ACTIVE) events; a flow-control key takes its limits unless pinned. Publishes the earliest
  due time of what it stored.
  Returns: count × [messageId, deduplicated '1'/'0', leaseId or ''], aligned with the input. ]]
local at, left, leaseId, untilAt, count = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], tonumber(ARGV[6])
local offer = function()
  if left <= 0 then return nil end
  left = left - 1
  return leaseId, untilAt
end
local out, wake = {}, nil
for n = 0, count - 1 do
  local id, dedup, lease, due = insert_message(7 + n * MSG_ARGS, at, offer)
  out[#out + 1] = id; out[#out + 1] = dedup; out[#out + 1] = lease
  wake = earliest(wake, due)
end
notify(wake)
return out
