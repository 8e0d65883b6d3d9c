-- Take up to ARGV[2] unexpired entries from the lists in KEYS, one from each
-- list in turn (the caller shuffles them for fairness), so a busy list
-- cannot crowd the others out of a batch. Each list gives its entries in
-- order. Expired entries met on the way are dropped and their channels
-- leave their groups. Key layout: see common.lua.
-- ARGV[1]: prefix   ARGV[2]: most entries to take
-- Returns the entries (possibly none).
local prefix, wanted = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local taken, live = {}, {}
for i = 1, #KEYS do
  live[i] = KEYS[i]
end
while #taken < wanted and #live > 0 do
  local still = {}
  for _, key in ipairs(live) do
    if #taken >= wanted then
      break
    end
    while true do
      local entry = redis.call('LPOP', key)
      if not entry then
        break
      end
      local expires, colon = entry_expires(entry)
      if expires > now then
        taken[#taken + 1] = entry
        still[#still + 1] = key
        break
      end
      leave_groups(prefix, entry_channel(entry, colon))
    end
  end
  live = still
end
return taken
