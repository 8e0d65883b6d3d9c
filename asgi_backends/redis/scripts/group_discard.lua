-- Remove a channel from a group. Key layout: see common.lua.
-- KEYS[1] Pgroup:<group>   KEYS[2] Pgroupcap:<group>   KEYS[3] Pmember:<channel>
-- ARGV: group, channel
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
