--[[ queue_meta.lua — mirror one queue's controls (paused, maxInFlight, rate limit) from Postgres.

Guarantees, in one atomic step:
  * the meta hash ends up with exactly Postgres's controls, unless it already holds a newer
    version (``ver``): racing mirrors of two changes cannot leave Redis on the older one, and
    replaying a write (reconcile) is harmless;
  * if the queue can now be claimed from (not paused) and has ready jobs, idle workers of the
    queue and all-queue workers are woken, so resume, a raised cap and a lifted rate limit take effect at once.

KEYS[1] meta HASH   KEYS[2] ready ZSET   KEYS[3] queue wake LIST   KEYS[4] all-queues wake LIST
KEYS[5] known queues SET
ARGV[1] queue name   ARGV[2] version   ARGV[3] "1" paused / "0"   ARGV[4] maxInFlight or "" (none)
ARGV[5] rateLimit or "" (none)   ARGV[6] rateWindowMs (ignored without ARGV[5])
Returns: 1 if applied, 0 if a newer version was already there.
]]
local ver = tonumber(ARGV[2])
local cur = tonumber(redis.call("HGET", KEYS[1], "ver") or "-1")
redis.call("SADD", KEYS[5], ARGV[1])
if cur > ver then return 0 end
redis.call("HSET", KEYS[1], "ver", ver)
if ARGV[3] == "1" then
  redis.call("HSET", KEYS[1], "paused", "1")
else
  redis.call("HDEL", KEYS[1], "paused")
end
if ARGV[4] == "" then
  redis.call("HDEL", KEYS[1], "maxInFlight")
else
  redis.call("HSET", KEYS[1], "maxInFlight", ARGV[4])
end
if ARGV[5] == "" then
  redis.call("HDEL", KEYS[1], "rateLimit", "rateWindowMs")
else
  redis.call("HSET", KEYS[1], "rateLimit", ARGV[5], "rateWindowMs", ARGV[6])
end
if ARGV[3] ~= "1" and redis.call("ZCARD", KEYS[2]) > 0 then
  redis.call("LPUSH", KEYS[3], 1); redis.call("LTRIM", KEYS[3], 0, 0)
  redis.call("LPUSH", KEYS[4], 1); redis.call("LTRIM", KEYS[4], 0, 0)
end
return 1
