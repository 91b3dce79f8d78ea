-- restore(state, remaining_ms, reopenings, isolations, disabled): the record
-- vanished (FLUSHALL, eviction, a restart without persistence) while this
-- host knew the fleet open, isolated or disabled: write that view back under
-- a new epoch, unless another host already did.
if redis.call('EXISTS', KEYS[1]) == 1 then return reply('exists', current()) end
local s = fresh()
s.state = ARGV[1]
if s.state == 'open' then s.opened_at, s.retry_at = now, now + tonumber(ARGV[2]) end
s.reason = 'restored'
s.reopenings, s.isolations, s.disabled = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
save(s)
return reply('restored', s)
