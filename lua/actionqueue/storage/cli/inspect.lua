--- `aqstore inspect FILE`: the one-screen summary (the REPL's `s`).
-- @module actionqueue.storage.cli.inspect
local cli = require "actionqueue.storage.cli"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "inspect",
    "Summary of a snapshot: versions, WAL sequence, time, tasks, runs by state, collections.",
    { "aqstore inspect data/snapshots/snapshot.bin", "aqstore inspect --json snapshot.bin" })
  cmd:argument("file", "Snapshot file.")
  cli.json_flag(cmd)
end

--- The summary as plain data (stable field names; u64 exact).
function M.summary_doc(s)
  local json = require "actionqueue.storage.inspect.json"
  local fmt = require "actionqueue.storage.inspect.fmt"
  local stats = require "actionqueue.storage.inspect.stats"
  local view = require "actionqueue.storage.inspect.view"
  local S = require "actionqueue.storage.schema.snapshot"
  local info = view.info(s) or {}
  local function u(n) return n == nil and json.null or json.raw(fmt.u64(n)) end
  local e = s.engine or {}
  local doc = {
    file = info.file or json.null, file_size = info.file_size or json.null,
    frame_version = S.FRAME_VERSION, version = s.version, schema_version = s.metadata.schema_version,
    wal_sequence = u(s.metadata.wal_sequence), timestamp = u(s.timestamp),
    taken_at = fmt.iso(s.timestamp) or json.null,
    engine = { paused = e.paused or false, paused_at = u(e.paused_at), resumed_at = u(e.resumed_at) },
    tasks = #s.tasks, runs = #s.runs, runs_by_state = {}, tasks_by_policy = {}, counts = {},
  }
  for _, c in ipairs(stats.runs_by_state(s)) do doc.runs_by_state[c.state] = c.count end
  for _, c in ipairs(stats.tasks_by_policy(s)) do doc.tasks_by_policy[c.policy] = c.count end
  for _, c in ipairs(stats.collections(s)) do doc.counts[c.name] = c.count end
  doc.canceled_tasks = stats.canceled_tasks(s)
  return doc
end

function M.run(args)
  local s, code = cli.open_snapshot(args.file, args.json)
  if not s then
    cli.hint(args.file)
    return code
  end
  if args.json then cli.json(M.summary_doc(s)) else cli.out(tostring(s)) end
  return cli.OK
end

return M
