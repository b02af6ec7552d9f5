--[[ remove.lua — take jobs out of every dispatch structure of one queue (cancel, terminal states).

Guarantees: after the call none of the ids is in ready, delayed, dprio or leases. Idempotent.
KEYS[1] ready  KEYS[2] delayed  KEYS[3] dprio  KEYS[4] leases
ARGV: job ids
Returns: number of ids that were found anywhere.
]]
local found = 0
for _, id in ipairs(ARGV) do
  local a = redis.call("ZREM", KEYS[1], id)
  local b = redis.call("ZREM", KEYS[2], id)
  redis.call("HDEL", KEYS[3], id)
  local c = redis.call("ZREM", KEYS[4], id)
  if a + b + c > 0 then found = found + 1 end
end
return found
