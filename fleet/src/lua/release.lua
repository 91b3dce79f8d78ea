-- release(): one isolation fewer; the last one lets the record's own state
-- (closed, or open by quorum with its retry time) show again.
local s = current()
if not s or s.isolations == 0 then return reply('unchanged', s) end
s.isolations = s.isolations - 1
if s.isolations == 0 and s.state == 'closed' then s.reason = 'released' end
save(s)
return reply('applied', s)
