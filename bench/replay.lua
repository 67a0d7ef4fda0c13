-- wrk script: replay pre-signed webhook requests, one per line of the file named by $REQUESTS
-- ("signature<TAB>timestamp<TAB>body", written by bench/events.py), in order, with
-- bench/request_file.lua (run with -t1; a wrap is a flaw of the run for bench/ingest.py).
-- done() prints one line, "replay-result {...}", for bench/ingest.py to parse.

package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "?.lua;" .. package.path
local request_file = require("request_file")

local next_line = request_file.reader()
local webhook = os.getenv("WEBHOOK_PATH") or "/webhook"

request = function()
  local sig, ts, body = next_line():match("([^\t]*)\t([^\t]*)\t(.*)")
  return wrk.format("POST", webhook, {
    ["content-type"] = "application/json",
    ["x-zm-signature"] = sig,
    ["x-zm-request-timestamp"] = ts,
  }, body)
end

setup = request_file.setup

function done(summary, latency, requests)
  io.write("replay-result {" .. request_file.figures(summary, latency) .. "}\n")
end
