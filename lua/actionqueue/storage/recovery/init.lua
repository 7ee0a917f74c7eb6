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
local datadir = require "actionqueue.storage.datadir"
local bootstrap = require "actionqueue.storage.recovery.bootstrap"
local to_snapshot = require "actionqueue.storage.recovery.to_snapshot"
local state_mod = require "actionqueue.storage.recovery.state"

local M = {}

M.state = state_mod
M.reducer = require "actionqueue.storage.recovery.reducer"
M.bootstrap = bootstrap
M.to_snapshot = to_snapshot

-- Reading takes a shared lock on `<dir>/store.lock` when the file exists (later engine
-- versions' read-only sessions do the same); it never creates the file and never fails
-- because a writer holds it: the note becomes a warning of the result.
local function read_locked(dir, opts, run)
  local lock, note = datadir.lock_shared(dir)
  local r, err = run(dir, opts)
  if lock then lock:unlock() end
  if r and note then
    r.warnings[#r.warnings + 1] = note .. "; read while a writer may be appending"
  end
  return r, err
end

--- Runs the recovery bootstrap on a data dir (see `bootstrap.run`). It only reads
-- (nothing is created unless `opts.bootstrap`) under a shared `store.lock` when present.
function M.recover(dir, opts)
  assert(type(dir) == "string", "recovery.recover: data dir expected")
  return read_locked(dir, opts, bootstrap.run)
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
    tasks = state_mod.task_count(st),
    runs = state_mod.run_count(st),
    runs_by_state = by_state,
    engine_paused = st.engine.paused,
    warnings = r.warnings,
  }
end

-- Compaction with the data dir already locked (in place) or not to be locked (`out`
-- elsewhere: read under a shared lock when store.lock exists).
local function compact(dir, opts, ts, in_place)
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
  -- In place, the data dir is set up as the engine's bootstrap would; with `out`
  -- elsewhere it is only read (opts.bootstrap to create the layout anyway).
  local bopts = setmetatable({ bootstrap = opts.bootstrap or in_place }, { __index = opts })
  local okb, r, err = pcall(in_place and bootstrap.run or function(d, o)
    return read_locked(d, o, bootstrap.run)
  end, dir, bopts)
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
  local st, out = r.state, opts.out or r.snapshot_path
  -- Streamed: the state's encoding goes to the writer element by element and the new
  -- file is judged before it replaces `out` (no snapshot table beside the state). When
  -- it is not judged good, the table path (build + validate + write) says why with the
  -- reference builder's texts, or writes what it accepts, as before.
  local ok, werr = to_snapshot.write(st, ts, out)
  if ok == false then
    local snap, v = to_snapshot.build(st, ts)
    if not snap then
      return nil, errors.new(v.kind, { stage = "build", path = v.path, recovered = M.summary(r) },
        v.message)
    end
    ok, werr = require("actionqueue.storage.snapshot").write(out, snap)
  end
  if not ok then
    werr.stage = "write"
    return nil, werr
  end
  return true, {
    wal_sequence = st.latest,
    tasks = state_mod.task_count(st),
    runs = state_mod.run_count(st),
    snapshot_bytes = fsutil.file_size(out),
    events = r.events_applied_total,
    out = out,
    recovered = M.summary(r),
  }
end

--- Offline compaction: recover `dir`, build the canonical snapshot at `opts.timestamp`
-- (default: now) and write it atomically to `opts.out` (default
-- `<dir>/snapshots/snapshot.bin`). The WAL is never modified. A snapshot that exists but
-- cannot be read (I/O error) makes compaction refuse unless `opts.force`.
--
-- With `opts.out` elsewhere the data dir is only read (docs/wal.md). Compaction in place
-- is a mutation: it holds `<dir>/store.lock` exclusively (refused at once,
-- `err.kind == "Locked"`, while another process holds it) and refuses while another
-- process (an engine 0.1.2 takes no lock) has the WAL or the snapshot open for writing
-- (`"Busy"`), unless `opts.force`.
-- @return true, info `{wal_sequence, tasks, runs, snapshot_bytes, out, recovered}`
--   | nil, err (`err.stage` = "lock" | "recover" | "build" | "write")
function M.compact(dir, opts)
  opts = opts or {}
  local ts = opts.timestamp or os.time()
  if math.type(ts) ~= "integer" then
    return nil, errors.new("InvalidArgument", { stage = "args" },
      "invalid timestamp: " .. tostring(opts.timestamp))
  end
  if opts.out ~= nil then return compact(dir, opts, ts, false) end
  local lock, lerr = datadir.lock_exclusive(dir)
  if not lock then
    lerr.stage = "lock"
    return nil, lerr
  end
  for _, rel in ipairs { datadir.WAL_FILE, datadir.SNAPSHOT_FILE } do
    local path = dir .. "/" .. rel
    local writers = not opts.force and datadir.writers(path) or {}
    if #writers > 0 then
      lock:unlock()
      local berr = datadir.busy_error(path, writers, "compact in place")
      berr.stage = "lock"
      return nil, berr
    end
  end
  local ok, r, info = pcall(compact, dir, opts, ts, true)
  lock:unlock()
  if not ok then error(r, 0) end
  return r, info
end

return M
