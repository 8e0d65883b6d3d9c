-- Send one message (key layout: see common.lua).
-- KEYS[1] the list P<queue>   KEYS[2] Pstats:<queue>   KEYS[3] Pstats:
-- (<queue> is the channel, or its prefix "name!" for process-specific channels)
-- ARGV: prefix, queue, channel, payload, expiry ms, capacity
-- Returns 1 if queued, 0 if the list is at capacity.
local prefix, queue, channel, payload = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local expiry, capacity = tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()
local length = trim_expired(prefix, KEYS[1], now, capacity)
if append(prefix, queue, length, channel, payload, now, expiry, tostring(expiry * 2), capacity) then
  redis.call('HINCRBY', KEYS[3], 'messages_count', 1)
  return 1
end
redis.call('HINCRBY', KEYS[3], 'channel_full_count', 1)
return 0
