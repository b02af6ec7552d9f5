--[[ claim.lua — lease up to N ready jobs across one or more queues, highest priority first.

Guarantees, in one atomic step:
  * due delayed jobs of each queue are promoted to ready first (so a busy worker never waits on
    the timer process);
  * a popped job is in leases with the given deadline before the script returns: if the worker dies
    before writing the claim to Postgres, the reaper finds the lease and re-dispatches the job;
  * paused queues are skipped; a queue's maxInFlight cap (meta hash) bounds its lease count
    across all workers;
  * if a queue still has ready jobs afterwards, one more idle worker is woken (wake chain), so a
    burst fans out to every idle worker without a thundering herd.

KEYS: per queue, 6 keys: ready, leases, delayed, dprio, queue wake LIST, meta HASH;
      last key: all-queues wake LIST.
ARGV[1] now ms   ARGV[2] lease deadline ms   ARGV[3] max jobs   ARGV[4] first queue index (0-based,
rotates for fairness)   ARGV[5] max promotions per queue
Returns: flat array  queue_index(0-based), job id, queue_index, job id, ..., then one last
element: when nothing was claimed, the earliest due time (ms) among the queues' delayed jobs, so an
idle worker can block exactly until then; otherwise (or with no delayed jobs) -1.
]]
local now = tonumber(ARGV[1])
local deadline = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local first = tonumber(ARGV[4])
local promote_limit = tonumber(ARGV[5])
local nq = (#KEYS - 1) / 6
local out = {}
local wake_all = KEYS[#KEYS]
for step = 0, nq - 1 do
  if want <= 0 then break end
  local qi = (first + step) % nq
  local b = qi * 6
  local ready, leases, delayed, dprio, wake, meta =
    KEYS[b + 1], KEYS[b + 2], KEYS[b + 3], KEYS[b + 4], KEYS[b + 5], KEYS[b + 6]
  local due = redis.call("ZRANGEBYSCORE", delayed, "-inf", now, "LIMIT", 0, promote_limit)
  for _, id in ipairs(due) do
    local score = redis.call("HGET", dprio, id)
    redis.call("ZREM", delayed, id)
    redis.call("HDEL", dprio, id)
    if score then redis.call("ZADD", ready, score, id) end
  end
  local m = redis.call("HMGET", meta, "paused", "maxInFlight")
  if m[1] ~= "1" then
    local take = want
    if m[2] then
      local room = tonumber(m[2]) - redis.call("ZCARD", leases)
      if room < take then take = room end
    end
    if take > 0 then
      local popped = redis.call("ZPOPMIN", ready, take)
      for i = 1, #popped, 2 do
        redis.call("ZADD", leases, deadline, popped[i])
        out[#out + 1] = qi
        out[#out + 1] = popped[i]
        want = want - 1
      end
      if redis.call("ZCARD", ready) > 0 then
        redis.call("LPUSH", wake, 1); redis.call("LTRIM", wake, 0, 0)
        redis.call("LPUSH", wake_all, 1); redis.call("LTRIM", wake_all, 0, 0)
      end
    end
  end
end
local next_due = -1
if #out == 0 then
  for qi = 0, nq - 1 do
    local head = redis.call("ZRANGE", KEYS[qi * 6 + 3], 0, 0, "WITHSCORES")
    if head[2] then
      local d = tonumber(head[2])
      if next_due < 0 or d < next_due then next_due = d end
    end
  end
end
out[#out + 1] = next_due
return out
