-- acquire(host, lease_ms): the one probe of the fleet. Granted to one host
-- once the open period has passed and no lease is out; the lease expires by
-- itself, so a host that died while probing holds it for lease_ms at most.
local host, lease_ms = ARGV[1], tonumber(ARGV[2])
local s = current()
if not s or s.state ~= 'open' or s.isolations > 0 or s.disabled == 1 then
  return reply('nolease', s)
end
if now < s.retry_at then return reply('wait', s, int(s.retry_at - now)) end
local token = s.epoch .. ':' .. int(s.version) .. ':' .. int(s.leases + 1) .. ':' .. host
if not redis.call('SET', KEYS[3], token, 'NX', 'PX', lease_ms) then
  return reply('busy', s, redis.call('PTTL', KEYS[3]))
end
s.leases = s.leases + 1
redis.call('HSET', KEYS[1], 'leases', int(s.leases))
return reply('granted', s, token)
