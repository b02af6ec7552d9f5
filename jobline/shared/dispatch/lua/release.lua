--[[ release.lua — drop the lease entries of finished attempts of one queue.

Guarantees, in one atomic step:
  * none of the ids is in leases afterwards (idempotent);
  * if the queue has a maxInFlight cap, is not paused and still has ready jobs, one idle worker
    of the queue and one all-queue worker are woken: a worker refused by the cap blocks on the
    wake list, and a freed slot is the only event that lets it claim again.

KEYS[1] leases ZSET   KEYS[2] meta HASH   KEYS[3] ready ZSET   KEYS[4] queue wake LIST
KEYS[5] all-queues wake LIST
ARGV: job ids
Returns: number of lease entries removed.
]]
local n = redis.call("ZREM", KEYS[1], unpack(ARGV))
if n > 0 then
  local m = redis.call("HMGET", KEYS[2], "paused", "maxInFlight")
  if m[2] and m[1] ~= "1" and redis.call("ZCARD", KEYS[3]) > 0 then
    redis.call("LPUSH", KEYS[4], 1); redis.call("LTRIM", KEYS[4], 0, 0)
    redis.call("LPUSH", KEYS[5], 1); redis.call("LTRIM", KEYS[5], 0, 0)
  end
end
return n
