--[[ lib.lua — shared helpers, prepended to every other script at load time (not a transition itself).
  Every script takes no KEYS: ARGV[1] is the key prefix and keys are derived from it, because which
  keys a transition touches (a message's queue, its flow-control key …) is only known inside it.
  Key layout (version 1, see redis-store.ts): P:m:<id> message hash; P:free / P:fcp:<key> pending by due;
  P:leases active by lease end; P:qw:<queue> waiting by due; P:qready / P:fcready (see place_pending);
  P:qs:<queue> slot holders; P:fca:<key> active per key; P:q:<queue> / P:fck:<key> settings; P:stats counts;
  P:live unfinished by seq;
  P:fin finished by time; P:ev:<n> + P:events + P:me:<id> the log;
  P:d:<dlqId> + P:dlq (by seq) + P:dlqt (by time) the DLQ; P:dedup + P:dedupx dedup keys;
  P:igroups + P:ig:<group> + P:ins:<group> instance groups and their instances (see instance-heartbeat.lua);
  P:wk work-key claims (see work-key-claim.lua);
  P:s:<id> + P:se:<id> + P:streams… task streams (below, and stream-append.lua).
  Sorted-set members are %012d(seq) .. id, so equal scores fall back to acceptance order. ]]
local P = ARGV[1]
local function k(...) return P .. ':' .. table.concat({ ... }, ':') end
local function mem(seq, id) return string.format('%012d', tonumber(seq)) .. id end
local function idof(member) return string.sub(member, 13) end
local function num(v) if v == false or v == nil or v == '' then return nil end return tonumber(v) end

local function event(id, t, s, d, b)
  local n = redis.call('INCR', k('eseq'))
  local fields = { 't', t, 's', s, 'm', id }
  if d and d ~= '' then fields[#fields + 1] = 'd'; fields[#fields + 1] = d end
  if b and b ~= '' then fields[#fields + 1] = 'b'; fields[#fields + 1] = b end
  redis.call('HSET', k('ev', n), unpack(fields))
  redis.call('ZADD', k('events'), n, n)
  redis.call('RPUSH', k('me', id), n)
end

-- A pending message is indexed by due time: per flow-control key, or in the free set.
-- P:fcready and P:qready name the keys and queues that have messages pending or waiting, so claims and
-- next-due visit only those instead of every key and queue ever made.
local function place_pending(id, seq, due, fc)
  if fc ~= '' then
    redis.call('ZADD', k('fcp', fc), due, mem(seq, id))
    redis.call('SADD', k('fcready'), fc)
  else redis.call('ZADD', k('free'), due, mem(seq, id)) end
end
local function unplace_pending(id, seq, fc)
  if fc ~= '' then
    redis.call('ZREM', k('fcp', fc), mem(seq, id))
    if redis.call('ZCARD', k('fcp', fc)) == 0 then redis.call('SREM', k('fcready'), fc) end
  else redis.call('ZREM', k('free'), mem(seq, id)) end
end
local function place_waiting(id, seq, due, q)
  redis.call('ZADD', k('qw', q), due, mem(seq, id))
  redis.call('SADD', k('qready'), q)
end
local function unplace_waiting(id, seq, q)
  redis.call('ZREM', k('qw', q), mem(seq, id))
  if redis.call('ZCARD', k('qw', q)) == 0 then redis.call('SREM', k('qready'), q) end
end

local function count_state(state, delta)
  if state == 'waiting' or state == 'pending' then redis.call('HINCRBY', k('stats'), 'pending', delta)
  elseif state == 'active' then redis.call('HINCRBY', k('stats'), 'active', delta) end
end

-- Leaves every live index, its lease and its queue slot.
local function finish(id, state, at)
  local f = redis.call('HMGET', k('m', id), 'seq', 'state', 'fc', 'q', 'slot')
  local seq, from, fc, q, slot = f[1], f[2], f[3] or '', f[4] or '', f[5] or ''
  if from == 'waiting' then unplace_waiting(id, seq, q)
  elseif from == 'pending' then unplace_pending(id, seq, fc)
  elseif from == 'active' then
    redis.call('ZREM', k('leases'), mem(seq, id))
    if fc ~= '' then redis.call('SREM', k('fca', fc), id) end
  end
  if slot ~= '' then redis.call('SREM', k('qs', slot), id) end
  count_state(from, -1)
  redis.call('HSET', k('m', id), 'state', state, 'fin', at, 'lease', '', 'until', '', 'slot', '')
  redis.call('ZREM', k('live'), id)
  redis.call('ZADD', k('fin'), at, id)
end

local function cancel_now(id, at)
  event(id, at, 'CANCEL_REQUESTED')
  finish(id, 'canceled', at)
  event(id, at, 'CANCELED')
end

-- A message's DLQ entry went away; with none left, purge may take it once its time comes (see purge.lua).
local function release_dead_letter(owner)
  if redis.call('HINCRBY', k('m', owner), 'dl', -1) <= 0 then
    local fin = redis.call('HGET', k('m', owner), 'fin')
    if fin and fin ~= '' then redis.call('ZADD', k('fin'), fin, owner) end
  end
end

-- Removes a DLQ entry and its index members (stale ones too); returns the message it belonged to, or nil if the
-- entry was already gone.
local function remove_dead_letter(dlqId)
  local owner = redis.call('HGET', k('d', dlqId), 'm')
  redis.call('DEL', k('d', dlqId))
  redis.call('ZREM', k('dlq'), dlqId)
  redis.call('ZREM', k('dlqt'), dlqId)
  if owner then release_dead_letter(owner) end
  return owner
end

local function apply_fc_config(key, par, rate, period, at)
  local h = k('fck', key)
  if redis.call('EXISTS', h) == 0 then
    redis.call('HSET', h, 'par', par, 'rate', rate, 'period', period, 'paused', '0', 'pp', '0', 'pr', '0',
      'rc', '0', 'rps', '0', 'created', at, 'updated', at)
    redis.call('SADD', k('fckeys'), key)
    return
  end
  local pins = redis.call('HMGET', h, 'pp', 'pr')
  if pins[1] ~= '1' then redis.call('HSET', h, 'par', par) end
  if pins[2] ~= '1' then redis.call('HSET', h, 'rate', rate, 'period', period) end
  redis.call('HSET', h, 'updated', at)
end

local function ensure_queue(name, at)
  if redis.call('EXISTS', k('q', name)) == 0 then
    redis.call('HSET', k('q', name), 'par', '1', 'paused', '0', 'created', at, 'updated', at)
    redis.call('SADD', k('queues'), name)
  end
end

-- One message to store takes MSG_ARGS arguments from position i:
-- id, spec, body, notBefore, createdAt, queueName, queueSlot, fcKey, fcPar, fcRate, fcPeriod,
-- dedupKey, dedupExpiresAt, origin, scheduleId, handoffEligible ('1'/'0').
local MSG_ARGS = 16

-- Stores one message (or finds its dedup holder). `offer` is a function(eligible) → leaseId, until or nil.
-- Returns messageId, deduplicated ('1'/'0'), leaseId ('' when none), and the due time it may be claimed at.
local function insert_message(i, at, offer)
  local id, spec, body, due, created = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local q, slot, fc = ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
  local dkey, dexp, origin, sched, eligible = ARGV[i + 11], ARGV[i + 12], ARGV[i + 13], ARGV[i + 14], ARGV[i + 15]
  -- A repeat of a call whose reply was lost (the client retried) must not store the message twice.
  if redis.call('EXISTS', k('m', id)) == 1 then return id, '0', '', nil end
  if dkey ~= '' then
    local holder = redis.call('HGET', k('dedup'), dkey)
    if holder then
      local sep = string.find(holder, '|', 1, true)
      if tonumber(string.sub(holder, 1, sep - 1)) > tonumber(at) then
        return string.sub(holder, sep + 1), '1', '', nil
      end
    end
    redis.call('HSET', k('dedup'), dkey, dexp .. '|' .. id)
    redis.call('ZADD', k('dedupx'), dexp, dkey)
  end
  if fc ~= '' then apply_fc_config(fc, ARGV[i + 8], ARGV[i + 9], ARGV[i + 10], at) end
  local waits = q ~= '' and slot == ''
  if waits then ensure_queue(q, at) end
  local lease, untilAt = nil, nil
  if not waits and fc == '' and slot == '' and eligible == '1' and offer then lease, untilAt = offer() end
  local seq = redis.call('INCR', k('seq'))
  local state = lease and 'active' or (waits and 'waiting' or 'pending')
  redis.call('HSET', k('m', id), 'seq', seq, 'state', state, 'due', due, 'retried', '0', 'lease', lease or '',
    'until', untilAt or '', 'cr', '0', 'fin', '', 'created', created, 'origin', origin, 'q', q, 'slot', slot,
    'fc', fc, 'sched', sched, 'dl', '0', 'spec', spec, 'body', body)
  if slot ~= '' then redis.call('SADD', k('qs', slot), id) end
  if state == 'waiting' then place_waiting(id, seq, due, q)
  elseif state == 'pending' then place_pending(id, seq, due, fc)
  else redis.call('ZADD', k('leases'), untilAt, mem(seq, id)) end
  redis.call('ZADD', k('live'), seq, id)
  count_state(state, 1)
  if sched ~= '' then redis.call('ZADD', k('sr', sched), seq, mem(seq, id)) end
  event(id, at, 'CREATED')
  if lease then
    event(id, at, 'ACTIVE')
    return id, '0', lease, nil
  end
  return id, '0', '', tonumber(due)
end

local function earliest(a, b)
  if a == nil then return b end
  if b == nil then return a end
  return math.min(a, b)
end

-- Other nodes sleep until told; the payload is the earliest due time this transition knows of.
local function notify(due)
  if due ~= nil then redis.call('PUBLISH', k('work'), string.format('%d', due)) end
end

--[[ Task streams. Added to layout version 1 without a bump: every key is new and no existing key changes
  meaning, so an older Courier on the same prefix only ignores them.
  P:s:<id>     hash: state (open|ended|failed), last (last seq, 0 before any), first (oldest seq stored, 0 when
               none), created, updated, ended ('' while open), msg (tied message id, ''), wclosed ('1'/'0').
  P:se:<id>    sorted set of the events, score seq, member encode_stream_event (seq|at|json|type|data): the seq
               prefix keeps members unique; data is the remainder, bytes exactly as given.
  P:streams    sorted set of every stream id, score 0 (ZRANGEBYLEX pages in id order).
  P:streams:open, P:streams:ended, P:streams:failed
               the same per state, for listing by state in id order.
  P:streams:touched   open streams by updated (idle expiry); P:streams:closedat   closed streams by ended.
  Pub/sub channel P:streams (channels are not keys): '<last seq> <id>' after every append, for watchStreams. ]]
local function encode_stream_event(seq, at, json, t, data)
  return string.format('%d', seq) .. '|' .. at .. '|' .. json .. '|' .. t .. '|' .. data
end

-- A stream's hash fields in STREAM_FIELDS order (the order the adapter decodes, see streams.ts).
local STREAM_FIELDS = { 'state', 'last', 'first', 'created', 'updated', 'ended', 'msg', 'wclosed' }
local function stream_fields(s)
  local out = {}
  for n, name in ipairs(STREAM_FIELDS) do out[n] = s[name] end
  return out
end
-- The stream as a table of its fields, or nil when unknown.
local function load_stream(id)
  local v = redis.call('HMGET', k('s', id), unpack(STREAM_FIELDS))
  if not v[1] then return nil end
  local s = {}
  for n, name in ipairs(STREAM_FIELDS) do s[name] = v[n] or '' end
  return s
end
local function save_stream(id, s)
  local flat = {}
  for _, name in ipairs(STREAM_FIELDS) do flat[#flat + 1] = name; flat[#flat + 1] = s[name] end
  redis.call('HSET', k('s', id), unpack(flat))
end

-- Puts the stream in the indexes of its state (after its state, updated and ended are set); `was` is the
-- state it was indexed under, nil for a new stream.
local function index_stream(id, s, was)
  if was == nil then redis.call('ZADD', k('streams'), 0, id) end
  if was ~= nil and was ~= s.state then redis.call('ZREM', k('streams', was), id) end
  redis.call('ZADD', k('streams', s.state), 0, id)
  if s.state == 'open' then redis.call('ZADD', k('streams', 'touched'), s.updated, id)
  else
    redis.call('ZREM', k('streams', 'touched'), id)
    redis.call('ZADD', k('streams', 'closedat'), s.ended, id)
  end
end

-- Removes the stream, its events and its index entries; false when it was unknown.
local function remove_stream(id)
  local state = redis.call('HGET', k('s', id), 'state')
  if not state then return false end
  redis.call('DEL', k('s', id), k('se', id))
  redis.call('ZREM', k('streams'), id)
  redis.call('ZREM', k('streams', state), id)
  redis.call('ZREM', k('streams', 'touched'), id)
  redis.call('ZREM', k('streams', 'closedat'), id)
  return true
end

local function notify_stream(id, last)
  redis.call('PUBLISH', k('streams'), string.format('%d', last) .. ' ' .. id)
end
