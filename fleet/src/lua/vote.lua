-- vote(host, quorum, window_ms, open_ms): a host tripped. The fleet opens
-- when `quorum` distinct hosts voted within the last `window_ms`.
local host, quorum, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local open_ms = tonumber(ARGV[4])
local s = current()
if s and (s.state == 'open' or s.disabled == 1) then return reply('unchanged', s) end
redis.call('ZADD', KEYS[2], now, host)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('PEXPIRE', KEYS[2], window)
local votes = redis.call('ZCARD', KEYS[2])
if votes < quorum then return reply('counted', s, votes) end
s = s or fresh()
s.state, s.opened_at, s.retry_at = 'open', now, now + open_ms
s.reason, s.reopenings = 'quorum', 0
redis.call('DEL', KEYS[2], KEYS[3])
save(s)
return reply('opened', s, votes)
