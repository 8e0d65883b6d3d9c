-- Channels whose messages a blocking pop found expired leave their groups,
-- as they would had receive.lua dropped the entries (key layout: see common.lua).
-- ARGV[1]: prefix   ARGV[2..]: the channels of the expired entries
for i = 2, #ARGV do
  leave_groups(ARGV[1], ARGV[i])
end
return #ARGV - 1
