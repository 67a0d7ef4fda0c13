-- wrk script: replay the request file named by $REQUESTS (written by hardening/traffic.py:
-- "kind<TAB>content-type<TAB>signature<TAB>timestamp<TAB>body" a line), in order, and count
-- the answers by status and, for 200, by what the body says. Run with -t1: one thread reads
-- the file in order. Past the last line it starts again and counts a wrap (a replayed valid
-- line is a stale repeat: the run is then flagged).
-- done() prints one line, "mixed-result {...}", for hardening/load.py.

local path = assert(os.getenv("REQUESTS"), "set REQUESTS to the request file")
local f = assert(io.open(path, "r"))

sent = 0
wraps = 0
statuses = {}
accepted = 0
stale = 0
ignored = 0

request = function()
  local line = f:read("*l")
  if not line then
    wraps = wraps + 1
    f:seek("set")
    line = f:read("*l")
  end
  sent = sent + 1
  local kind, ctype, sig, ts, body = line:match("([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)")
  return wrk.format("POST", "/webhook", {
    ["content-type"] = ctype,
    ["x-zm-signature"] = sig,
    ["x-zm-request-timestamp"] = ts,
  }, body)
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 then
    if body:find('"accepted"', 1, true) then
      accepted = accepted + 1
    elseif body:find('"stale"', 1, true) then
      stale = stale + 1
    else
      ignored = ignored + 1
    end
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local total = {}
  local t = threads[1]
  local parts = {}
  for status, n in pairs(t:get("statuses")) do
    table.insert(parts, string.format('"%d": %d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'mixed-result {"duration_us": %d, "requests": %d, "sent": %d, "wraps": %d, '
      .. '"accepted": %d, "stale": %d, "ignored": %d, "statuses": {%s}, '
      .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, '
      .. '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d}}\n',
    summary.duration, summary.requests, t:get("sent"), t:get("wraps"),
    t:get("accepted"), t:get("stale"), t:get("ignored"), table.concat(parts, ", "),
    e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
