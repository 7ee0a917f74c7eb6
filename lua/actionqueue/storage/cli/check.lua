--- `aqstore check FILE`: load a snapshot exactly like the reference loader (frame, CRC,
-- decode, validation) and print one line: `OK tasks=N runs=M`, `NONE` (missing or empty
-- file) or `ERR <the reference's error text>`. Exit 0, 0, 1.
-- @module actionqueue.storage.cli.check
local cli = require "actionqueue.storage.cli"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "check",
    "Load a snapshot like the reference loader and print OK tasks=N runs=M, NONE or ERR <message>.",
    { "aqstore check data/snapshots/snapshot.bin", "aqstore check --json snapshot.bin" })
  cmd:argument("file", "Snapshot file.")
  cli.json_flag(cmd)
end

--- Loads `file` and classifies it (`snapshot.check`).
-- @return line (`OK ...`/`NONE`/`ERR ...`), JSON document, exit code
function M.classify(file)
  local c = require("actionqueue.storage.snapshot").check(file)
  if c.status == "ok" then
    return c.line, { status = "ok", tasks = c.tasks, runs = c.runs }, cli.OK
  elseif c.status == "none" then
    return c.line, { status = "none" }, cli.OK
  end
  return c.line, { status = "error", kind = c.kind, message = c.message }, cli.BAD
end

function M.run(args)
  local line, doc, code = M.classify(args.file)
  if args.json then
    doc.file = args.file
    cli.json(doc)
  else
    cli.out(line)
  end
  if doc.status ~= "ok" then cli.hint(args.file) end
  return code
end

return M
