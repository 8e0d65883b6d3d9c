-- Statistics of one list after dropping its expired head. Key layout: see common.lua.
-- KEYS[1] the list P<queue>   KEYS[2] Pstats:<queue>   ARGV[1] prefix
-- Returns {pending, messages_count, channel_full_count, now ms, head expiry ms or 0}.
local now = now_ms()
trim_expired(ARGV[1], KEYS[1], now, 0)
local head = redis.call('LINDEX', KEYS[1], 0)
local head_expires = 0
if head then
  head_expires = entry_expires(head)
end
local counts = redis.call('HMGET', KEYS[2], 'messages_count', 'channel_full_count')
return {redis.call('LLEN', KEYS[1]), tonumber(counts[1]) or 0, tonumber(counts[2]) or 0, now, head_expires}
