--- WAL repair (wal-format.md §5).
--
-- * `strict`: refuses any corruption (the reference's Strict open policy).
-- * `truncate_partial`: the reference's TruncatePartial: cut at the first bad record of
--   any kind, even mid-file, dropping every byte after it (valid records included).
-- * `safe` (our default for `aqstore wal repair`): truncates only a damaged *tail* (no
--   decodable record after the bad one), refuses mid-file corruption unless `force`;
--   before cutting, it copies the cut bytes durably to `FILE.cut-OFFSET`.
--
-- `plan` reports what a cut would drop: bytes, the bad record, and how many records
-- after it still look valid (they are lost by a cut: the format has no resynchronisation).
-- @module actionqueue.storage.wal.repair
local core = require "actionqueue.storage.core"
local errors = require "actionqueue.storage.errors"
local fsutil = require "actionqueue.storage.fsutil"
local reader = require "actionqueue.storage.wal.reader"
local appender = require "actionqueue.storage.wal.appender"

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

--- Copies `bytes` to `path` durably: a new file (an existing one is replaced), one
-- write, fdatasync, then an fsync of the directory so the new name survives a crash.
local function save_cut(path, bytes)
  os.remove(path)
  local log, msg, ename = core.log_open(path, { create = true })
  if not log then return nil, msg, ename end
  local ok
  ok, msg, ename = log:append(bytes)
  if ok then ok, msg, ename = log:sync() end
  log:close()
  if not ok then return nil, msg, ename end
  return fsutil.fsync_dir(fsutil.dirname(path))
end

--- Repairs a WAL.
-- @tparam string path
-- @tparam[opt] table opts `mode` ("safe" default | "truncate_partial" | "strict"),
--   `force` (safe mode: also cut mid-file corruption), `keep_cut` (default true in
--   safe mode: write `FILE.cut-OFFSET` first), `workflow`
-- @return result `{action = "none"|"truncated", plan = plan, cut_file = path|nil}` |
--   nil, err (refused or failed; `err.plan` holds the plan)
function repair.run(path, opts)
  opts = opts or {}
  local mode = opts.mode or "safe"
  local plan, err = repair.plan(path, opts)
  if not plan then return nil, err end
  if plan.ok then return { action = "none", plan = plan } end
  if mode == "strict" then
    return nil, errors.new("Corruption", { offset = plan.offset, reason = plan.kind, plan = plan },
      "strict WAL tail validation failed during bootstrap: " .. plan.error.message)
  end
  if mode == "safe" and not plan.tail and not opts.force then
    return nil, errors.new("Refused", { offset = plan.offset, reason = plan.kind, plan = plan },
      string.format("refusing to cut mid-file corruption at offset %d (%s): %d bytes and %d valid " ..
        "record(s) after it would be lost; use --force", plan.offset, plan.kind,
        plan.dropped_bytes, plan.dropped_valid_records))
  end
  local cut_file
  if mode == "safe" and opts.keep_cut ~= false then
    cut_file = string.format("%s.cut-%d", path, plan.offset)
    local ok, msg = save_cut(cut_file, fsutil.read_range(path, plan.offset, plan.dropped_bytes) or "")
    if not ok then
      return nil, errors.new("IoError", { plan = plan }, "I/O error: cannot save cut bytes: " .. tostring(msg))
    end
  end
  local log, msg, ename = core.log_open(path, { create = false })
  if not log then return nil, errors.new("IoError", { errno = ename }, "I/O error: " .. tostring(msg)) end
  local ok
  ok, msg, ename = log:truncate(plan.offset)
  log:close()
  if not ok then return nil, errors.new("IoError", { errno = ename }, "I/O error: " .. tostring(msg)) end
  return { action = "truncated", plan = plan, cut_file = cut_file }
end

return repair
