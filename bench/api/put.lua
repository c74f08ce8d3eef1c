-- wrk script for bench/api/run.sh: every request is a PUT that creates a new
-- small gallery (@PREFIX@<thread><n>), so the benchmark measures writes, not
-- replacements of one row. run.sh fills in @PREFIX@ and @QUERY@.
local counter = 0
local id = 0
local threads = {}

function setup(thread)
  id = id + 1
  thread:set("tid", id)
  table.insert(threads, thread)
end

function init(args)
  tid = tid or 0
end

local body = '{"location": "eastus", "tags": {"bench": "put"}}'

function request()
  counter = counter + 1
  local path = "@PREFIX@" .. tid .. "x" .. counter .. "?@QUERY@"
  if string.sub(wrk.path, 1, 5) == "/put/" then
    path = "/put/" .. tid .. "x" .. counter
  end
  return wrk.format("PUT", path, nil, body)
end
