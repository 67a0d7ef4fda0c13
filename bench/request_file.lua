-- What the wrk scripts bench/replay.lua and hardening/mixed.lua share: the request file named
-- by $REQUESTS (one request a line, read in order), the threads' counters, and the figures
-- every result line carries. A script finds this module from its own path:
--
--   package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "?.lua;" .. package.path
--   local request_file = require("request_file")
--
-- Run the scripts with -t1, so that one thread reads the file in order.

local M = {}

-- Opens $REQUESTS; returns a function that gives its next line. Past the last line it starts
-- again from the top and counts a wrap: a replayed line is a stale repeat for the exporter
-- (cheaper to handle), so a wrap is a flaw of the run. Counts in the globals `sent` and `wraps`
-- of the thread, which figures() adds up.
function M.reader()
  local path = assert(os.getenv("REQUESTS"), "set REQUESTS to the request file")
  local f = assert(io.open(path, "r"))
  sent, wraps = 0, 0
  return function()
    local line = f:read("*l")
    if not line then
      wraps = wraps + 1
      f:seek("set")
      line = f:read("*l")
    end
    sent = sent + 1
    return line
  end
end

-- The threads, for done() to read their counters: use as the script's setup().
M.threads = {}

function M.setup(thread)
  table.insert(M.threads, thread)
end

-- The sum over the threads of their global `name` (a number).
function M.sum(name)
  local total = 0
  for _, thread in ipairs(M.threads) do
    total = total + thread:get(name)
  end
  return total
end

-- The JSON fields every result has, for done(summary, latency): wrk's counts and socket
-- errors, the lines sent and wraps, and the latency in microseconds.
function M.figures(summary, latency)
  local e = summary.errors
  return string.format(
    '"duration_us": %d, "requests": %d, "sent": %d, "wraps": %d, "status_errors": %d, '
      .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, '
      .. '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d}',
    summary.duration, summary.requests, M.sum("sent"), M.sum("wraps"), e.status,
    e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max)
end

return M
