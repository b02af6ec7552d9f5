--[[ key_rate.lua — admit one request of an API key under a token bucket (rate limit per key).

Guarantees, in one atomic step (so every API replica shares one bucket per key):
  * the bucket holds at most ARGV[2] tokens and refills continuously at ARGV[2] per ARGV[3] ms;
  * a request is admitted iff at least one token is left, and then takes exactly one;
  * a refused request changes nothing and learns how long until the next token;
  * the key expires once the bucket would be full again, so idle keys cost no memory, and a
    flushed Redis simply starts every bucket full (nothing to reconcile).
Time comes from the caller (ARGV[1]), so tests drive it with a fake clock.

KEYS[1] bucket HASH {tokens, ts}
ARGV[1] now ms   ARGV[2] capacity (requests per window)   ARGV[3] window ms
Returns: 0 when admitted, else the ms to wait before a token is available (>= 1).
]]
local now = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local rate = cap / window -- tokens per ms
local state = redis.call("HMGET", KEYS[1], "tokens", "ts")
local tokens, ts = tonumber(state[1]), tonumber(state[2])
if tokens == nil or ts == nil then
  tokens, ts = cap, now
end
if now > ts then
  tokens = math.min(cap, tokens + (now - ts) * rate)
  ts = now
end
if tokens < 1 then
  return math.max(1, math.ceil((1 - tokens) / rate))
end
tokens = tokens - 1
redis.call("HSET", KEYS[1], "tokens", tostring(tokens), "ts", tostring(ts))
redis.call("PEXPIRE", KEYS[1], math.max(1, math.ceil((cap - tokens) / rate)))
return 0
