-- Gives back one request's cost taken by gcra.lua, for a request another limit refused: a
-- request that is not served spends nothing. GCRA's state only ever grows by one interval per
-- admitted request, so taking one off is an exact undo, whatever was charged in between; it never
-- goes below now (a rested bucket stays rested).
--
-- KEYS[1]  the bucket
-- ARGV[1]  emission interval in microseconds, as given to gcra.lua
-- Returns  1 when a cost was given back, 0 when the bucket was already rested.
local interval = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat <= now then
  return 0
end
local new_tat = tat - interval
if new_tat <= now then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return 1
