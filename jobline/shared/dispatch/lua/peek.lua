--[[ peek.lua — how many jobs one slot group's queues could give a claim now (read only).

Used by a claim across slot groups (redis_dispatch.py, Dispatch.claim) to split its batch: each
group's claim script is then asked for at most what this returned, so claims run side by side
never lease more than the worker asked for. One call per group instead of five reads per queue.

KEYS: per queue, 4 keys: ready ZSET, delayed ZSET, meta HASH, leases ZSET.
ARGV[1] now ms
Returns: {jobs the group's queues can give (ready + due delayed, 0 for a paused queue, at most
the room under a maxInFlight cap), earliest delayed due time or -1}
]]
local now = tonumber(ARGV[1])
local can, head = 0, -1
for b = 0, #KEYS - 1, 4 do
  local first = redis.call("ZRANGE", KEYS[b + 2], 0, 0, "WITHSCORES")
  if first[2] then
    local t = tonumber(first[2])
    if head < 0 or t < head then head = t end
  end
  local m = redis.call("HMGET", KEYS[b + 3], "paused", "maxInFlight")
  if m[1] ~= "1" then
    local q = redis.call("ZCARD", KEYS[b + 1]) + redis.call("ZCOUNT", KEYS[b + 2], "-inf", now)
    if m[2] then
      local room = tonumber(m[2]) - redis.call("ZCARD", KEYS[b + 4])
      if room < q then q = room end
    end
    if q > 0 then can = can + q end
  end
end
return {can, head}
