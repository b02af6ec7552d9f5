-- wrk script for the suite's HTTP scenario: POST one job per request.
-- Env: WRK_BODY (JSON body), WRK_DELAY_MS (pause per connection between requests, for a
-- target rate; 0 = saturation), JOBLINE_API_KEY (sent as X-Api-Key when set).
-- Debian's wrk is not wrk2: a fixed rate is approximated by per-connection pacing, and latency
-- is measured from send (so an overloaded server lowers the achieved rate instead of the p99).
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("JOBLINE_API_KEY")
if key and key ~= "" then wrk.headers["X-Api-Key"] = key end
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")

if pause > 0 then
  function delay() return pause end
end

local non2xx = 0
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
