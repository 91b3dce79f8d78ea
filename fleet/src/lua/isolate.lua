-- isolate(): hold the fleet open until every isolation is released or reset.
local s = current() or fresh()
s.isolations = s.isolations + 1
redis.call('DEL', KEYS[3])
save(s)
return reply('applied', s)
