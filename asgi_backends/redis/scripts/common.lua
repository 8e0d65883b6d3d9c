-- Helpers prepended to every other script of the Redis channel layer
-- (asgi_backends/redis/scripts.py joins them; Redis sees one script).
--
-- Key layout on each shard, with P the layer's prefix (default "asgi:"):
--   P<name>            list of entries for channel <name>, or for every
--                      process-specific channel starting with <name> when
--                      <name> ends in "!". RPUSH to send, LPOP/BLPOP to receive.
--                      Entry: "<expires at, ms since epoch>:<channel>:<payload>".
--                      TTL: twice the message expiry, renewed on every push,
--                      so abandoned lists vanish but expired heads stay long
--                      enough to be noticed (see leave_groups).
--   Pstats:<name>      hash messages_count / channel_full_count for one list.
--   Pstats:            hash messages_count / channel_full_count for the shard.
-- Channel names cannot hold ':', so only lists lack a ':' after P.
--   Pgroup:<group>     sorted set: member channel -> membership expiry (ms).
--   Pgroupcap:<group>  hash: member channel -> its capacity (set by group_add,
--                      since capacity patterns live in Python, not here).
--   Pmember:<channel>  set of the groups <channel> is in (on the channel's
--                      shard, like the group keys listing it).
-- Times come from the server clock (TIME), so clients' clocks never matter.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Expiry of an entry, and where its first ':' is.
local function entry_expires(entry)
  local colon = string.find(entry, ':', 1, true)
  return tonumber(string.sub(entry, 1, colon - 1)), colon
end

local function entry_channel(entry, colon)
  local second = string.find(entry, ':', colon + 1, true)
  return string.sub(entry, colon + 1, second - 1)
end

-- A message to <channel> expired unread: the channel leaves all its groups.
local function leave_groups(prefix, channel)
  local member_key = prefix .. 'member:' .. channel
  local groups = redis.call('SMEMBERS', member_key)
  for _, group in ipairs(groups) do
    redis.call('ZREM', prefix .. 'group:' .. group, channel)
    redis.call('HDEL', prefix .. 'groupcap:' .. group, channel)
  end
  if #groups > 0 then
    redis.call('DEL', member_key)
  end
end

-- Drop the expired entries at the head of a list (entries are in expiry
-- order, so only the head needs looking at). Returns the list's length
-- and whether anything was dropped.
--
-- Reading the head costs more than the rest of a push, so a list shorter
-- than <capacity> is looked at only when its length is a power of two: a
-- reader that keeps up leaves nothing behind (no look at all), and an
-- abandoned list is still looked at before its backlog doubles. A full list
-- is always looked at, so expired entries never hold capacity. Pass 0 to
-- always look.
local function trim_expired(prefix, key, now, capacity)
  local length = redis.call('LLEN', key)
  if length == 0 or (length < capacity and bit.band(length, length - 1) ~= 0) then
    return length, false
  end
  local dropped = false
  while length > 0 do
    local head = redis.call('LINDEX', key, 0)
    local expires, colon = entry_expires(head)
    if expires > now then
      break
    end
    redis.call('LPOP', key)
    leave_groups(prefix, entry_channel(head, colon))
    length = length - 1
    dropped = true
  end
  return length, dropped
end

-- RPUSH <entries> onto list <key>, 1000 at a time (unpack's stack limit):
-- one call per entry was most of a large send's time.
local function push_entries(key, entries)
  local count = #entries
  for i = 1, count, 1000 do
    redis.call('RPUSH', key, unpack(entries, i, math.min(i + 999, count)))
  end
end

-- Append an entry to list P<queue> whose current length is known; true if
-- there was room. <ttl> is twice <expiry>, as a string (converted once).
local function append(prefix, queue, length, channel, payload, now, expiry, ttl, capacity)
  local key, stats = prefix .. queue, prefix .. 'stats:' .. queue
  if length >= capacity then
    redis.call('HINCRBY', stats, 'channel_full_count', 1)
    redis.call('PEXPIRE', stats, ttl)
    return false
  end
  redis.call('RPUSH', key, (now + expiry) .. ':' .. channel .. ':' .. payload)
  redis.call('PEXPIRE', key, ttl)
  redis.call('HINCRBY', stats, 'messages_count', 1)
  redis.call('PEXPIRE', stats, ttl)
  return true
end
