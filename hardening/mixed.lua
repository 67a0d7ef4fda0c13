-- wrk script: replay the request file named by $REQUESTS (written by hardening/traffic.py:
-- "kind<TAB>content-type<TAB>signature<TAB>timestamp<TAB>body" a line), in order, with
-- bench/request_file.lua, and count the answers by status and, for 200, by what the body says.
-- Run with -t1: one thread reads the file in order; a wrap (a replayed valid line is a stale
-- repeat) flags the run.
-- done() prints one line, "mixed-result {...}", for hardening/load.py.

local here = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$")
package.path = here .. "../bench/?.lua;" .. package.path
local request_file = require("request_file")

local next_line = request_file.reader()

statuses = {}
accepted = 0
stale = 0
ignored = 0

request = function()
  local kind, ctype, sig, ts, body = next_line():match("([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)")
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

setup = request_file.setup

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(request_file.threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    table.insert(parts, string.format('"%d": %d', status, n))
  end
  io.write(string.format(
    'mixed-result {%s, "accepted": %d, "stale": %d, "ignored": %d, "statuses": {%s}}\n',
    request_file.figures(summary, latency), request_file.sum("accepted"),
    request_file.sum("stale"), request_file.sum("ignored"), table.concat(parts, ", ")))
end
