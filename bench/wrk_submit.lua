-- wrk script for the suite's HTTP scenario: POST one job per request.
-- Env: WRK_BODY (JSON body); WRK_INTERVAL_MS (per wrk thread: ms between request starts, i.e.
-- threads * 1000 / rate; 0 = saturation); JOBLINE_API_KEY (sent as X-Api-Key when set).
-- Debian's wrk is not wrk2, so the fixed rate is a per-thread schedule kept here: each request
-- takes the next slot (next = next + interval) and delay() waits until it. A server that falls
-- behind gets requests back to back until it catches up. wrk measures latency from send, so
-- queueing in front of a slow server lowers the achieved rate rather than raising the p99.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_usec; } jl_timeval;
  int gettimeofday(jl_timeval *tv, void *tz);
]]
local tv = ffi.new("jl_timeval")
local function now_ms()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
end

wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("JOBLINE_API_KEY")
if key and key ~= "" then wrk.headers["X-Api-Key"] = key end
local interval = tonumber(os.getenv("WRK_INTERVAL_MS") or "0")
local next_at = nil

if interval > 0 then
  function delay()
    local t = now_ms()
    if next_at == nil or next_at < t - 1000 then next_at = t end
    next_at = next_at + interval
    local d = next_at - t
    if d < 0 then return 0 end
    return d
  end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

local non2xx, bad = 0, 0
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    bad = status
  end
end

function done(summary, latency, requests)
  local n, b = 0, 0
  for _, t in ipairs(threads) do
    n = n + (t:get("non2xx") or 0)
    if (t:get("bad") or 0) ~= 0 then b = t:get("bad") end
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,"last_bad_status":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, n, b,
    latency:percentile(50), latency:percentile(99), latency.max))
end
