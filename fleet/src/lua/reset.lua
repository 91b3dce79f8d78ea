-- reset(): close the fleet and start over (votes, backoff, isolations and
-- the lease cleared; the disabled flag kept).
local s = current() or fresh()
s.state, s.reason, s.reopenings, s.isolations = 'closed', 'reset', 0, 0
redis.call('DEL', KEYS[2], KEYS[3])
save(s)
return reply('applied', s)
