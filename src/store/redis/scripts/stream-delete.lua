--[[ stream-delete.lua — removes a task stream with its events.
  KEYS: none (ARGV[1] is the key prefix; see lib.lua for the stream keys).
  ARGV: prefix, streamId.
  Atomically: deletes P:s:<id> and P:se:<id> and takes the id out of every stream index.
  Returns: 1 when removed, 0 when the stream was unknown. ]]
if remove_stream(ARGV[2]) then return 1 end
return 0
