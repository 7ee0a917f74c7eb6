--- Recovery and offline compaction: snapshot + WAL tail -> projection -> new snapshot.
--
--   recovery.recover(dir [, opts])   -> result | nil, err   (bootstrap.run)
--   recovery.summary(result)         -> plain table (sequence, counts, runs by state ...)
--   recovery.build(state, timestamp) -> snapshot | nil, violation (bare §4 text)
--   recovery.compact(dir, {timestamp = T, out = FILE}) -> true, info | nil, err
--
-- Errors are `errors` values whose `message` is what the reference tool prints after
-- `ERR ` (bootstrap errors with their prefix; build failures as the bare validation text).
-- @module actionqueue.storage.recovery
local errors = require "actionqueue.storage.errors"
local fsutil = require "actionqueue.storage.fsutil"
local bootstrap = require "actionqueue.storage.recovery.bootstrap"
local to_snapshot = require "actionqueue.storage.recovery.to_snapshot"
local state_mod = require "actionqueue.storage.recovery.state"

local M = {}

M.state = state_mod
M.reducer = require "actionqueue.storage.recovery.reducer"
M.bootstrap = bootstrap
M.to_snapshot = to_snapshot

--- Runs the recovery bootstrap on a data dir (see `bootstrap.run`).
function M.recover(dir, opts)
  assert(type(dir) == "string", "recovery.recover: data dir expected")
  return bootstrap.run(dir, opts)
end

--- Builds the canonical snapshot of a projection (validated).
function M.build(st, timestamp)
  return to_snapshot.build(st, timestamp)
end

--- A plain summary of a recovery result.
function M.summary(r)
  local st = r.state
  local by_state = state_mod.runs_by_state(st)
  return {
    snapshot_loaded = r.snapshot_loaded,
    snapshot_sequence = r.snapshot_sequence,
    snapshot_events_applied = r.snapshot_events_applied,
    wal_replay_events_applied = r.wal_replay_events_applied,
    events_applied_total = r.events_applied_total,
    latest_sequence = st.latest,
    wal_writer_sequence = r.wal_writer_sequence,
    tasks = st.task_count,
    runs = st.run_count,
    runs_by_state = by_state,
    engine_paused = st.engine.paused,
    warnings = r.warnings,
  }
end

--- Offline compaction: recover `dir`, build the canonical snapshot at `opts.timestamp`
-- (default: now) and write it atomically to `opts.out` (default
-- `<dir>/snapshots/snapshot.bin`). The WAL is never modified. A snapshot that exists but
-- cannot be read (I/O error) makes compaction refuse unless `opts.force`.
-- @return true, info `{wal_sequence, tasks, runs, snapshot_bytes, out, recovered}`
--   | nil, err (`err.stage` = "recover" | "build" | "write")
function M.compact(dir, opts)
  opts = opts or {}
  local ts = opts.timestamp or os.time()
  if math.type(ts) ~= "integer" then
    return nil, errors.new("InvalidArgument", { stage = "args" },
      "invalid timestamp: " .. tostring(opts.timestamp))
  end
  -- Bootstrap falls back to a WAL-only replay when the snapshot does not load; after a
  -- read error (EIO ...) the file may be perfectly good, and writing the WAL-only state
  -- over it would lose what only the snapshot held (found by reliability_faults_spec).
  local load_err
  local loader = bootstrap.load_snapshot
  bootstrap.load_snapshot = function(path)
    local snap, lerr = loader(path)
    if snap == nil then load_err = lerr end
    return snap, lerr
  end
  -- Compaction in place writes the data dir, so it sets it up as the engine's bootstrap
  -- would; with `out` elsewhere the data dir is only read (opts.bootstrap to create).
  local bopts = setmetatable({ bootstrap = opts.bootstrap or opts.out == nil }, { __index = opts })
  local okb, r, err = pcall(bootstrap.run, dir, bopts)
  bootstrap.load_snapshot = loader
  if not okb then error(r, 0) end
  if not r then
    err.stage = "recover"
    return nil, err
  end
  if load_err and load_err.kind == "IoError" and load_err.errno and not opts.force then
    return nil, errors.new("IoError", { stage = "recover", errno = load_err.errno },
      "refusing to compact: the snapshot could not be read (" .. tostring(load_err.message) ..
      "); a snapshot rebuilt from the WAL alone would replace it")
  end
  local snap, v = to_snapshot.build(r.state, ts)
  if not snap then
    return nil, errors.new(v.kind, { stage = "build", path = v.path, recovered = M.summary(r) },
      v.message)
  end
  local out = opts.out or r.snapshot_path
  local snapshot = require "actionqueue.storage.snapshot"
  local ok, werr = snapshot.write(out, snap)
  if not ok then
    werr.stage = "write"
    return nil, werr
  end
  return true, {
    wal_sequence = snap.metadata.wal_sequence,
    tasks = snap.metadata.task_count,
    runs = snap.metadata.run_count,
    snapshot_bytes = fsutil.file_size(out),
    events = r.events_applied_total,
    out = out,
    recovered = M.summary(r),
  }
end

return M
