-- Shared head of every fleet script (concatenated in front of each body).
-- KEYS[1] the breaker's state hash (also its pub/sub channel),
-- KEYS[2] the trip votes (a sorted set: host -> store ms),
-- KEYS[3] the probe lease (a string that expires by itself).
-- Time is the store's: TIME, never a host's clock.
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function int(v)
  return string.format('%.0f', v)
end

local function num(v)
  if v then return tonumber(v) or 0 end
  return 0
end

local function current()
  local f = redis.call('HMGET', KEYS[1], 'epoch', 'version', 'state', 'opened_at',
    'retry_at', 'reason', 'reopenings', 'isolations', 'disabled', 'leases')
  if not f[1] then return nil end
  return { epoch = f[1], version = num(f[2]), state = f[3] or 'closed',
    opened_at = num(f[4]), retry_at = num(f[5]), reason = f[6] or 'fresh',
    reopenings = num(f[7]), isolations = num(f[8]), disabled = num(f[9]),
    leases = num(f[10]) }
end

-- A new record: its epoch is the store's time in microseconds, so a record
-- created after the key vanished outranks every version of the old one.
local function fresh()
  return { epoch = int(tonumber(t[1]) * 1000000 + tonumber(t[2])), version = 0,
    state = 'closed', opened_at = 0, retry_at = 0, reason = 'fresh',
    reopenings = 0, isolations = 0, disabled = 0, leases = 0 }
end

local function fields(s)
  return { s.state, s.epoch, int(s.version), int(s.opened_at), int(s.retry_at),
    s.reason, int(s.reopenings), int(s.isolations), int(s.disabled), int(now) }
end

-- Status first, then the record (or 'missing'), then one extra value.
local function reply(status, s, extra)
  local r
  if s then r = fields(s) else r = { 'missing', '0', '0', '0', '0', '', '0', '0', '0', int(now) } end
  table.insert(r, 1, status)
  table.insert(r, tostring(extra or ''))
  return r
end

-- Every write bumps the version and is published to the hosts at once.
local function save(s)
  s.version = s.version + 1
  redis.call('HSET', KEYS[1], 'epoch', s.epoch, 'version', int(s.version),
    'state', s.state, 'opened_at', int(s.opened_at), 'retry_at', int(s.retry_at),
    'reason', s.reason, 'reopenings', int(s.reopenings),
    'isolations', int(s.isolations), 'disabled', int(s.disabled),
    'leases', int(s.leases))
  redis.call('PUBLISH', KEYS[1], table.concat(fields(s), ' '))
end

local function open_period(reopenings, open_ms, max_open_ms)
  local p = open_ms
  for _ = 1, reopenings do
    p = p * 2
    if p >= max_open_ms then return max_open_ms end
  end
  return math.min(p, max_open_ms)
end

