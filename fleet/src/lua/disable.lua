-- disable(flag): while disabled nothing opens the fleet; disabling closes a
-- fleet that is not isolated and clears its votes and backoff.
local s = current() or fresh()
if ARGV[1] == '1' then
  s.disabled = 1
  if s.isolations == 0 then
    s.state, s.reason, s.reopenings = 'closed', 'disabled', 0
    redis.call('DEL', KEYS[2], KEYS[3])
  end
else
  s.disabled = 0
end
save(s)
return reply('applied', s)
