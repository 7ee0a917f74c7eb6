--- A data dir in the REPL: the state it recovers to (snapshot + WAL tail, through the
-- recovery module) as the same kind of view as a snapshot file, plus the WAL events.
--
-- Read-only: recovery runs without bootstrapping (nothing is created), the WAL is read
-- with the reader's scan, and no snapshot is written: the recovered state is built in
-- memory by `recovery.build`.
-- @module actionqueue.storage.inspect.datadir
local fsutil = require "actionqueue.storage.fsutil"
local layout = require "actionqueue.storage.datadir"
local lfs = require "lfs"
local view = require "actionqueue.storage.inspect.view"

local datadir = {}

--- True when `p` is a directory.
function datadir.is_dir(p)
  return lfs.attributes(p, "mode") == "directory"
end

-- The latest time the data dir knows: the newest event timestamp (or the loaded
-- snapshot's), so that ages in the tables are relative to the last thing that happened.
local function latest_time(events, snap_ts)
  local at = snap_ts or 0
  for _, e in ipairs(events) do
    local t = view.event_time(e)
    if t and math.ult(at, t) then at = t end
  end
  return at
end

-- The records of a WAL file up to its first problem, their offsets and the scan summary.
function datadir.read_wal(wal_path)
  local reader = require "actionqueue.storage.wal.reader"
  local events, offsets = {}, {}
  local scan = { records = 0, valid_bytes = 0 }
  if fsutil.exists(wal_path) then
    scan = reader.scan(wal_path, {}, function(offset, ev)
      events[#events + 1] = ev
      offsets[ev] = offset
    end)
  end
  return events, offsets, scan
end

--- The WAL records of a data dir (or of a WAL file) up to the first problem, as a list
-- that prints as a table and filters like `s:events{...}`, read-only; works when the
-- data dir does not recover. The problem, if any, is the second value.
-- @tparam string p data dir or WAL file
-- @return the list, and nil or the error value that ended the scan
function datadir.events(p)
  local wal_path = datadir.is_dir(p) and (p .. "/" .. layout.WAL_FILE) or p
  local events, offsets, scan = datadir.read_wal(wal_path)
  return view.wrap_events(events, offsets), scan.error
end

--- Opens a data dir read-only.
-- @tparam string dir the data dir (`wal/actionqueue.wal`, `snapshots/snapshot.bin`)
-- @tparam[opt] table opts `timestamp` of the recovered snapshot (default: the newest event
--   or snapshot time)
-- @return the wrapped recovered snapshot, or nil, err (`kind`, `message`)
function datadir.open(dir, opts)
  opts = opts or {}
  local recovery = require "actionqueue.storage.recovery"
  local r, err = recovery.recover(dir, { bootstrap = false })
  if not r then
    local message = type(err) == "table" and err.message or tostring(err)
    return nil, { kind = type(err) == "table" and err.kind or "Error",
                  message = message .. " (the WAL records before the problem: aq.events(DIR))" }
  end
  local events, offsets, scan = datadir.read_wal(r.wal_path)
  local snap_ts
  if r.snapshot_loaded then
    local snapshot = require "actionqueue.storage.snapshot"
    local loaded = snapshot.load(r.snapshot_path)
    snap_ts = loaded and loaded.timestamp or nil
  end
  local ts = opts.timestamp or latest_time(events, snap_ts)
  if ts == 0 then ts = os.time() end
  local snap, v = recovery.build(r.state, ts)
  if not snap then
    return nil, { kind = v.kind, message = "the recovered state is not a valid snapshot: " .. tostring(v.message) }
  end
  return view.wrap(snap, {
    dir = dir, file = dir, recovered = recovery.summary(r), events = events, offsets = offsets,
    wal_path = r.wal_path, wal_records = scan.records, wal_bytes = scan.valid_bytes, wal_error = scan.error,
    snapshot_path = r.snapshot_loaded and r.snapshot_path or nil,
  })
end

return datadir
