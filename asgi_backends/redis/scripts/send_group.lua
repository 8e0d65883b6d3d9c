-- Send one message to every member of a group living on this shard, each
-- within its own capacity; a full member misses the message (never an error).
-- Members whose earlier message expired unread leave the group first.
-- Key layout: see common.lua.
-- KEYS[1] Pgroup:<group>   KEYS[2] Pgroupcap:<group>   KEYS[3] Pstats:
-- ARGV: prefix, payload, expiry ms, default capacity
-- Returns {delivered, dropped because full}.
--
-- Members are mostly process-specific channels of a few interface servers,
-- so the work per list (expiry check, TTL renewal, counters) is done once
-- per list, and a list's entries go out together (push_entries).
local prefix, payload = ARGV[1], ARGV[2]
local expiry, default_capacity = tonumber(ARGV[3]), tonumber(ARGV[4])
local ttl = tostring(expiry * 2)
local now = now_ms()
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 1, #stale, 1000 do
  redis.call('HDEL', KEYS[2], unpack(stale, i, math.min(i + 999, #stale)))
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local capacities = {}
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do
  capacities[flat[i]] = tonumber(flat[i + 1])
end

local lists, order = {}, {}
local head, tail = (now + expiry) .. ':', ':' .. payload
for _, channel in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local bang = string.find(channel, '!', 1, true)
  local queue = bang and string.sub(channel, 1, bang) or channel
  local capacity = capacities[channel] or default_capacity
  local list = lists[queue]
  if not list then
    local key = prefix .. queue
    local length, dropped = trim_expired(prefix, key, now, capacity)
    list = {key = key, length = length, dropped = dropped, forced = false, full = 0, entries = {}}
    lists[queue] = list
    order[#order + 1] = queue
  end
  if list.length >= capacity and not list.forced then
    -- Full: make sure no expired entry is holding the room.
    local length, dropped = trim_expired(prefix, list.key, now, 0)
    -- This call's entries are not pushed yet: count them on top.
    list.length, list.forced = length + #list.entries, true
    list.dropped = list.dropped or dropped
  end
  -- A dropped entry may have been this member's: then it has left the group.
  if not list.dropped or redis.call('ZSCORE', KEYS[1], channel) then
    if list.length < capacity then
      list.entries[#list.entries + 1] = head .. channel .. tail
      list.length = list.length + 1
    else
      list.full = list.full + 1
    end
  end
end

local delivered, full = 0, 0
for _, queue in ipairs(order) do
  local list, stats = lists[queue], prefix .. 'stats:' .. queue
  local sent = #list.entries
  if sent > 0 then
    push_entries(list.key, list.entries)
    redis.call('PEXPIRE', list.key, ttl)
    redis.call('HINCRBY', stats, 'messages_count', sent)
  end
  if list.full > 0 then
    redis.call('HINCRBY', stats, 'channel_full_count', list.full)
  end
  if sent > 0 or list.full > 0 then
    redis.call('PEXPIRE', stats, ttl)
  end
  delivered, full = delivered + sent, full + list.full
end
if delivered > 0 then
  redis.call('HINCRBY', KEYS[3], 'messages_count', delivered)
end
if full > 0 then
  redis.call('HINCRBY', KEYS[3], 'channel_full_count', full)
end
return {delivered, full}
