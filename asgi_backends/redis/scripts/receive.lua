-- Take the first unexpired entry from the lists in KEYS, in the order given
-- (the caller shuffles them for fairness). Expired entries met on the way are
-- dropped and their channels leave their groups. Key layout: see common.lua.
-- ARGV[1]: prefix
-- Returns the entry, or nil.
local now = now_ms()
for i = 1, #KEYS do
  while true do
    local entry = redis.call('LPOP', KEYS[i])
    if not entry then
      break
    end
    local expires, colon = entry_expires(entry)
    if expires > now then
      return entry
    end
    leave_groups(ARGV[1], entry_channel(entry, colon))
  end
end
return false
