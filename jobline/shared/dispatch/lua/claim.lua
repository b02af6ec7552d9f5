--[[ claim.lua — lease up to N ready jobs across one or more queues, highest priority first.

Guarantees, in one atomic step:
  * due delayed jobs of each queue are promoted to ready first (so a busy worker never waits on
    the timer process);
  * a popped job is in leases with the given deadline before the script returns: if the worker dies
    before writing the claim to Postgres, the reaper finds the lease and re-dispatches the job;
  * paused queues are skipped; a queue's maxInFlight cap (meta hash) bounds its lease count
    across all workers;
  * a queue's rate limit (meta rateLimit per rateWindowMs) holds across all workers: a
    sliding-window log (rate ZSET, one entry per claim at ``now``) admits a claim only while fewer
    than rateLimit entries are younger than rateWindowMs. A limited queue yields no job (so no
    attempt is spent on the limiter) and reports when its oldest entry leaves the window;
  * if a queue still has ready jobs afterwards, one more idle worker is woken (wake chain), so a
    burst fans out to every idle worker without a thundering herd.

KEYS: per queue, 7 keys: ready, leases, delayed, dprio, queue wake LIST, meta HASH, rate ZSET;
      last key: all-queues wake LIST.
ARGV[1] now ms   ARGV[2] lease deadline ms   ARGV[3] max jobs   ARGV[4] first queue index (0-based,
rotates for fairness)   ARGV[5] max promotions per queue
Returns: flat array  queue_index(0-based), job id, queue_index, job id, ..., then one last
element: when nothing was claimed, the earliest time (ms) something may become claimable: a delayed
job's due time, or when a rate-limited queue with ready jobs frees its next slot; so an idle worker
can block exactly until then. Otherwise (or with nothing pending) -1.

Wait-and-claim mode, ARGV[1] == "time": the script is pipelined behind the worker's BLPOP on the
same connection, so it runs the moment a wake-up arrives, without a round trip back to the
worker (dispatch.py, wait_and_claim). A ``now`` read by the worker before the wait would be stale
by the wait, so the server's clock is read instead, plus ARGV[6], the offset (ms) of the
application clock over Valkey's as the worker last measured it: every time the script compares
(due times, rate windows) or writes (lease deadlines, rate entries) stays on the application
clock, the one Postgres and the reaper use (docs/redis-keys.md, "Clocks"). ARGV[2] is then the
lease length (ms). One extra
last key, the worker's stop flag: set when the worker is told to stop, it makes the claim take
nothing. The reply gets one more last element: the ``now`` used (offset included).
]]
local timed = ARGV[1] == "time"
local now, deadline
if timed then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[6] or 0)
  deadline = now + tonumber(ARGV[2])
else
  now = tonumber(ARGV[1])
  deadline = tonumber(ARGV[2])
end
local now_s = string.format("%d", now)
local want = tonumber(ARGV[3])
local first = tonumber(ARGV[4])
local promote_limit = tonumber(ARGV[5])
local extra = timed and 1 or 0
local nq = (#KEYS - 1 - extra) / 7
local next_due = -1
local function soonest(t)
  if next_due < 0 or t < next_due then next_due = t end
end
local out = {}
local wake_all = KEYS[#KEYS - extra]
if timed and redis.call("EXISTS", KEYS[#KEYS]) == 1 then
  -- a stopping worker takes nothing, and passes on the wake-up it may have consumed
  want = 0
  for qi = 0, nq - 1 do
    if redis.call("ZCARD", KEYS[qi * 7 + 1]) > 0 then
      redis.call("LPUSH", KEYS[qi * 7 + 5], 1); redis.call("LTRIM", KEYS[qi * 7 + 5], 0, 0)
      redis.call("LPUSH", wake_all, 1); redis.call("LTRIM", wake_all, 0, 0)
    end
  end
end
for step = 0, nq - 1 do
  if want <= 0 then break end
  local qi = (first + step) % nq
  local b = qi * 7
  local ready, leases, delayed, dprio, wake, meta, rate =
    KEYS[b + 1], KEYS[b + 2], KEYS[b + 3], KEYS[b + 4], KEYS[b + 5], KEYS[b + 6], KEYS[b + 7]
  local due = redis.call("ZRANGEBYSCORE", delayed, "-inf", now, "LIMIT", 0, promote_limit)
  for _, id in ipairs(due) do
    local score = redis.call("HGET", dprio, id)
    redis.call("ZREM", delayed, id)
    redis.call("HDEL", dprio, id)
    if score then redis.call("ZADD", ready, score, id) end
  end
  local m = redis.call("HMGET", meta, "paused", "maxInFlight", "rateLimit", "rateWindowMs")
  if m[1] ~= "1" then
    local take = want
    if m[2] then
      local room = tonumber(m[2]) - redis.call("ZCARD", leases)
      if room < take then take = room end
    end
    local window = -1
    local rate_room = -1
    if m[3] and m[4] then
      window = tonumber(m[4])
      -- An entry at t counts for claims at [t, t + window). Entries are dropped only a window
      -- later than that: a claim from another worker whose ``now`` is slightly older (read
      -- before a concurrent claim ran) must still see them.
      redis.call("ZREMRANGEBYSCORE", rate, "-inf", now - 2 * window)
      local lo = "(" .. (now - window)
      rate_room = tonumber(m[3]) - redis.call("ZCOUNT", rate, lo, "+inf")
      if rate_room < take then take = rate_room end
      if rate_room <= 0 and redis.call("ZCARD", ready) > 0 then
        local oldest = redis.call("ZRANGEBYSCORE", rate, lo, "+inf", "WITHSCORES", "LIMIT", 0, 1)
        if oldest[2] then soonest(tonumber(oldest[2]) + window) end
      end
    end
    if take > 0 then
      local popped = redis.call("ZPOPMIN", ready, take)
      for i = 1, #popped, 2 do
        redis.call("ZADD", leases, deadline, popped[i])
        out[#out + 1] = qi
        out[#out + 1] = popped[i]
        want = want - 1
      end
      if window >= 0 and #popped > 0 then
        local entries = {}
        for i = 1, #popped, 2 do
          entries[#entries + 1] = now_s
          entries[#entries + 1] = popped[i] .. "@" .. now_s
        end
        redis.call("ZADD", rate, unpack(entries))
        redis.call("PEXPIRE", rate, 2 * window + 1000)
        rate_room = rate_room - #popped / 2
      end
      -- wake chain only while this queue can still be claimed from: waking workers for a
      -- rate-limited queue would only have them ask again before the next slot frees
      if rate_room ~= 0 and redis.call("ZCARD", ready) > 0 then
        redis.call("LPUSH", wake, 1); redis.call("LTRIM", wake, 0, 0)
        redis.call("LPUSH", wake_all, 1); redis.call("LTRIM", wake_all, 0, 0)
      end
    end
  end
end
if #out == 0 then
  for qi = 0, nq - 1 do
    local head = redis.call("ZRANGE", KEYS[qi * 7 + 3], 0, 0, "WITHSCORES")
    if head[2] then soonest(tonumber(head[2])) end
  end
  out[#out + 1] = next_due
else
  out[#out + 1] = -1
end
if timed then out[#out + 1] = now end
return out
