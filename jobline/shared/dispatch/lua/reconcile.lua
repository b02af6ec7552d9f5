--[[ reconcile.lua — restore dispatch entries of one queue from Postgres rows.

Guarantees: a job already present in ready, delayed or leases is left alone (so a job being
claimed right now is never put back into ready); a missing one is added where Postgres says it
belongs. Lease entries ("l") always take Postgres's deadline. Idempotent.
KEYS[1] ready  KEYS[2] delayed  KEYS[3] dprio  KEYS[4] leases  KEYS[5] queue wake LIST
KEYS[6] all-queues wake LIST  KEYS[7] known queues SET  KEYS[8] timer wake LIST
ARGV[1] queue name   ARGV[2..] quads: job id, kind ("r" ready | "d" delayed | "l" lease), score,
ready score (for "d")
Returns: number of entries added.
]]
local added = 0
local woke_ready, woke_delayed = false, false
for i = 2, #ARGV, 4 do
  local id, kind, score, rscore = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if kind == "l" then
    if redis.call("ZADD", KEYS[4], score, id) == 1 then added = added + 1 end
  elseif not redis.call("ZSCORE", KEYS[1], id) and not redis.call("ZSCORE", KEYS[2], id)
      and not redis.call("ZSCORE", KEYS[4], id) then
    if kind == "r" then
      redis.call("ZADD", KEYS[1], score, id)
      woke_ready = true
    else
      redis.call("ZADD", KEYS[2], score, id)
      redis.call("HSET", KEYS[3], id, rscore)
      woke_delayed = true
    end
    added = added + 1
  end
end
redis.call("SADD", KEYS[7], ARGV[1])
if woke_ready then
  redis.call("LPUSH", KEYS[5], 1); redis.call("LTRIM", KEYS[5], 0, 0)
  redis.call("LPUSH", KEYS[6], 1); redis.call("LTRIM", KEYS[6], 0, 0)
end
if woke_delayed then
  redis.call("LPUSH", KEYS[8], 1); redis.call("LTRIM", KEYS[8], 0, 0)
end
return added
