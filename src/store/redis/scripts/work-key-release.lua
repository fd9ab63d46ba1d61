--[[ work-key-release.lua — forgets a work key's claim, expired or not (keys: see work-key-claim.lua).
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, scope, key.
  Atomically: removes the claim.
  Returns: 1, or 0 when no claim was stored. ]]
local scope, key = ARGV[2], ARGV[3]
return redis.call('ZREM', k('wk'), #scope .. ':' .. scope .. ':' .. key)
