--[[ url-group-add.lua — adds endpoints to a URL group, creating it if needed.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, group, at, endpoints JSON ([{name?, url}]).
  Atomically: an endpoint replaces the one with its name (unnamed: the unnamed one with its URL), else it is
  appended; createdAt is kept.
  Returns: 1. ]]
local group, at = ARGV[2], ARGV[3]
local h = k('g', group)
local current = {}
local raw = redis.call('HGET', h, 'eps')
if raw then current = cjson.decode(raw) else
  redis.call('HSET', h, 'created', at)
  redis.call('SADD', k('groups'), group)
end
for _, endpoint in ipairs(cjson.decode(ARGV[4])) do
  local replaced = false
  for _, existing in ipairs(current) do
    local same
    if endpoint.name ~= nil then same = existing.name == endpoint.name
    else same = existing.name == nil and existing.url == endpoint.url end
    if same then existing.url = endpoint.url; replaced = true; break end
  end
  if not replaced then current[#current + 1] = endpoint end
end
redis.call('HSET', h, 'eps', cjson.encode(current), 'updated', at)
return 1
