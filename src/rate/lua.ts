// The one script per message and subject: reads the subject's counters, decides which thresholds
// the message would take past their limit, and (mode "record", unless a blocking threshold or a
// suspension defers the message) counts it. Atomic, so concurrent gateway nodes never overshoot;
// time from Redis TIME, so node clocks do not matter; every key it writes gets a TTL.
//
// KEYS: 1..n  per-window counter hashes   (field "<bucket>:<code>", code m o f x s)
//       n+1   distinct external recipients (ZSET recipient -> last seen, ms)
//       n+2   baseline hash (a: average, n: periods seen, h: current period, c: its count)
//       n+3   hold (a blocking threshold fired: later MAILs deferred at once)
//       n+4   suspension
// ARGV: mode, n, buckets, cap, window ms x n, baseline (period, decay, factor, floor, flag,
//       suspends, ttl), suspension ttl, suspension blocks, increments (m o f x s), e, recipients x e,
//       thresholds count, then per threshold: metric (1..6), window (1..n), limit, blocks,
//       suspends, symbol, hold ttl
// Returns: { committed, suspension, hold, baseline current, baseline average, {fired...}, {counts} }
export const RATE_SCRIPT = `
local mode = ARGV[1]
local n = tonumber(ARGV[2])
local B = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local win = {}
local maxWin = 0
for i = 1, n do
  win[i] = tonumber(ARGV[4 + i])
  if win[i] > maxWin then maxWin = win[i] end
end
local p = 5 + n
local function arg() local v = ARGV[p]; p = p + 1; return v end
local bPeriod = tonumber(arg())
local bDecay = tonumber(arg())
local bFactor = tonumber(arg())
local bFloor = tonumber(arg())
local bFlag = tonumber(arg())
local bSuspends = tonumber(arg())
local bTtl = tonumber(arg())
local suspendTtl = tonumber(arg())
local suspendBlocks = tonumber(arg())
local codes = { 'm', 'o', 'f', 'x', 's' }
local slot = { m = 1, o = 3, f = 4, x = 5, s = 6 }
local inc = {}
for i = 1, 5 do inc[i] = tonumber(arg()) end
local e = tonumber(arg())
local rcpts = {}
for i = 1, e do rcpts[i] = arg() end
local tn = tonumber(arg())
local th = {}
for i = 1, tn do
  th[i] = { metric = tonumber(arg()), w = tonumber(arg()), limit = tonumber(arg()), blocks = tonumber(arg()),
            suspends = tonumber(arg()), symbol = arg(), holdTtl = tonumber(arg()) }
end
local record = mode == 'record'
local kR, kB, kHold, kSusp = KEYS[n + 1], KEYS[n + 2], KEYS[n + 3], KEYS[n + 4]

-- last time each recipient of this message was seen (-1: never, or forgotten)
local seen = {}
for i = 1, e do
  local s = redis.call('ZSCORE', kR, rcpts[i])
  seen[i] = s and tonumber(s) or -1
end

local counts, stale = {}, {}
for w = 1, n do
  local size = math.ceil(win[w] / B)
  local cur = math.floor(now / size)
  local c = { 0, 0, 0, 0, 0, 0 }
  local old = {}
  local flat = redis.call('HGETALL', KEYS[w])
  for j = 1, #flat, 2 do
    local f = flat[j]
    local sep = string.find(f, ':', 1, true)
    local bucket = tonumber(string.sub(f, 1, sep - 1))
    if bucket > cur - B then
      local k = slot[string.sub(f, sep + 1)]
      if k then c[k] = c[k] + tonumber(flat[j + 1]) end
    else
      old[#old + 1] = f
    end
  end
  c[2] = redis.call('ZCOUNT', kR, '(' .. (now - win[w]), '+inf')
  if record then
    c[1] = c[1] + inc[1]
    c[3] = c[3] + inc[2]
    c[4] = c[4] + inc[3]
    c[5] = c[5] + inc[4]
    c[6] = c[6] + inc[5]
    for i = 1, e do
      if seen[i] <= now - win[w] then c[2] = c[2] + 1 end
    end
  end
  counts[w] = c
  stale[w] = old
end

-- baseline: a moving average of distinct external recipients per period
local avg, nper, bcur, period = 0, 0, 0, 0
if bFlag > 0 then
  period = math.floor(now / bPeriod)
  local b = redis.call('HMGET', kB, 'a', 'n', 'h', 'c')
  if b[3] then
    avg = tonumber(b[1]); nper = tonumber(b[2]); bcur = tonumber(b[4])
    local h = tonumber(b[3])
    if h < period then
      local alpha = math.max(1 / (nper + 1), 1 - bDecay)
      avg = avg + alpha * (bcur - avg)
      nper = nper + 1
      local gap = period - h - 1
      while gap > 0 and 1 / (nper + 1) > 1 - bDecay do
        avg = avg * (1 - 1 / (nper + 1)); nper = nper + 1; gap = gap - 1
      end
      if gap > 0 then avg = avg * bDecay ^ gap; nper = nper + gap end
      bcur = 0
    end
  end
  if record then
    local start = period * bPeriod
    for i = 1, e do
      if seen[i] < start then bcur = bcur + 1 end
    end
  end
end

local susp = redis.call('GET', kSusp)
local fired = {}
local blocks, suspends, holdValue, holdTtl, suspendReason = false, false, nil, 0, nil
if record then
  -- a threshold fires for a message that adds to its metric and takes (or keeps) it past the limit
  local adds = { inc[1], e, inc[2], inc[3], inc[4], inc[5] }
  for i = 1, tn do
    local x = th[i]
    local v = counts[x.w][x.metric]
    if adds[x.metric] > 0 and v > x.limit then
      fired[#fired + 1] = i - 1
      if x.blocks == 1 and not blocks then
        blocks = true
        holdValue = x.symbol .. '|' .. v .. '|' .. x.limit .. '|' .. win[x.w]
        holdTtl = x.holdTtl
      end
      if x.suspends == 1 and not suspends then
        suspends = true
        suspendReason = x.symbol .. '|' .. now .. '|' .. v .. ' > ' .. x.limit .. ' in ' .. win[x.w] .. 'ms'
      end
    end
  end
  if bFlag > 0 and e > 0 and bcur > bFloor and bcur > bFactor * avg then
    fired[#fired + 1] = -1
    if bFlag == 2 and not blocks then
      blocks = true
      holdValue = 'RATE_BASELINE_JUMP|' .. bcur .. '|' .. tostring(bFactor * avg) .. '|' .. bPeriod
      holdTtl = math.ceil(bPeriod / B)
    end
    if bSuspends == 1 and not suspends then
      suspends = true
      suspendReason = 'RATE_BASELINE_JUMP|' .. now .. '|' .. bcur .. ' > ' .. bFactor .. ' x ' .. tostring(avg) .. ' per ' .. bPeriod .. 'ms'
    end
  end
  if suspends and not susp then
    susp = suspendReason
    if suspendTtl > 0 then redis.call('SET', kSusp, susp, 'PX', suspendTtl) else redis.call('SET', kSusp, susp) end
  end
  if susp and suspendBlocks == 1 then blocks = true end
  if holdValue and holdTtl > 0 then redis.call('SET', kHold, holdValue, 'PX', holdTtl) end
end

local committed = 0
if record and not blocks then
  committed = 1
  for w = 1, n do
    local size = math.ceil(win[w] / B)
    local cur = math.floor(now / size)
    if #stale[w] > 0 then redis.call('HDEL', KEYS[w], unpack(stale[w])) end
    for k = 1, 5 do
      if inc[k] > 0 then redis.call('HINCRBY', KEYS[w], cur .. ':' .. codes[k], inc[k]) end
    end
    redis.call('PEXPIRE', KEYS[w], win[w] + size)
  end
  if e > 0 then
    local z = {}
    for i = 1, e do z[#z + 1] = now; z[#z + 1] = rcpts[i] end
    redis.call('ZADD', kR, unpack(z))
    redis.call('ZREMRANGEBYSCORE', kR, '-inf', now - maxWin)
    local card = redis.call('ZCARD', kR)
    if card > cap then redis.call('ZREMRANGEBYRANK', kR, 0, card - cap - 1) end
    redis.call('PEXPIRE', kR, maxWin)
  end
  if bFlag > 0 then
    redis.call('HSET', kB, 'a', tostring(avg), 'n', nper, 'h', period, 'c', bcur)
    redis.call('PEXPIRE', kB, bTtl)
  end
end

local hold = redis.call('GET', kHold)
local flat = {}
for w = 1, n do
  for k = 1, 6 do flat[#flat + 1] = counts[w][k] end
end
return { committed, susp or '', hold or '', bcur, tostring(avg), fired, flat }
`;
