-- Send one message to every member of a group living on this shard, each
-- within its own capacity; a full member misses the message (never an error).
-- Members whose earlier message expired unread leave the group first.
-- Key layout: see common.lua.
-- KEYS[1] Pgroup:<group>   KEYS[2] Pgroupcap:<group>   KEYS[3] Pstats:
-- ARGV: prefix, payload, expiry ms, default capacity
-- Returns {delivered, dropped because full}.
local prefix, payload = ARGV[1], ARGV[2]
local expiry, default_capacity = tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 1, #stale, 1000 do
  redis.call('HDEL', KEYS[2], unpack(stale, i, math.min(i + 999, #stale)))
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local capacities = {}
local pairs_list = redis.call('HGETALL', KEYS[2])
for i = 1, #pairs_list, 2 do
  capacities[pairs_list[i]] = tonumber(pairs_list[i + 1])
end
local ttl = tostring(expiry * 2)
local delivered, full = 0, 0
for _, channel in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local bang = string.find(channel, '!', 1, true)
  local queue = bang and string.sub(channel, 1, bang) or channel
  local capacity = capacities[channel] or default_capacity
  local length, dropped = trim_expired(prefix, prefix .. queue, now, capacity)
  -- A dropped entry may have been this member's: then it has left the group.
  if not dropped or redis.call('ZSCORE', KEYS[1], channel) then
    if append(prefix, queue, length, channel, payload, now, expiry, ttl, capacity) then
      delivered = delivered + 1
    else
      full = full + 1
    end
  end
end
if delivered > 0 then
  redis.call('HINCRBY', KEYS[3], 'messages_count', delivered)
end
if full > 0 then
  redis.call('HINCRBY', KEYS[3], 'channel_full_count', full)
end
return {delivered, full}
