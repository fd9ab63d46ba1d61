--[[ url-group-remove.lua — removes endpoints from a URL group, all or nothing.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, group, at, selectors JSON ([{name?, url?}]).
  Atomically: each selector removes the endpoints matching every field it gives; if one matches nothing,
  nothing changes. A group left empty is deleted.
  Returns: ['unknown'] | ['notFound', selectorIndex (0-based)] | ['removed', count, groupDeleted '1'/'0']. ]]
local group, at = ARGV[2], ARGV[3]
local h = k('g', group)
local raw = redis.call('HGET', h, 'eps')
if not raw then return { 'unknown' } end
local current = cjson.decode(raw)
local removed = 0
for index, selector in ipairs(cjson.decode(ARGV[4])) do
  local kept, hits = {}, 0
  for _, existing in ipairs(current) do
    local match = (selector.name == nil or existing.name == selector.name)
      and (selector.url == nil or existing.url == selector.url)
    if match then hits = hits + 1 else kept[#kept + 1] = existing end
  end
  if hits == 0 then return { 'notFound', index - 1 } end
  removed = removed + hits
  current = kept
end
if #current == 0 then
  redis.call('DEL', h)
  redis.call('SREM', k('groups'), group)
  return { 'removed', removed, '1' }
end
redis.call('HSET', h, 'eps', cjson.encode(current), 'updated', at)
return { 'removed', removed, '0' }
