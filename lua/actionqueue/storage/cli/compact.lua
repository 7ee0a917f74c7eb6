--- `aqstore compact DIR [--timestamp T] [--out FILE] [--json]`: offline compaction.
-- Recovers the data dir (snapshot + WAL tail), builds the canonical snapshot of the
-- state at timestamp T (default: now) and writes it atomically to FILE (default
-- `DIR/snapshots/snapshot.bin`). The WAL is never modified. With `--out` elsewhere it
-- only reads DIR (a read-only data dir works, nothing is created there); compaction in
-- place is a mutation of DIR: it takes DIR's exclusive lock and, like the engine's
-- bootstrap, creates the layout when missing (`--bootstrap` does that with `--out` too).
-- Output: `OK wal_sequence=.. tasks=.. runs=.. snapshot_bytes=..` (exit 0) or
-- `ERR <reference text>` (exit 1): bootstrap errors with their prefix, a snapshot the
-- engine would reject as the bare validation text (nothing is written then).
-- @module actionqueue.storage.cli.compact
local cli = require "actionqueue.storage.cli"

local M = {}

function M.register(parser)
  local cmd = cli.command(parser, "compact",
    "Recover a data dir and write a new snapshot of the state (the WAL is not modified).",
    "aqstore compact /var/lib/actionqueue --timestamp 1800000000 --out new.snap")
  cmd:argument("dir", "Data directory (snapshots/snapshot.bin, wal/actionqueue.wal).")
  cmd:option("--timestamp", "Snapshot timestamp (Unix seconds, u64; default: now).")
  cmd:option("--out", "Output file (default: DIR/snapshots/snapshot.bin).")
  cmd:flag("--bootstrap", "Like the engine, create wal/, snapshots/ and an empty WAL when missing.")
  cli.json_flag(cmd)
end

function M.run(args)
  local recovery = require "actionqueue.storage.recovery"
  local json = require "actionqueue.storage.inspect.json"
  local ts
  if args.timestamp then
    local u64 = require "actionqueue.storage.u64"
    ts = u64.parse and u64.parse(args.timestamp)
    if math.type(ts) ~= "integer" then
      cli.err("error: invalid --timestamp: ", args.timestamp)
      return cli.USAGE
    end
  end
  local ok, info = recovery.compact(args.dir, { timestamp = ts, out = args.out,
    bootstrap = args.bootstrap or nil })
  if not ok then
    return cli.fail(args.json, { kind = info.kind, stage = info.stage, message = info.message })
  end
  if args.json then
    cli.json({ ok = true, out = info.out,
      wal_sequence = json.raw(string.format("%u", info.wal_sequence)),
      tasks = info.tasks, runs = info.runs, snapshot_bytes = info.snapshot_bytes })
  else
    cli.out(string.format("OK wal_sequence=%u tasks=%d runs=%d snapshot_bytes=%d",
      info.wal_sequence, info.tasks, info.runs, info.snapshot_bytes or 0))
  end
  return cli.OK
end

return M
