-- wrk script: POST the same body (the file named by BENCH_BODY_FILE) on every request.
-- BENCH_API_KEY and BENCH_USER_ID, when set, go out as X-API-Key and X-User-ID.
local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
wrk.headers["Content-Type"] = "application/json"
file:close()
local api_key, user_id = os.getenv("BENCH_API_KEY"), os.getenv("BENCH_USER_ID")
if api_key and api_key ~= "" then wrk.headers["X-API-Key"] = api_key end
if user_id and user_id ~= "" then wrk.headers["X-User-ID"] = user_id end
