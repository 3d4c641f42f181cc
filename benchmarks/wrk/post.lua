-- POST one JSON body (the file named by WRK_BODY) on every request, timing each request
-- itself, and print one line "WRK_JSON {...}" at the end that benchmarks/serving.py reads.
--
--   WRK_BODY=body.json wrk -t8 -c8 -d10s --latency -s benchmarks/wrk/post.lua URL
--
-- Run it with as many threads as connections (-t N -c N): each wrk thread then has one
-- connection, so request() and response() alternate and their difference is that request's
-- latency ("raw": what the closed-loop clients saw). wrk's own percentiles ("corrected") are
-- reported beside them: before done() runs, wrk adds synthetic samples for every response
-- slower than twice the mean interval (its coordinated-omission correction, stats_correct),
-- so one 200 ms stall at 8 clients becomes ~500 samples between 3 and 200 ms.
-- With WRK_TIMELINE=file, every request's start (CLOCK_MONOTONIC, microseconds: the clock of
-- Python's time.monotonic), latency (microseconds) and status go to that file, one a line.
local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } wb_timespec;
int clock_gettime(int clk_id, wb_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local ts = ffi.new("wb_timespec")
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local path = os.getenv("WRK_BODY")
local file = assert(io.open(path, "rb"), "WRK_BODY: cannot open " .. tostring(path))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

-- per thread (globals, so done() can read them with thread:get)
prepared, started, latencies, starts, codes, count, statuses = nil, nil, {}, {}, {}, 0, {}

function init(args)
  prepared = wrk.format()
end

function request()
  started = now_us()
  return prepared
end

function response(status, headers, body)
  if started ~= nil then
    count = count + 1
    latencies[count] = now_us() - started
    starts[count] = started
    codes[count] = status
    started = nil
  end
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local all, by_code = {}, {}
  local timeline = os.getenv("WRK_TIMELINE")
  local out = timeline and assert(io.open(timeline, "w"), "WRK_TIMELINE: cannot write")
  for _, thread in ipairs(threads) do
    local mine = thread:get("latencies") or {}
    for i = 1, #mine do
      all[#all + 1] = mine[i]
    end
    for code, n in pairs(thread:get("statuses") or {}) do
      by_code[code] = (by_code[code] or 0) + n
    end
    if out then
      local t0, st = thread:get("starts") or {}, thread:get("codes") or {}
      for i = 1, #mine do
        out:write(string.format("%.1f %.1f %d\n", t0[i], mine[i], st[i]))
      end
    end
  end
  if out then
    out:close()
  end
  table.sort(all)
  local sum = 0
  for i = 1, #all do
    sum = sum + all[i]
  end
  local function raw(q)
    if #all == 0 then
      return -1
    end
    return all[math.max(1, math.ceil(q / 100 * #all))]
  end
  local qs = { 50, 90, 99, 99.9 }
  local r, c, s = {}, {}, {}
  for _, q in ipairs(qs) do
    r[#r + 1] = string.format('"%s": %.1f', tostring(q), raw(q))
    c[#c + 1] = string.format('"%s": %d', tostring(q), latency:percentile(q))
  end
  for code, n in pairs(by_code) do
    s[#s + 1] = string.format('"%s": %d', code, n)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d, "timed": %d, "raw_mean_us": %.1f, "raw_max_us": %.1f, '
      .. '"raw_us": {%s}, "corrected_us": {%s}, "corrected_max_us": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    #all, #all > 0 and sum / #all or -1, all[#all] or -1, table.concat(r, ", "),
    table.concat(c, ", "), latency.max, table.concat(s, ", ")))
end
