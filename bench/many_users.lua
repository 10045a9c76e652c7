-- wrk script: POST the same body (the file named by BENCH_BODY_FILE) as BENCH_USERS different
-- learners (default 10,000): X-User-ID bench-user-0 .. bench-user-N-1 in turn, each thread
-- starting at its own offset. The requests are formatted once, in init, so the generator's cost
-- per request is that of same_body.lua. BENCH_API_KEY, when set, goes out as X-API-Key.
local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
local body = file:read("*a")
file:close()
local users = tonumber(os.getenv("BENCH_USERS") or "10000")
local api_key = os.getenv("BENCH_API_KEY")
local threads = 0

function setup(thread)
  thread:set("offset", threads * 7919)
  threads = threads + 1
end

local requests, next_one
function init(args)
  requests = {}
  for n = 0, users - 1 do
    local headers = {["Content-Type"] = "application/json", ["X-User-ID"] = "bench-user-" .. n}
    if api_key and api_key ~= "" then headers["X-API-Key"] = api_key end
    requests[n + 1] = wrk.format("POST", nil, headers, body)
  end
  next_one = (offset or 0) % users
end

function request()
  next_one = next_one % users + 1
  return requests[next_one]
end
