-- wrk script: replay pre-signed webhook requests, one per line of the file named by $REQUESTS
-- ("signature<TAB>timestamp<TAB>body", written by bench/events.py), in order.
--
-- Run with -t1 so that the file is read in order by one thread. Past the last line it starts
-- again from the top and counts a wrap: a replayed line is a stale repeat for the exporter
-- (cheaper to handle), so bench/ingest.py treats a wrap as a flaw of the run.
-- done() prints one line, "replay-result {...}", for bench/ingest.py to parse.

local path = os.getenv("REQUESTS")
local webhook = os.getenv("WEBHOOK_PATH") or "/webhook"
local f = assert(io.open(assert(path, "set REQUESTS to the request file"), "r"))

lines = 0
wraps = 0

request = function()
  local line = f:read("*l")
  if not line then
    wraps = wraps + 1
    f:seek("set")
    line = f:read("*l")
  end
  lines = lines + 1
  local sig, ts, body = line:match("([^\t]*)\t([^\t]*)\t(.*)")
  return wrk.format("POST", webhook, {
    ["content-type"] = "application/json",
    ["x-zm-signature"] = sig,
    ["x-zm-request-timestamp"] = ts,
  }, body)
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local sent, wrapped = 0, 0
  for _, thread in ipairs(threads) do
    sent = sent + thread:get("lines")
    wrapped = wrapped + thread:get("wraps")
  end
  local e = summary.errors
  io.write(string.format(
    'replay-result {"duration_us": %d, "requests": %d, "sent": %d, "wraps": %d, '
      .. '"status_errors": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"timeouts": %d, "latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, '
      .. '"max": %d}}\n',
    summary.duration, summary.requests, sent, wrapped,
    e.status, e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
