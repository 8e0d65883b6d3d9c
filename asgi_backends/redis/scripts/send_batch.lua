-- Send a batch of messages: what send.lua does for one, for many, in one
-- call (key layout: see common.lua).
-- KEYS[1] Pstats:
-- ARGV: prefix, expiry ms, then per message four values:
--       queue, channel, payload, capacity
-- (<queue> is the channel, or its prefix "name!" for process-specific channels)
-- Returns one 1 (queued) or 0 (refused: at capacity) per message, in order.
--
-- Once a message to a list is refused, the later ones to that list in the
-- batch are refused too (not counted again): a caller retrying the refused
-- ones keeps the list's order. The work per list (expiry check, TTL
-- renewal, counters) is done once per list; each message costs a push.
local prefix = ARGV[1]
local expiry = tonumber(ARGV[2])
local ttl = tostring(expiry * 2)
local now = now_ms()
local stamp = now + expiry
local lists, order, results = {}, {}, {}
for i = 3, #ARGV, 4 do
  local queue, channel, capacity = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 3])
  local list = lists[queue]
  if not list then
    local length = trim_expired(prefix, prefix .. queue, now, capacity)
    list = {length = length, entries = {}, forced = false, refused = false, full = 0}
    lists[queue] = list
    order[#order + 1] = queue
  end
  if not list.refused and list.length >= capacity and not list.forced then
    -- Full: make sure no expired entry is holding the room (this batch's
    -- entries are not pushed yet, so count them on top).
    list.length = trim_expired(prefix, prefix .. queue, now, 0) + #list.entries
    list.forced = true
  end
  if list.refused or list.length >= capacity then
    if not list.refused then
      list.refused, list.full = true, 1
    end
    results[#results + 1] = 0
  else
    list.entries[#list.entries + 1] = stamp .. ':' .. channel .. ':' .. ARGV[i + 2]
    list.length = list.length + 1
    results[#results + 1] = 1
  end
end

local sent, full = 0, 0
for _, queue in ipairs(order) do
  local list, key, stats = lists[queue], prefix .. queue, prefix .. 'stats:' .. queue
  local count = #list.entries
  if count > 0 then
    push_entries(key, list.entries)
    redis.call('PEXPIRE', key, ttl)
    redis.call('HINCRBY', stats, 'messages_count', count)
  end
  if list.full > 0 then
    redis.call('HINCRBY', stats, 'channel_full_count', list.full)
  end
  redis.call('PEXPIRE', stats, ttl)
  sent, full = sent + count, full + list.full
end
if sent > 0 then
  redis.call('HINCRBY', KEYS[1], 'messages_count', sent)
end
if full > 0 then
  redis.call('HINCRBY', KEYS[1], 'channel_full_count', full)
end
return results
