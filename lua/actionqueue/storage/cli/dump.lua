--- `aqstore dump FILE`: the payload as indented JSON, keys in schema order, u64 exact.
-- Written by the C canonical encoder (`core.json_encode` with `indent = 2`: serde_json's
-- pretty layout) streamed to stdout; `--compact` prints the canonical payload itself.
-- @module actionqueue.storage.cli.dump
local cli = require "actionqueue.storage.cli"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "dump", "Print the snapshot payload as indented JSON (schema key order).",
    { "aqstore dump snapshot.bin > snapshot.json", "aqstore dump --path runs[1] snapshot.bin" })
  cmd:argument("file", "Snapshot file.")
  cmd:option("--path", "Only this part of the document (as for 'show').")
  cmd:flag("--compact", "No indentation.")
  cli.json_flag(cmd) -- accepted for symmetry: the output is always JSON
end

function M.run(args)
  local core = require "actionqueue.storage.core"
  local path = require "actionqueue.storage.inspect.path"
  local S = require "actionqueue.storage.schema.snapshot"
  local v, T
  if args.path then
    local steps, perr = path.parse(args.path)
    if not steps then cli.err(perr) return cli.USAGE end
    args.path = steps
  end
  local s, code = cli.open_snapshot(args.file, args.json)
  if not s then return code end
  v, T = s, S.root
  if args.path then
    v, T = path.resolve(s, args.path)
    if type(T) ~= "table" then cli.err(T) return cli.USAGE end
  end
  local ok, err = core.json_encode(v, T, { sink = io.stdout, indent = not args.compact and 2 or nil })
  if not ok then cli.err(err) return cli.BAD end
  io.stdout:write("\n")
  return cli.OK
end

return M
