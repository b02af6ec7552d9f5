--[[ unclaim.lua — undo the Redis half of a claim that Postgres refused, for one queue.

claim.lua leases ids before Postgres flips them to processing; an id Postgres refuses (cancelled
meanwhile, gone, or already running under another worker's claim) must not keep the lease and
rate-limit entry that claim gave it, or it holds a maxInFlight slot for a whole lease and a rate
slot for a whole window.

Guarantees, in one atomic step:
  * an id with an owner deadline >= 0 (running under another claim in Postgres) gets that lease
    back (its entry was overwritten by the refused claim); any other id leaves leases;
  * the rate-limit entry the refused claim added for each id (member ``id@now``) is removed;
  * if a lease was freed, the queue is not paused and still has ready jobs, one idle worker of
    the queue and one all-queue worker are woken (as release.lua does).

KEYS[1] leases ZSET  KEYS[2] meta HASH  KEYS[3] ready ZSET  KEYS[4] queue wake LIST
KEYS[5] all-queues wake LIST  KEYS[6] rate ZSET
ARGV[1] the claim's now (ms, as claim.lua formatted it), then pairs: job id, owner deadline ms
(-1: no owner)
Returns: number of lease entries removed.
]]
local freed = 0
for i = 2, #ARGV, 2 do
  local id, owner = ARGV[i], tonumber(ARGV[i + 1])
  if owner >= 0 then
    redis.call("ZADD", KEYS[1], owner, id)
  else
    freed = freed + redis.call("ZREM", KEYS[1], id)
  end
  redis.call("ZREM", KEYS[6], id .. "@" .. ARGV[1])
end
if freed > 0 then
  local m = redis.call("HMGET", KEYS[2], "paused")
  if m[1] ~= "1" and redis.call("ZCARD", KEYS[3]) > 0 then
    redis.call("LPUSH", KEYS[4], 1); redis.call("LTRIM", KEYS[4], 0, 0)
    redis.call("LPUSH", KEYS[5], 1); redis.call("LTRIM", KEYS[5], 0, 0)
  end
end
return freed
