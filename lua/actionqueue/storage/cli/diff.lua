--- `aqstore diff A B`: tasks and runs added, removed, changed (with state changes),
-- engine/metadata field changes, and entries added/removed in every other collection.
-- Exit 0 when identical, 1 when they differ (or a file is bad).
-- @module actionqueue.storage.cli.diff
local cli = require "actionqueue.storage.cli"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "diff", "Compare two snapshots (exit 1 when they differ).",
    { "aqstore diff yesterday.snap today.snap", "aqstore diff --json a.snap b.snap" })
  cmd:argument("a", "First (old) snapshot file.")
  cmd:argument("b", "Second (new) snapshot file.")
  cli.json_flag(cmd)
end

function M.run(args)
  local diff = require "actionqueue.storage.inspect.diff"
  local a, code = cli.open_snapshot(args.a, args.json)
  if not a then return code end
  local b
  b, code = cli.open_snapshot(args.b, args.json)
  if not b then return code end
  local r = diff.compare(a, b)
  if args.json then
    cli.json(diff.to_json(r, args.a, args.b))
  else
    local text = diff.render(r, args.a, args.b)
    if cli.use_color() then
      text = text:gsub("\n(  %+ [^\n]*)", function(l) return "\n" .. cli.color("ok", l) end)
                 :gsub("\n(  %- [^\n]*)", function(l) return "\n" .. cli.color("bad", l) end)
    end
    cli.out(text)
  end
  return r.identical and cli.OK or cli.BAD
end

return M
