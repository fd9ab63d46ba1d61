--[[ cancel.lua — cancels the given messages.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, at, messageIds…
  Atomically, per message still waiting, pending or active with no cancel requested yet: a waiting or
  pending one gets CANCEL_REQUESTED + CANCELED and is finished (freeing its queue slot); an active one gets
  CANCEL_REQUESTED and the flag, and its attempt's outcome decides. Others are skipped.
  Returns: how many messages were affected. ]]
local at, affected, freed = ARGV[2], 0, false
for i = 3, #ARGV do
  local id = ARGV[i]
  local f = redis.call('HMGET', k('m', id), 'state', 'cr', 'slot')
  local state = f[1]
  if (state == 'waiting' or state == 'pending' or state == 'active') and f[2] ~= '1' then
    affected = affected + 1
    if state == 'active' then
      event(id, at, 'CANCEL_REQUESTED')
      redis.call('HSET', k('m', id), 'cr', '1')
    else
      if f[3] ~= '' then freed = true end
      cancel_now(id, at)
    end
  end
end
if freed then notify(tonumber(at)) end
return affected
