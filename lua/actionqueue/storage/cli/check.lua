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

--- Loads `file` and classifies it.
-- @return line (`OK ...`/`NONE`/`ERR ...`), JSON document, exit code
function M.classify(file)
  local snapshot = require "actionqueue.storage.snapshot"
  local snap, err = snapshot.load(file)
  if snap then
    return ("OK tasks=%d runs=%d"):format(#snap.tasks, #snap.runs),
      { status = "ok", tasks = #snap.tasks, runs = #snap.runs }, cli.OK
  elseif snap == false then
    return "NONE", { status = "none" }, cli.OK
  end
  local e = cli.error_doc(err)
  return "ERR " .. e.message, { status = "error", kind = e.kind, message = e.message }, cli.BAD
end

function M.run(args)
  local line, doc, code = M.classify(args.file)
  if args.json then
    doc.file = args.file
    cli.json(doc)
  else
    cli.out(line)
  end
  return code
end

return M
