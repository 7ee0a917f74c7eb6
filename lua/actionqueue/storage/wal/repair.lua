--- WAL repair (wal-format.md §5).
--
-- * `strict`: refuses any corruption (the reference's Strict open policy).
-- * `truncate_partial`: the reference's TruncatePartial: cut at the first bad record of
--   any kind, even mid-file, dropping every byte after it (valid records included).
-- * `safe` (our default for `aqstore wal repair`): truncates only a damaged *tail* (no
--   decodable record after the bad one), refuses mid-file corruption unless `force`;
--   before cutting, it copies the cut bytes durably to a new `FILE.cut-OFFSET[.N]`;
--   a file whose first record is invalid is not taken for a WAL (refused unless `force`).
--
-- `plan` reports what a cut would drop: bytes, the bad record, and how many records
-- after it still look valid (they are lost by a cut: the format has no resynchronisation).
-- @module actionqueue.storage.wal.repair
local core = require "actionqueue.storage.core"
local errors = require "actionqueue.storage.errors"
local fsutil = require "actionqueue.storage.fsutil"
local reader = require "actionqueue.storage.wal.reader"
local appender = require "actionqueue.storage.wal.appender"
local datadir = require "actionqueue.storage.datadir"

local repair = {}

local HEADER = 12

--- Counts the records after the bad record at the start of `tail` that still validate
-- (buffer validator order), i.e. valid records a cut would lose.
local function valid_after(tail, opts)
  if #tail < HEADER then return 0, 0 end
  local _, length = string.unpack("<I4I4", tail)
  local skip = HEADER + length
  if skip > #tail then return 0, 0 end
  local _, pos, _, count = reader.validate_buffer_lenient(tail:sub(skip + 1), opts)
  return count, pos
end

--- Inspects a WAL and describes the repair a cut would make.
-- @return plan table `{path, size, ok, records, next_sequence, offset, kind, dropped_bytes,
--   dropped_valid_records, tail, zero_tail}` | nil, err (I/O)
function repair.plan(path, opts)
  opts = opts or {}
  local size = fsutil.file_size(path)
  if not size then
    return nil, errors.new("IoError", nil, "I/O error: No such file or directory (os error 2)")
  end
  local s = reader.scan(path, { order = "writer_open", workflow = opts.workflow })
  local plan = { path = path, size = size, records = s.records,
                 next_sequence = appender.next_sequence(s.last_sequence) }
  if not s.error then plan.ok = true; return plan end
  if s.error.kind ~= "Corruption" then return nil, s.error end
  local o = s.error.offset
  plan.offset, plan.kind, plan.error = o, s.error.reason, s.error
  plan.dropped_bytes = size - o
  local tail = fsutil.read_range(path, o, size - o) or ""
  plan.dropped_valid_records = valid_after(tail, opts)
  plan.zero_tail = not tail:find("[^%z]")
  -- A tail problem: nothing decodable follows, and the damage is a torn/short record,
  -- the last frame of the file, or zero fill.
  local last_frame = false
  if #tail >= HEADER then
    local _, length = string.unpack("<I4I4", tail)
    last_frame = HEADER + length >= #tail
  end
  plan.tail = plan.dropped_valid_records == 0 and (plan.kind == "incomplete_header"
    or plan.kind == "incomplete_payload" or last_frame or plan.zero_tail)
  return plan
end

-- Saves `bytes` durably in a NEW cut file next to `path`: `path.cut-OFFSET`, or
-- `path.cut-OFFSET.N` (N = 2, 3, ...) when that name is taken, so the bytes an earlier
-- repair rescued are never overwritten or deleted. Written with the safe writer's
-- `fsutil.create_exclusive` (own O_EXCL|O_NOFOLLOW temp, fsync, rename that refuses an
-- existing name, directory fsync): the cut file appears whole or not at all, so a failed
-- save (ENOSPC ...) or a kill leaves no empty or partial cut file under that name.
-- @return the cut file's name | nil, message, ENAME
local function save_cut(path, offset, bytes)
  local base = string.format("%s.cut-%d", path, offset)
  local msg, ename
  for n = 1, 10000 do
    local name = n == 1 and base or string.format("%s.%d", base, n)
    local ok
    ok, msg, ename = fsutil.create_exclusive(name, bytes)
    if ok then return name end
    if ename ~= "EEXIST" then break end
  end
  return nil, msg, ename
end

local function io_err(msg, ename, fields)
  fields = fields or {}
  fields.errno = ename
  return errors.new("IoError", fields, "I/O error: " .. tostring(msg))
end

--- Repairs a WAL.
--
-- Safety (docs/wal.md "Repair"): the WAL is locked exclusively for the whole repair
-- (a second mutator of ours is refused, `err.kind == "Locked"`); a WAL that another
-- process has open for writing is refused (`"Busy"`) unless `force`; in safe mode a
-- file whose FIRST record is already invalid does not look like a WAL and is refused
-- (`"NotAWal"`) unless `force`; the plan is made under the lock, so what is cut is what
-- was inspected.
-- @tparam string path
-- @tparam[opt] table opts `mode` ("safe" default | "truncate_partial" | "strict"),
--   `force` (safe mode: also cut mid-file corruption or a file with no valid first
--   record; any mode: repair although another process has the file open for writing),
--   `keep_cut` (default true in safe mode: save the cut bytes to a new
--   `FILE.cut-OFFSET[.N]` first), `workflow`
-- @return result `{action = "none"|"truncated", plan = plan, cut_file = path|nil}` |
--   nil, err (refused or failed; `err.plan` holds the plan when there is one)
function repair.run(path, opts)
  opts = opts or {}
  local mode = opts.mode or "safe"
  local dir = datadir.of_wal(path)
  if dir then
    -- never cut, or write a cut file, through a linked wal/ folder
    local ok, uerr = datadir.check_layout(dir, "repair the WAL")
    if not ok then return nil, uerr end
  end
  local log, msg, ename = core.log_open(path, { create = false, nofollow = true })
  if not log then return nil, io_err(msg, ename, { path = path, op = "open" }) end
  local guard, lerr = datadir.lock_wal(path, log)
  if not guard then
    log:close()
    return nil, lerr
  end
  local function done(...)
    log:close()
    guard:release()
    return ...
  end
  local safe, uerr = datadir.verify_wal(path, log, "repair the WAL")
  if not safe then return done(nil, uerr) end
  local writers = not opts.force and datadir.writers(path) or {}
  if #writers > 0 then return done(nil, datadir.busy_error(path, writers, "repair it")) end
  local plan, err = repair.plan(path, opts)
  if not plan then return done(nil, err) end
  if plan.ok then return done({ action = "none", plan = plan }) end
  if mode == "strict" then
    return done(nil, errors.new("Corruption", { offset = plan.offset, reason = plan.kind, plan = plan },
      "strict WAL tail validation failed during bootstrap: " .. plan.error.message))
  end
  if mode == "safe" and plan.offset == 0 and not opts.force then
    return done(nil, errors.new("NotAWal", { path = path, offset = 0, reason = plan.kind, plan = plan },
      string.format("%s does not look like a WAL: its first record is already invalid (%s at " ..
        "offset 0), so a repair would empty it; nothing was changed (use --force if it is a " ..
        "WAL whose first record is damaged)", path, plan.kind)))
  end
  if mode == "safe" and not plan.tail and not opts.force then
    return done(nil, errors.new("Refused", { offset = plan.offset, reason = plan.kind, plan = plan },
      string.format("refusing to cut mid-file corruption at offset %d (%s): %d bytes and %d valid " ..
        "record(s) after it would be lost; use --force", plan.offset, plan.kind,
        plan.dropped_bytes, plan.dropped_valid_records)))
  end
  local cut_file
  if mode == "safe" and opts.keep_cut ~= false then
    local bytes = fsutil.read_range(path, plan.offset, plan.dropped_bytes) or ""
    if #bytes ~= plan.dropped_bytes then
      return done(nil, io_err("cannot read the bytes to cut: " .. path, "EIO",
        { path = path, op = "read", plan = plan }))
    end
    local cmsg, cname
    cut_file, cmsg, cname = save_cut(path, plan.offset, bytes)
    if not cut_file then
      return done(nil, io_err("cannot save cut bytes: " .. tostring(cmsg), cname,
        { path = path .. ".cut-" .. plan.offset, op = "save cut", plan = plan }))
    end
  end
  local ok
  ok, msg, ename = log:truncate(plan.offset)
  if not ok then return done(nil, io_err(msg, ename, { path = path, op = "truncate", plan = plan })) end
  return done({ action = "truncated", plan = plan, cut_file = cut_file })
end

return repair
