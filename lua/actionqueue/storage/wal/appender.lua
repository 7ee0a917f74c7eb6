--- Durable WAL appender (wal-format.md §4-6).
--
-- Opening scans the log with the writer-open classification order; the repair policy
-- decides what a corrupt record does (`strict`: refuse; `truncate_partial`: cut the
-- file at the first bad record, the reference's TruncatePartial). `current_sequence`
-- is the sequence of the LAST valid record. Each `append` writes one record with one
-- write (rolled back by the C FramedLog on failure) and enforces strictly increasing
-- sequences.
--
-- Sync policies: `always` (fdatasync after every append; the append is acknowledged
-- after it), `batch` (group commit: appends are written, `commit()` syncs once and
-- acknowledges them all; `append_batch(events)` does both), `none` (no sync).
-- @module actionqueue.storage.wal.appender
local core = require "actionqueue.storage.core"
local errors = require "actionqueue.storage.errors"
local codec = require "actionqueue.storage.wal.codec"
local reader = require "actionqueue.storage.wal.reader"
local datadir = require "actionqueue.storage.datadir"

local appender = {}

local U64_MAX = -1   -- 18446744073709551615 as a Lua integer bit pattern
local SYNC = { always = true, batch = true, none = true }
local REPAIR = { strict = "strict", truncate_partial = "truncate_partial",
                 ["truncate-partial"] = "truncate_partial" }

local function u64s(n) return string.format("%u", n) end

--- The next sequence after `n`, saturating at u64::MAX.
function appender.next_sequence(n)
  if n == U64_MAX then return U64_MAX end
  return n + 1
end

local Appender = {}
Appender.__index = Appender
appender.Appender = Appender

local OPEN_PREFIX = "I/O error when opening or bootstrapping WAL file: "

-- `file`: the file the C message `"STEP FILE: strerror"` names; the step and the file
-- then go into `err.op` / `err.path` (the engine's text has neither; issue 13 "Errors").
local function io_error(prefix, msg, ename, file)
  local fields = { errno = ename, cause = msg }
  local at = file and tostring(msg):find(" " .. file .. ": ", 1, true)
  if at then fields.op, fields.path = msg:sub(1, at - 1), file end
  return errors.new("IoError", fields, prefix .. reader.os_error_text(msg, ename))
end

--- The appender's open error (wal-format.md §4.1, §10) for a writer-open scan error:
-- `I/O error when opening or bootstrapping WAL file: <e>` or, under the Strict policy,
-- `strict WAL tail validation failed during bootstrap: <corruption>`. The read-only
-- recovery bootstrap scans without an appender and reports the same texts through it.
function appender.open_error(err)
  if err.kind ~= "Corruption" then
    return errors.new("IoError", { errno = err.errno },
      OPEN_PREFIX .. (err.message:gsub("^I/O error: ", "")))
  end
  return errors.new("Corruption", { offset = err.offset, reason = err.reason },
    "strict WAL tail validation failed during bootstrap: " .. err.message)
end

-- Opens `path` read+write, creating it when missing: FramedLog | nil, err.
-- A symlink as the last component is refused, never followed (docs/wal.md).
local function open_log(path)
  -- a WAL in a data dir: never created or written through a linked wal/ folder
  local data_dir = datadir.of_wal(path)
  if data_dir then
    local ok, uerr = datadir.check_layout(data_dir, "open the WAL for writing")
    if not ok then return nil, uerr end
  end
  -- lstat, not an open: opening a FIFO to probe it would block (issue 13 defect 10)
  local probe = require("lfs").symlinkattributes(path, "mode")
  local log, msg, ename = core.log_open(path, { create = true, nofollow = true })
  if not log then
    local err = io_error(OPEN_PREFIX, msg, ename, path)
    local parent = path:match("^(.*)/[^/]*$") or "."
    if ename == "ENOENT" and not require("lfs").attributes(parent == "" and "/" or parent) then
      -- the engine's text blames the file; say which directory is missing (surface helper)
      err.path, err.hint = path, "the WAL directory " .. parent .. " does not exist (datadir.init creates the layout)"
    end
    return nil, err
  end
  if not probe then
    -- A new file's name is durable only once its directory is synced; without this a
    -- power loss can drop the whole WAL although every append was fdatasync'ed
    -- (found by spec/reliability_powerloss_spec.lua).
    local dir = path:match("^(.*)/[^/]*$") or "."
    local fd
    fd, msg, ename = core.proc_open(dir == "" and "/" or dir, "directory")
    if fd then
      local ok
      ok, msg, ename = core.proc_fsync(fd)
      core.proc_close(fd)
      if not ok then fd = nil end
    end
    if not fd then
      log:close()
      return nil, io_error(OPEN_PREFIX, msg, ename, dir == "" and "/" or dir)
    end
  end
  return log
end

--- Creates an empty WAL file when `path` is missing (the engine's bootstrap side effect;
-- an existing file is left as it is). Returns nil, or the appender's open error.
function appender.create_file(path)
  if require("lfs").attributes(path, "mode") then return nil end
  local log, err = open_log(path)
  if not log then return err end
  log:close()
end

--- Opens (creating if missing) a WAL for appending.
-- @tparam string path
-- @tparam[opt] table opts `repair` ("strict" default | "truncate_partial"),
--   `sync` ("always" default | "batch" | "none"), `workflow` (cron records), `force`
--   (open although another process has the file open for writing). The appender holds
--   an exclusive lock on the file (and on `store.lock` in a data dir) until `close`;
--   while another holds it the open fails with `err.kind == "Locked"`.
-- @return Appender | nil, err; on a truncate the Appender has `truncated = {offset, kind, dropped_bytes}`
function appender.open(path, opts)
  opts = opts or {}
  local repair = REPAIR[opts.repair or "strict"]
  assert(repair, "appender.open: repair must be strict or truncate_partial")
  local sync = opts.sync or "always"
  assert(SYNC[sync], "appender.open: sync must be always, batch or none")
  local log, err = open_log(path)
  if not log then return nil, err end
  -- One appender per file: a second one of ours is refused at once; the 0.1.2 engine
  -- takes no lock, so a process that has the file open for writing refuses it too.
  local guard
  guard, err = datadir.lock_wal(path, log)
  if not guard then
    log:close()
    return nil, err
  end
  local safe, uerr = datadir.verify_wal(path, log, "open the WAL for writing")
  if not safe then
    guard:release()
    log:close()
    return nil, uerr
  end
  local writers = not opts.force and datadir.writers(path) or {}
  if #writers > 0 then
    guard:release()
    log:close()
    return nil, datadir.busy_error(path, writers, "append")
  end
  local summary = reader.scan(log, { order = "writer_open", workflow = opts.workflow })
  local truncated
  err = summary.error
  if err and (err.kind ~= "Corruption" or repair == "strict") then
    guard:release()
    log:close()
    return nil, appender.open_error(err)
  end
  if err then
    local size = log:size()
    local ok, tmsg, tname = log:truncate(err.offset)
    if not ok then
      guard:release()
      log:close()
      return nil, io_error(OPEN_PREFIX, tmsg, tname, path)
    end
    truncated = { offset = err.offset, kind = err.reason, dropped_bytes = size - err.offset }
  end
  return setmetatable({
    log = log, guard = guard, path = path, sync_policy = sync, opts = codec.options(opts),
    sequence = summary.last_sequence, records = summary.records,
    -- Bytes [0, validated_bytes) passed the strict open scan (recovery shares it).
    validated_bytes = truncated and truncated.offset or summary.valid_bytes,
    pending = 0, truncated = truncated, closed = false, poisoned = false,
    appends_ok = 0, appends_failed = 0,
  }, Appender)
end

--- Sequence of the last record written (or scanned at open).
function Appender:current_sequence() return self.sequence end

--- The smallest sequence `append` accepts next (saturating).
function Appender:next_sequence() return appender.next_sequence(self.sequence) end

--- Current file length.
function Appender:size() return self.log:size() end

local POISONED = "WAL writer is permanently poisoned after truncation failure"

function Appender:_usable()
  if self.closed then return nil, errors.new("Closed", nil, "WAL writer is closed") end
  if self.poisoned then return nil, errors.new("Poisoned", nil, POISONED) end
  return true
end

local function sequence_violation(last, seq)
  return errors.new("SequenceViolation",
    { expected = appender.next_sequence(last), got = seq },
    string.format("Sequence violation: expected %s, got %s",
      u64s(appender.next_sequence(last)), math.type(seq) == "integer" and u64s(seq) or tostring(seq)))
end

-- Sequence check + encoding of one event: record bytes | nil, err.
function Appender:_encode(event, last)
  local seq = event.sequence
  if math.type(seq) ~= "integer" or not math.ult(last, seq) then return nil, sequence_violation(last, seq) end
  local rec, eerr = codec.encode_record(event, self.opts)
  if not rec then return nil, errors.new("EncodeError", nil, "Encode error: " .. eerr) end
  return rec
end

function Appender:_write(bytes)
  local at, msg, ename = self.log:append(bytes)
  if not at then
    self.appends_failed = self.appends_failed + 1
    if tostring(msg):find("poisoned", 1, true) then
      self.poisoned = true
      return nil, errors.new("Poisoned", { cause = msg }, POISONED)
    end
    return nil, io_error("I/O error: ", msg, ename)
  end
  return at
end

function Appender:_sync()
  local ok, msg, ename = self.log:sync()
  if not ok then
    self.poisoned = true
    return nil, io_error("I/O error: ", msg, ename)
  end
  self.pending = 0
  return true
end

--- Appends one event (one write). With sync `always` it is fdatasync'ed before the
-- call returns; with `batch` it is durable after the next `commit()`.
-- @return the sequence assigned | nil, err (file untouched on sequence/encode errors)
function Appender:append(event)
  local ok, err = self:_usable()
  if not ok then return nil, err end
  local rec
  rec, err = self:_encode(event, self.sequence)
  if not rec then return nil, err end
  ok, err = self:_write(rec)
  if not ok then return nil, err end
  self.sequence = event.sequence
  self.appends_ok = self.appends_ok + 1
  self.pending = self.pending + 1
  if self.sync_policy == "always" then
    ok, err = self:_sync()
    if not ok then return nil, err end
  end
  return self.sequence
end

--- Group commit: validates and encodes every event, writes them with one write (all
-- or nothing: a failed write is rolled back), then syncs once (unless sync `none`).
-- @return the last sequence | nil, err (nothing written on a sequence/encode error)
function Appender:append_batch(events)
  local ok, err = self:_usable()
  if not ok then return nil, err end
  local last, n = self.sequence, #events
  for i = 1, n do
    local seq = events[i].sequence
    if math.type(seq) ~= "integer" or not math.ult(last, seq) then return nil, sequence_violation(last, seq) end
    last = seq
  end
  if n == 0 then return self.sequence end
  local bytes, eerr = codec.encode_records(events, self.opts)
  if not bytes then return nil, errors.new("EncodeError", nil, "Encode error: " .. eerr) end
  ok, err = self:_write(bytes)
  if not ok then return nil, err end
  self.sequence = last
  self.appends_ok = self.appends_ok + n
  self.pending = self.pending + n
  if self.sync_policy ~= "none" then
    ok, err = self:_sync()
    if not ok then return nil, err end
  end
  return last
end

--- Makes every append so far durable (one fdatasync when anything is pending).
-- @return true | nil, err
function Appender:commit()
  local ok, err = self:_usable()
  if not ok then return nil, err end
  if self.pending == 0 then return true end
  return self:_sync()
end

--- Full sync (reference `flush`).
Appender.flush = function(self)
  local ok, err = self:_usable()
  if not ok then return nil, err end
  return self:_sync()
end

--- Commits pending appends and closes the file.
-- @return true | nil, err
function Appender:close()
  if self.closed then return true end
  local ok, err = true, nil
  if not self.poisoned and self.pending > 0 and self.sync_policy ~= "none" then
    ok, err = self:_sync()
  end
  self.closed = true
  local cok, cmsg, cname = self.log:close()
  self.guard:release()
  if not cok and ok then return nil, io_error("I/O error: ", cmsg, cname) end
  if not ok then return nil, err end
  return true
end

Appender.__close = Appender.close
Appender.__gc = function(self) if not self.closed then pcall(self.close, self) end end

return appender
