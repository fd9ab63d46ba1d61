--[[ stream-append.lua — appends one batch of events to a task stream, all of it or none.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua for the stream keys).
  ARGV: prefix, streamId, at, author ('writer'|'courier'), closes ('' | 'ended' | 'failed'), messageId ('' for
  none), maxEvents, count, then per event: type, data, json ('1'/'0'), writer seq ('' for none).
  Atomically: an unknown stream is created open (tied to messageId) by an append that stores an event. Writer seqs (port.ts StreamAppend): at or below the running last seq → skipped; the next one →
  stored under it; past it → 'gap' with the next one; no seq → the next one. Then, in this order: nothing to
  store (every event skipped, or none given) → 'appended' with nothing changed, whatever the state; a closed
  stream, or one closed to writers when author is 'writer' → 'closed'; a gap → 'gap'; events held plus new
  ones past maxEvents → 'full'. Otherwise the events are stored, last/first/updated move, `closes` closes
  the stream (ended = at) — except a writer's on a stream tied to a message, which only sets wclosed — the
  indexes follow the state, and '<last seq> <id>' is published on P:streams.
  Returns: { kind ('appended'|'closed'|'gap'|'full'), expected seq ('0' unless gap), the 8 STREAM_FIELDS
  (lib.lua) of the stream as it is now (as it would have been made when a gap or full left it unmade), then
  for 'appended' the seq each event was stored under, per event, '0' when skipped }. ]]
local id, at, author, closes, messageId = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local maxEvents, count = tonumber(ARGV[7]), tonumber(ARGV[8])
local s = load_stream(id)
local fresh = s == nil
if fresh then
  s = { state = 'open', last = '0', first = '0', created = at, updated = at, ended = '', msg = messageId, wclosed = '0' }
end

local function answer(kind, expected, assigned)
  local out = { kind, expected or '0' }
  for _, v in ipairs(stream_fields(s)) do out[#out + 1] = v end
  for _, v in ipairs(assigned or {}) do out[#out + 1] = v end
  return out
end

local before = tonumber(s.last)
local last, stored, gap = before, 0, nil
local assigned = {}
for n = 1, count do
  local seq = num(ARGV[8 + n * 4])
  if seq and seq <= last then assigned[n] = '0'
  elseif seq and seq > last + 1 then gap = last + 1; break
  else
    last = last + 1
    stored = stored + 1
    assigned[n] = string.format('%d', last)
  end
end

if gap == nil and stored == 0 then
  -- A writer resending what is stored (its final `end` too) is answered as a success. Nothing is
  -- written: an unknown stream stays unknown (the answer shows the record it would have had).
  return answer('appended', nil, assigned)
end
if s.state ~= 'open' or (author == 'writer' and s.wclosed == '1') then return answer('closed') end
if gap then return answer('gap', string.format('%d', gap)) end
local held = fresh and 0 or redis.call('ZCARD', k('se', id))
if held + stored > maxEvents then return answer('full') end

for n = 1, count do
  local seq = assigned[n]
  if seq ~= '0' then
    local i = 5 + n * 4
    redis.call('ZADD', k('se', id), seq, encode_stream_event(tonumber(seq), at, ARGV[i + 2], ARGV[i], ARGV[i + 1]))
  end
end
local was = nil
if not fresh then was = s.state end
if s.first == '0' then s.first = string.format('%d', before + 1) end
s.last = string.format('%d', last)
s.updated = at
if closes ~= '' then
  if author == 'writer' and s.msg ~= '' then s.wclosed = '1'
  else
    s.state = closes
    s.ended = at
  end
end
save_stream(id, s)
index_stream(id, s, was)
notify_stream(id, last)
return answer('appended', nil, assigned)
