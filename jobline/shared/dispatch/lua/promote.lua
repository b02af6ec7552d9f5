--[[ promote.lua — move due delayed jobs to ready (the delayed-job timer's one step).

Guarantees, in one atomic step per call: a job moves from delayed to ready at most once and keeps
its ready score (priority, then submit order); workers of a queue that gained jobs are woken.
KEYS: per queue, 5 keys: ready, delayed, dprio, queue wake LIST, (unused slot: meta);
      last key: all-queues wake LIST.
ARGV[1] now ms   ARGV[2] max promotions per queue
Returns: {moved count, next due ms or -1}
]]
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local nq = (#KEYS - 1) / 5
local moved = 0
local next_due = -1
for qi = 0, nq - 1 do
  local b = qi * 5
  local ready, delayed, dprio, wake = KEYS[b + 1], KEYS[b + 2], KEYS[b + 3], KEYS[b + 4]
  local due = redis.call("ZRANGEBYSCORE", delayed, "-inf", now, "LIMIT", 0, limit)
  for _, id in ipairs(due) do
    local score = redis.call("HGET", dprio, id)
    redis.call("ZREM", delayed, id)
    redis.call("HDEL", dprio, id)
    if score then redis.call("ZADD", ready, score, id) end
    moved = moved + 1
  end
  if #due > 0 then
    redis.call("LPUSH", wake, 1); redis.call("LTRIM", wake, 0, 0)
    redis.call("LPUSH", KEYS[#KEYS], 1); redis.call("LTRIM", KEYS[#KEYS], 0, 0)
  end
  local head = redis.call("ZRANGE", delayed, 0, 0, "WITHSCORES")
  if head[2] then
    local d = tonumber(head[2])
    if next_due < 0 or d < next_due then next_due = d end
  end
end
return {moved, next_due}
