--- Batch worker process: reads jobs from stdin, writes results to stdout.
-- Line protocol, one line per job each way (the runner sends jobs in small batches, one
-- write per batch; stdin is buffered, so a worker wakes once per batch):
--
-- * in: `ID TAB JOBJSON` (the job's plain fields, see `pool`);
-- * out: `ID TAB STATUS TAB SECONDS TAB BYTES TAB TAIL` where `TAIL` is the job's report
--   entry as written to the journal, from `"status"` on, without braces
--   (`report.encode_tail`): the runner adds the job's `index`/`input`/`kind`/`output` in
--   front and never re-encodes the entry; for an `ok` job it does not even decode it (the
--   other fields are decoded when first read, see `report.set_tail`). `SECONDS` is
--   measured here, around the job alone.
--
-- A result line is written as soon as its job ends (one write each), so the runner always
-- knows which job is running. When the runner is gone (the write fails) the worker exits:
-- jobs it had queued are not run by an orphan. The worker lives for many jobs, so a batch
-- pays the interpreter start once per worker, not once per job. `print` and `io.write` go
-- to stderr so that nothing a job prints can corrupt the result stream.
-- @module actionqueue.storage.batch.worker
local worker = {}

--- The worker's main loop; returns when stdin is closed.
function worker.main()
  local cjson = require "cjson.safe"
  local plain = require "actionqueue.storage.cjson_plain"
  local core = require "actionqueue.storage.core"
  local kinds = require "actionqueue.storage.batch.kinds"
  local report = require "actionqueue.storage.batch.report"
  local clock = core.proc_clock
  local out = io.stdout
  out:setvbuf("full")
  io.output(io.stderr)
  -- luacheck: push ignore 121 (print is redirected on purpose: stdout carries results)
  print = function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    io.stderr:write(table.concat(parts, "\t", 1, parts.n), "\n")
  end
  -- luacheck: pop
  for line in io.stdin:lines() do
    local id, text = line:match("^(%d+)\t(.*)$")
    local job = text and plain.decode(text)
    local res
    if job then
      local t0 = clock()
      res = kinds.run(job)
      res.seconds = clock() - t0
    else
      res = { status = "failed", error = "bad message to worker", error_kind = "InternalError", seconds = 0 }
    end
    local e = report.entry({}, res)
    local ok = out:write(id or "0", "\t", e.status, "\t", cjson.encode(e.seconds), "\t", e.bytes, "\t",
      report.encode_tail(e), "\n")
    if ok then ok = out:flush() end
    if not ok then os.exit(1, false) end -- the runner is gone
  end
end

return worker
