--[[ settle.lua — applies attempt outcomes, each atomically with its events and follow-ups.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, count, then per settlement: messageId, leaseId, kind ('ack'|'retry'|'deadLetter'), at, nextAt,
  responseDetail JSON, responseBody, dlqId, responseStatus, failedDetail JSON, followUpCount,
  followUpCount × MSG_ARGS message fields (lib.lua).
  Atomically, per settlement: unless the message is active under that lease (else 'leaseLost', nothing
  changes, no follow-ups): ack → delivered + DELIVERED; retry → ERROR, then pending again (retried + 1, due
  nextAt) + RETRY, or canceled + CANCELED when a cancel was requested; deadLetter → failed + ERROR + FAILED
  and a DLQ entry. Finishing frees its lease, queue slot and flow-control slot. Follow-ups are stored as by
  enqueue. Publishes the earliest time new work may be claimed.
  Returns: count × 'settled' | 'canceled' | 'leaseLost'. ]]
local count = tonumber(ARGV[2])
local i = 3
local out, wake = {}, nil
for _ = 1, count do
  local id, leaseId, kind, at, nextAt = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local detail, body, dlqId, status, failed = ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9]
  local followUps = tonumber(ARGV[i + 10])
  local first = i + 11
  i = first + followUps * MSG_ARGS
  local f = redis.call('HMGET', k('m', id), 'state', 'lease', 'cr', 'seq', 'fc', 'slot')
  if f[1] ~= 'active' or f[2] ~= leaseId then
    out[#out + 1] = 'leaseLost'
  else
    local result = 'settled'
    -- A finished message frees a queue or flow-control slot: the next one may start now.
    local frees = f[6] ~= '' or f[5] ~= ''
    if kind == 'ack' then
      finish(id, 'delivered', at)
      event(id, at, 'DELIVERED', detail, body)
      if frees then wake = earliest(wake, tonumber(at)) end
    elseif kind == 'retry' then
      event(id, at, 'ERROR', detail, body)
      if f[3] == '1' then
        finish(id, 'canceled', at)
        event(id, at, 'CANCELED')
        result = 'canceled'
        if frees then wake = earliest(wake, tonumber(at)) end
      else
        local seq, fc = f[4], f[5]
        redis.call('ZREM', k('leases'), mem(seq, id))
        if fc ~= '' then
          redis.call('SREM', k('fca', fc), id)
          wake = earliest(wake, tonumber(at))
        end
        redis.call('HSET', k('m', id), 'state', 'pending', 'due', nextAt, 'lease', '', 'until', '')
        redis.call('HINCRBY', k('m', id), 'retried', 1)
        place_pending(id, seq, nextAt, fc)
        count_state('active', -1)
        count_state('pending', 1)
        event(id, at, 'RETRY', '{"nextDeliveryTime":' .. nextAt .. '}')
        wake = earliest(wake, tonumber(nextAt))
      end
    else
      finish(id, 'failed', at)
      event(id, at, 'ERROR', detail, body)
      event(id, at, 'FAILED', failed)
      local dseq = redis.call('INCR', k('dseq'))
      redis.call('HSET', k('d', dlqId), 'seq', dseq, 'm', id, 'created', at, 'status', status, 'resp', detail,
        'body', body)
      redis.call('ZADD', k('dlq'), dseq, dlqId)
      redis.call('ZADD', k('dlqt'), at, dlqId)
      redis.call('HINCRBY', k('m', id), 'dl', 1)
      if frees then wake = earliest(wake, tonumber(at)) end
    end
    for n = 0, followUps - 1 do
      local _, _, _, due = insert_message(first + n * MSG_ARGS, at, nil)
      wake = earliest(wake, due)
    end
    out[#out + 1] = result
  end
end
notify(wake)
return out
