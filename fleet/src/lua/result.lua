-- result(token, ok, open_ms, max_open_ms): the probe's outcome. Only the
-- lease that is out counts: an expired lease, another host's or one from an
-- older version changes nothing. Every change of the record deletes the lease.
local token, ok = ARGV[1], ARGV[2] == '1'
local open_ms, max_open_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
local s = current()
if not s or redis.call('GET', KEYS[3]) ~= token then return reply('stale', s) end
redis.call('DEL', KEYS[3])
if ok then
  s.state, s.reason, s.reopenings = 'closed', 'probe', 0
  redis.call('DEL', KEYS[2])
else
  s.reopenings = s.reopenings + 1
  s.opened_at, s.reason = now, 'reopened'
  s.retry_at = now + open_period(s.reopenings, open_ms, max_open_ms)
end
save(s)
return reply('applied', s)
