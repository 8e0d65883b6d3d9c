-- List a group's live members on this shard. Key layout: see common.lua.
-- KEYS[1] Pgroup:<group>
-- Returns the member channel names.
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now_ms(), '+inf')
