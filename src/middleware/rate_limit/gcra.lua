-- GCRA (generic cell rate algorithm) in one atomic step, so instances sharing this Redis share
-- one limit without races. State is a single number per key: the theoretical arrival time
-- (TAT) of the next request, in microseconds of Redis's own clock (instances' clocks may differ;
-- Redis's is the one they share).
--
-- An instance takes a lease of up to `want` requests at once and spends them locally (lease.rs);
-- this script stays the only admitter: it grants no more than an exact GCRA would admit right
-- now. Unused requests of an expired lease come back first (`give_back`), never below now, so a
-- rested bucket stays rested. want = 1, give_back = 0 is the plain one-request check.
--
-- KEYS[1]  the bucket
-- ARGV[1]  emission interval in microseconds: one request's cost (60 s / per_minute)
-- ARGV[2]  burst: requests allowed back to back from a full bucket
-- ARGV[3]  want: requests to take at most (default 1)
-- ARGV[4]  give_back: unused requests of an earlier lease to return first (default 0)
-- Returns  {granted 0..want, remaining, retry_after_ms, reset_ms}; granted 0 is a refusal,
--          retry_after is then the wait for one request; reset is when the bucket is full.
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3] or '1')
local give_back = tonumber(ARGV[4] or '0')
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local stored = tonumber(redis.call('GET', KEYS[1]))
local tat = stored
if tat == nil or tat < now then
  tat = now
end
if give_back > 0 then
  tat = math.max(now, tat - give_back * interval)
end
local capacity = interval * burst
local granted = math.min(want, math.floor((now + capacity - tat) / interval))
if granted < 1 then
  if stored ~= nil and tat ~= stored then
    if tat <= now then
      redis.call('DEL', KEYS[1])
    else
      redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
    end
  end
  return {0, 0, math.ceil((tat + interval - capacity - now) / 1000), math.ceil((tat - now) / 1000)}
end
local new_tat = tat + granted * interval
-- '%d', not tostring: Lua 5.1 prints 16-digit numbers with 14 significant digits.
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {granted, math.floor((capacity - (new_tat - now)) / interval), 0, math.ceil((new_tat - now) / 1000)}
