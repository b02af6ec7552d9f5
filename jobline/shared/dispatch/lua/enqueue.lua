--[[ enqueue.lua — make jobs of one queue dispatchable (submit, retry, release, promote-by-hand).

Guarantees, in one atomic step:
  * each job ends up in exactly one of ready / delayed and is removed from leases;
  * re-running with the same arguments leaves the same state (idempotent, safe to replay);
  * one idle worker of the queue and one all-queue worker are woken if anything became ready
    or delayed (so they can re-arm their wait for the earliest due time);
  * the delayed-job timer is woken if anything was delayed, so it can re-arm for an earlier due time.

KEYS[1] ready ZSET (score = ready score)   KEYS[2] delayed ZSET (score = due ms)
KEYS[3] dprio HASH (id -> ready score, only for delayed jobs)   KEYS[4] leases ZSET
KEYS[5] queue wake LIST   KEYS[6] all-queues wake LIST   KEYS[7] known queues SET
KEYS[8] timer wake LIST
ARGV[1] now ms   ARGV[2] queue name   ARGV[3] "1" to return ready positions
ARGV[4..] triples: job id, ready score, due ms; or ARGV[4] = "*" and ARGV[5] = the triples
  packed as "id:score:due,id:score:due,..." (large batches: one argument is far cheaper for the
  client to encode than three per job, and the loop below is the same)
Returns: with ARGV[3]=="1", the 1-based rank of each job in ready (-1 when delayed); else the count.
]]
local now = tonumber(ARGV[1])
local want_pos = ARGV[3] == "1"
local became_ready, became_delayed = false, false
local n = 0
local ids = {}
local function put(id, score, due)
  redis.call("ZREM", KEYS[4], id)
  if due <= now then
    redis.call("ZREM", KEYS[2], id)
    redis.call("HDEL", KEYS[3], id)
    redis.call("ZADD", KEYS[1], score, id)
    became_ready = true
  else
    redis.call("ZREM", KEYS[1], id)
    redis.call("ZADD", KEYS[2], due, id)
    redis.call("HSET", KEYS[3], id, score)
    became_delayed = true
  end
  n = n + 1
  ids[n] = id
end
if ARGV[4] == "*" then
  for id, score, due in string.gmatch(ARGV[5], "([^:,]+):([^:,]+):([^:,]+)") do
    put(id, score, tonumber(due))
  end
else
  for i = 4, #ARGV, 3 do
    put(ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]))
  end
end
redis.call("SADD", KEYS[7], ARGV[2])
if became_ready or became_delayed then
  -- a delayed job wakes idle workers too: they re-read the earliest due time and block until it
  redis.call("LPUSH", KEYS[5], 1); redis.call("LTRIM", KEYS[5], 0, 0)
  redis.call("LPUSH", KEYS[6], 1); redis.call("LTRIM", KEYS[6], 0, 0)
end
if became_delayed then
  redis.call("LPUSH", KEYS[8], 1); redis.call("LTRIM", KEYS[8], 0, 0)
end
if not want_pos then return n end
local out = {}
for i = 1, n do
  local r = redis.call("ZRANK", KEYS[1], ids[i])
  if r then out[#out + 1] = r + 1 else out[#out + 1] = -1 end
end
return out
