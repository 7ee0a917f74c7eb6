--- `aqstore dump FILE [PATH]` (or `--path PATH`): the payload, or the parts at PATH, as
-- indented JSON, keys in schema order, u64 exact. Written by the C canonical encoder
-- (`core.json_encode` with `indent = 2`: serde_json's pretty layout) streamed to stdout;
-- `--compact` prints the canonical payload itself. PATH is the path language of `show`;
-- with `[*]` the output is a JSON array of the matched parts (null for an absent one).
-- @module actionqueue.storage.cli.dump
local cli = require "actionqueue.storage.cli"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "dump", "Print the snapshot payload (or parts of it) as indented JSON.",
    { "aqstore dump snapshot.bin > snapshot.json", "aqstore dump --path runs[1] snapshot.bin",
      "aqstore dump snapshot.bin 'runs[*].lease'" })
  cmd:argument("file", "Snapshot file or data dir.")
  cmd:argument("path", "Only this part of the document (the path language of 'show')."):args("?")
  cmd:option("--path", "The path as an option."):target("path_option")
  cmd:flag("--compact", "No indentation.")
  cli.json_flag(cmd) -- accepted for symmetry: the output is always JSON
end

function M.run(args)
  local core = require "actionqueue.storage.core"
  local path = require "actionqueue.storage.inspect.path"
  local json = require "actionqueue.storage.inspect.json"
  local S = require "actionqueue.storage.schema.snapshot"
  local p, uerr = require("actionqueue.storage.cli.show").path_arg(args)
  if uerr then cli.err(uerr) return cli.USAGE end
  local steps
  if p then
    local perr
    steps, perr = path.parse(p)
    if not steps then cli.err(perr) return cli.USAGE end
  end
  local s, code = cli.open_snapshot(args.file, args.json)
  if not s then return code end
  local indent = not args.compact and 2 or nil
  if steps and path.has_wildcard(steps) then
    local matches, qerr = path.query(s, steps)
    if not matches then cli.err(qerr) return cli.USAGE end
    local parts = {}
    for i, m in ipairs(matches) do
      parts[i] = m.value == nil and "null" or json.encode_typed(m.value, m.type, { indent = indent })
    end
    if indent then
      for i, t in ipairs(parts) do parts[i] = "  " .. t:gsub("\n", "\n  ") end
      io.stdout:write(#parts == 0 and "[]" or ("[\n" .. table.concat(parts, ",\n") .. "\n]"), "\n")
    else
      io.stdout:write("[", table.concat(parts, ","), "]\n")
    end
    return cli.OK
  end
  local v, T = s, S.root
  if steps then
    v, T = path.resolve(s, steps)
    if type(T) ~= "table" then cli.err(T) return cli.USAGE end
  end
  local ok, err = core.json_encode(v, T, { sink = io.stdout, indent = indent })
  if not ok then cli.err(err) return cli.BAD end
  io.stdout:write("\n")
  return cli.OK
end

return M
