-- wrk script for bench/run.sh: optional JSON body and bearer token from the environment,
-- responses counted by outcome, and one machine-readable RESULT line at the end.
--   BENCH_BODY   a JSON body; when set, the request is a POST with it
--   BENCH_TOKEN  a bearer token for the Authorization header

--   BENCH_METHOD the method for the body (default POST)
local body = os.getenv("BENCH_BODY")
if body ~= nil and body ~= "" then
  wrk.method = os.getenv("BENCH_METHOD") or "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0    -- 2xx
  shed = 0  -- 429 or 503: refused at once under load
  other = 0 -- anything else: a failure of the benchmark
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  elseif status == 429 or status == 503 then
    shed = shed + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local o, s, x = 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    s = s + t:get("shed")
    x = x + t:get("other")
  end
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT ok=%d shed=%d other=%d errors=%d ok_per_sec=%.1f req_per_sec=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    o, s, x,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    o / secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
