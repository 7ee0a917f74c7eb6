--- `aqstore rewrite IN OUT`: load IN like `check` and write it canonically and atomically
-- to OUT. Prints `OK tasks=N runs=M`, or `ERR <message>` with exit 1 (OUT untouched, no
-- temp file left behind). The ERR line keeps the engine's text; where an I/O error
-- happened (the step, the file, and whether it was the input or the output side) follows
-- on stderr: `aqstore: rewrite: output /x/out.snap: step: open temp, file: ...; the output
-- directory /x does not exist`.
-- @module actionqueue.storage.cli.rewrite
local cli = require "actionqueue.storage.cli"
local errors = require "actionqueue.storage.errors"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "rewrite",
    "Load a snapshot and write it back canonically (atomic replace of OUT).",
    "aqstore rewrite old/snapshot.bin new/snapshot.bin")
  cmd:argument("input", "Snapshot file to load.")
  cmd:argument("output", "File to write.")
end

function M.run(args)
  local snapshot = require "actionqueue.storage.snapshot"
  local r, err, side = snapshot.rewrite(args.input, args.output)
  if r == false then
    cli.out("ERR no snapshot: ", args.input, " is missing or empty")
    return cli.BAD
  elseif not r then
    cli.out("ERR ", cli.error_doc(err).message)
    local where = errors.where(err)
    if where then
      cli.err("rewrite: ", side, " ", side == "output" and args.output or args.input, ": ", where)
    end
    return cli.BAD
  end
  cli.out(("OK tasks=%d runs=%d"):format(r.tasks, r.runs))
  return cli.OK
end

return M
