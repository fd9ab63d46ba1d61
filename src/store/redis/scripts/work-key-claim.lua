--[[ work-key-claim.lua — claims a work key until it expires (the worker kit's shared de-duplication).
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  Keys: P:wk, one sorted set of every claim, member <byte length of scope>:<scope>:<key> (the length keeps
  scope "a:b" + key "c" apart from scope "a" + key "b:c"), score the claim's expiry. Added to layout
  version 1 without a bump: the key is new, so an older Courier on the same prefix only ignores it.
  ARGV: prefix, scope, key, expiresAt, at.
  Atomically: a key with no claim, or whose claim expired (at >= its expiry), is claimed until expiresAt.
  Returns: 1 when claimed, 0 while another claim holds the key. ]]
local scope, key, expiresAt, at = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local member = #scope .. ':' .. scope .. ':' .. key
local held = num(redis.call('ZSCORE', k('wk'), member))
if held and held > at then return 0 end
redis.call('ZADD', k('wk'), expiresAt, member)
return 1
