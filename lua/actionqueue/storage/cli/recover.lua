--- `aqstore recover DIR [--json]`: run the recovery bootstrap (snapshot + WAL tail) on a
-- data dir and print a summary of the recovered state. It only reads (a read-only data
-- dir works) and creates nothing; `--bootstrap` reproduces the engine's side effects
-- (the `wal/` and `snapshots/` folders and an empty WAL when missing). It never repairs,
-- truncates or rewrites anything.
-- Exit codes: 0 recovered, 1 recovery failed (`ERR <reference text>`).
-- @module actionqueue.storage.cli.recover
local cli = require "actionqueue.storage.cli"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "recover",
    "Recover a data dir (snapshot + WAL tail) and summarize the state.",
    "aqstore recover /var/lib/actionqueue --json")
  cmd:argument("dir", "Data directory (snapshots/snapshot.bin, wal/actionqueue.wal).")
  cmd:flag("--bootstrap", "Like the engine, create wal/, snapshots/ and an empty WAL when missing.")
  cli.json_flag(cmd)
end

local function u(n) return string.format("%u", n) end

--- The summary lines (text form) of a recovery summary.
function M.text_lines(s)
  local lines = {
    string.format("RECOVERED snapshot_loaded=%s snapshot_sequence=%s snapshot_events_applied=%d "
      .. "wal_replay_events_applied=%d latest_sequence=%s wal_writer_sequence=%s tasks=%d runs=%d",
      tostring(s.snapshot_loaded), u(s.snapshot_sequence), s.snapshot_events_applied,
      s.wal_replay_events_applied, u(s.latest_sequence), u(s.wal_writer_sequence), s.tasks, s.runs),
  }
  local sm = require "actionqueue.storage.statemachine"
  local parts = {}
  for _, name in ipairs(sm.states) do
    if s.runs_by_state[name] then parts[#parts + 1] = name .. "=" .. s.runs_by_state[name] end
  end
  lines[#lines + 1] = "runs by state: " .. (#parts > 0 and table.concat(parts, " ") or "(none)")
  lines[#lines + 1] = "engine paused: " .. tostring(s.engine_paused)
  for _, w in ipairs(s.warnings or {}) do lines[#lines + 1] = "warning: " .. w end
  return lines
end

--- JSON document of a summary (u64 values exact).
function M.json_doc(s, json)
  local raw = function(n) return json.raw(u(n)) end
  return {
    ok = true,
    snapshot_loaded = s.snapshot_loaded,
    snapshot_sequence = raw(s.snapshot_sequence),
    snapshot_events_applied = s.snapshot_events_applied,
    wal_replay_events_applied = s.wal_replay_events_applied,
    events_applied_total = s.events_applied_total,
    latest_sequence = raw(s.latest_sequence),
    wal_writer_sequence = raw(s.wal_writer_sequence),
    tasks = s.tasks,
    runs = s.runs,
    runs_by_state = s.runs_by_state,
    engine_paused = s.engine_paused,
    warnings = json.array(s.warnings or {}),
  }
end

function M.run(args)
  local recovery = require "actionqueue.storage.recovery"
  local json = require "actionqueue.storage.inspect.json"
  local r, err = recovery.recover(args.dir, { bootstrap = args.bootstrap or nil })
  if not r then return cli.fail(args.json, { kind = err.kind, message = err.message }) end
  local s = recovery.summary(r)
  if args.json then
    cli.json(M.json_doc(s, json))
  else
    for _, line in ipairs(M.text_lines(s)) do cli.out(line) end
  end
  return cli.OK
end

return M
