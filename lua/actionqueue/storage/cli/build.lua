--- `aqstore build SRC OUT`: a validated snapshot from a source (`actionqueue.storage.source`):
-- a Lua file returning a friendly table (run in the sandbox), or a JSON snapshot document
-- such as `aqstore dump` writes (decoded exactly). SRC `-` is standard input.
-- @module actionqueue.storage.cli.build
local cli = require "actionqueue.storage.cli"
local fsutil = require "actionqueue.storage.fsutil"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "build", "Build a validated snapshot from a Lua table file or a JSON file.",
    { "aqstore build examples/queue.lua /tmp/queue.snap", "aqstore build examples/queue.json /tmp/queue.snap",
      "aqstore dump old.snap | aqstore build - /tmp/copy.snap" })
  cmd:argument("src", "Source: a .lua file returning a table, a .json snapshot document, or - (standard input).")
  cmd:argument("out", "Snapshot file to write (atomically replaced).")
  cli.json_flag(cmd)
end

function M.run(args)
  local snapshot = require "actionqueue.storage.snapshot"
  local source = require "actionqueue.storage.source"
  local src_name = args.src == source.STDIN and "(stdin)" or args.src
  local snap, err = source.snapshot(args.src)
  -- the error names the file once and the document path once: "SRC: path: problem"
  if not snap then return cli.file_error(src_name, { kind = err.kind, message = err.detail }, args.json) end
  local ok, werr = snapshot.write(args.out, snap)
  if not ok then return cli.file_error(args.out, werr, args.json) end
  local size = fsutil.file_size(args.out)
  if args.json then
    cli.json({ ok = true, src = args.src, out = args.out, tasks = #snap.tasks, runs = #snap.runs, bytes = size })
  else
    cli.out(cli.color("ok", "wrote"), " ", args.out, string.format(" (%d tasks, %d runs, %d bytes)",
      #snap.tasks, #snap.runs, size or 0))
  end
  return cli.OK
end

return M
