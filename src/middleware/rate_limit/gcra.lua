-- GCRA (generic cell rate algorithm) in one atomic step, so instances sharing this Redis share
-- one limit without races. State is a single number per key: the theoretical arrival time
-- (TAT) of the next request, in microseconds of Redis's own clock (instances' clocks may differ;
-- Redis's is the one they share).
--
-- An instance serves requests on credit and from leases, and calls this off the requests' path
-- (lease.rs): first the requests it already served on credit are charged, whatever the bucket
-- holds (they were served; the bucket pays for them by refusing longer), then a lease of up to
-- `want` requests is granted, no more than an exact GCRA would admit right now.
--
-- KEYS[1]  the bucket
-- ARGV[1]  emission interval in microseconds: one request's cost (60 s / per_minute)
-- ARGV[2]  burst: requests allowed back to back from a full bucket
-- ARGV[3]  want: requests to grant at most
-- ARGV[4]  owed: requests served on credit, charged first
-- Returns  {granted 0..want, remaining, wait_ms}: the room left after this answer and, when
--          there is none, the wait until one request would be granted.
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local owed = tonumber(ARGV[4])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
tat = tat + owed * interval
local capacity = interval * burst
local granted = math.max(0, math.min(want, math.floor((now + capacity - tat) / interval)))
tat = tat + granted * interval
if tat > now then
  -- '%d', not tostring: Lua 5.1 prints 16-digit numbers with 14 significant digits.
  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
end
local remaining = math.max(0, math.floor((now + capacity - tat) / interval))
local wait_ms = 0
if remaining == 0 then
  wait_ms = math.ceil((tat + interval - capacity - now) / 1000)
end
return {granted, remaining, wait_ms}
