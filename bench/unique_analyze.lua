-- wrk script: POST /api/analyze with a learner text no other request of this run uses, so the
-- cache never answers and every request goes upstream. Usage: wrk ... -s unique_analyze.lua URL -- RUNID
-- BENCH_API_KEY and BENCH_USER_ID, when set, go out as X-API-Key and X-User-ID.
local threads = 0

function setup(thread)
  -- Runs in the main Lua state; each thread gets its own number for unique texts.
  thread:set("thread_number", threads)
  threads = threads + 1
end

function init(args)
  run_id = args[1] or tostring(os.time())
  sent = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local api_key, user_id = os.getenv("BENCH_API_KEY"), os.getenv("BENCH_USER_ID")
  if api_key and api_key ~= "" then wrk.headers["X-API-Key"] = api_key end
  if user_id and user_id ~= "" then wrk.headers["X-User-ID"] = user_id end
end

function request()
  sent = sent + 1
  local body = string.format(
    '{"text":"I go to the store yesterday %s-%d-%d.","user_id":"bench"}', run_id, thread_number, sent)
  return wrk.format(nil, "/api/analyze", nil, body)
end
