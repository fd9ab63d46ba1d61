--[[ rotate-keys.lua — current signing key ← next, next ← a fresh one.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua).
  ARGV: prefix, freshNext.
  Atomically swaps the keys of the stored credentials.
  Returns: [current, next], or an empty array when no credentials are stored yet. ]]
local raw = redis.call('GET', k('cred'))
if not raw then return {} end
local cred = cjson.decode(raw)
cred.currentSigningKey = cred.nextSigningKey
cred.nextSigningKey = ARGV[2]
redis.call('SET', k('cred'), cjson.encode(cred))
return { cred.currentSigningKey, cred.nextSigningKey }
