--- Batch worker process: reads jobs from stdin, writes results to stdout.
-- Protocol: one JSON object per line each way. In: `{"id": N, "job": {...}}`.
-- Out: `{"id": N, "result": {...}}`. The worker lives for many jobs, so a batch pays the
-- interpreter start once per worker, not once per job. `print` and `io.write` go to stderr
-- so that nothing a job prints can corrupt the result stream.
-- @module actionqueue.storage.batch.worker
local worker = {}

--- The worker's main loop; returns when stdin is closed.
function worker.main()
  local cjson = require "cjson"
  local kinds = require "actionqueue.storage.batch.kinds"
  local out = io.stdout
  io.output(io.stderr)
  -- luacheck: push ignore 121 (print is redirected on purpose: stdout carries results)
  print = function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    io.stderr:write(table.concat(parts, "\t", 1, parts.n), "\n")
  end
  -- luacheck: pop
  for line in io.stdin:lines() do
    local ok, msg = pcall(cjson.decode, line)
    local reply
    if ok and type(msg) == "table" and type(msg.job) == "table" then
      -- cjson decodes every number as a float: give integral values back their integer type
      for k, v in pairs(msg.job) do
        if math.type(v) == "float" then msg.job[k] = math.tointeger(v) or v end
      end
      local res = kinds.run(msg.job)
      reply = cjson.encode({ id = msg.id, result = res })
    else
      reply = cjson.encode({ id = ok and type(msg) == "table" and msg.id or cjson.null,
        result = { status = "failed", error = "bad message to worker", error_kind = "InternalError" } })
    end
    out:write(reply, "\n")
    out:flush()
  end
end

return worker
