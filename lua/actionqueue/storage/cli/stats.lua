--- `aqstore stats FILE`: sizes, counts per collection, runs by state, tasks by policy,
-- largest payloads, oldest unfinished runs.
-- @module actionqueue.storage.cli.stats
local cli = require "actionqueue.storage.cli"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "stats", "Statistics: sizes, counts by state, largest payloads, oldest runs.",
    { "aqstore stats snapshot.bin", "aqstore stats --json snapshot.bin --top 10" })
  cmd:argument("file", "Snapshot file.")
  cmd:option("--top", "Entries in the top lists.", "5"):convert(tonumber)
  cli.json_flag(cmd)
end

function M.run(args)
  local stats = require "actionqueue.storage.inspect.stats"
  local view = require "actionqueue.storage.inspect.view"
  local s, code = cli.open_snapshot(args.file, args.json)
  if not s then return code end
  stats.TOP = math.max(1, math.tointeger(args.top) or 5)
  local r = stats.compute(s, view.info(s))
  if args.json then cli.json(stats.to_json(r)) else cli.out(stats.render(r)) end
  return cli.OK
end

return M
