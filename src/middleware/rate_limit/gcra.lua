-- GCRA (generic cell rate algorithm) in one atomic step, so instances sharing this Redis share
-- one limit without races. State is a single number per key: the theoretical arrival time
-- (TAT) of the next request, in microseconds of Redis's own clock (instances' clocks may differ;
-- Redis's is the one they share).
--
-- KEYS[1]  the bucket
-- ARGV[1]  emission interval in microseconds: one request's cost (60 s / per_minute)
-- ARGV[2]  burst: requests allowed back to back from a full bucket
-- Returns  {allowed 0|1, remaining, retry_after_ms, reset_ms}; reset is when the bucket is full.
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local capacity = interval * burst
local new_tat = tat + interval
local allow_at = new_tat - capacity
if allow_at > now then
  return {0, 0, math.ceil((allow_at - now) / 1000), math.ceil((tat - now) / 1000)}
end
-- '%d', not tostring: Lua 5.1 prints 16-digit numbers with 14 significant digits.
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((capacity - (new_tat - now)) / interval), 0, math.ceil((new_tat - now) / 1000)}
