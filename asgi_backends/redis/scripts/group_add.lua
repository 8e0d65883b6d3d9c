-- Add a channel to a group, or renew its membership. Key layout: see common.lua.
-- KEYS[1] Pgroup:<group>   KEYS[2] Pgroupcap:<group>   KEYS[3] Pmember:<channel>
-- ARGV: group, channel, group expiry ms, the channel's capacity
local group, channel = ARGV[1], ARGV[2]
local group_expiry = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now_ms() + group_expiry, channel)
redis.call('PEXPIRE', KEYS[1], group_expiry)
redis.call('HSET', KEYS[2], channel, ARGV[4])
redis.call('PEXPIRE', KEYS[2], group_expiry)
redis.call('SADD', KEYS[3], group)
redis.call('PEXPIRE', KEYS[3], group_expiry)
return 1
