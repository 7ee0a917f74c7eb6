--- WAL v5 reading (wal-format.md §3): record scans with the three classification
-- orders, the streaming Reader object (§3.4) and the in-memory buffer validators (§3.6).
--
-- The frame checks (header, length cap, version, payload present, zero length, CRC)
-- run in the C core's `frames` iterator in the order of the requesting component;
-- this module adds the last step, `decode_failure` for a payload that does not decode.
-- Reading never goes past the first bad record.
-- @module actionqueue.storage.wal.reader
local core = require "actionqueue.storage.core"
local errors = require "actionqueue.storage.errors"
local codec = require "actionqueue.storage.wal.codec"

local reader = {}

local HEADER = codec.HEADER_SIZE
local CORRUPTION = {
  incomplete_header = true, incomplete_payload = true, unsupported_version = true,
  crc_mismatch = true, decode_failure = true,
}
reader.CORRUPTION = CORRUPTION

--- A corruption error value (`WAL corruption at offset O (token)`).
function reader.corruption(offset, token, detail)
  return errors.new("Corruption", { offset = offset, reason = token, detail = detail },
    string.format("WAL corruption at offset %d (%s)", offset, token))
end

local ERRNO = { EPERM = 1, ENOENT = 2, EIO = 5, EBADF = 9, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
  EEXIST = 17, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENFILE = 23, EMFILE = 24, ETXTBSY = 26,
  EFBIG = 27, ENOSPC = 28, EROFS = 30, ENAMETOOLONG = 36, ELOOP = 40, EDQUOT = 122 }

--- Rust's io::Error display (`<strerror> (os error N)`) of a C core error
-- (`"op path: strerror", "ENAME"`).
function reader.os_error_text(msg, ename)
  local text = tostring(msg):match(".*: (.-)$") or tostring(msg)
  local n = ERRNO[ename]
  if n then return string.format("%s (os error %d)", text, n) end
  return text
end

-- Rust's io::Error display for a frames status.
local function os_text(status)
  if status.status == "missing" then return "No such file or directory (os error 2)" end
  return status.message or status.errno or "unknown I/O error"
end

--- Converts a final `frames` status into nil (clean end) or an error value.
function reader.status_error(st)
  if st.status == "end" then return nil end
  if CORRUPTION[st.status] then return reader.corruption(st.offset, st.status, st.detail) end
  if st.status == "missing" then
    return errors.new("IoError", { offset = 0, errno = "ENOENT" },
      "I/O error when opening WAL file: " .. os_text(st))
  end
  return errors.new("IoError", { offset = st.offset, errno = st.errno }, "I/O error: " .. os_text(st))
end

local status_error = reader.status_error

--- Scans a log from offset 0 (or from `opts.offset`, which must be a record boundary).
-- @param source a path or a FramedLog
-- @tparam[opt] table opts `order` ("reader" default | "writer_open"), `workflow`,
--   `skim` (validate without building events; implied when there is no `on_record`),
--   `offset` (start; `valid_bytes` then counts from 0 as well)
-- @tparam[opt] function on_record called as `on_record(offset, event, payload)`, or
--   with `skim` as `on_record(offset, nil, payload, sequence, variant)`
-- @treturn table summary `{records, valid_bytes, last_sequence, max_sequence, error}`
--   where `error` is nil (clean end), a Corruption or an IoError value
function reader.scan(source, opts, on_record)
  opts = opts or {}
  local copts = codec.options(opts)
  local skim = opts.skim or not on_record
  local decode, skim_payload = codec.decode_payload, codec.skim_payload
  local summary = { records = 0, valid_bytes = 0, last_sequence = 0, max_sequence = 0 }
  local valid = opts.offset or 0
  local n, last, max = 0, 0, 0
  for offset, _, payload in core.frames(source, { order = opts.order or "reader", version = 5,
                                                  offset = valid }) do
    if type(offset) == "table" then
      summary.error = status_error(offset)
      break
    end
    local ev, seq, variant
    if skim then
      local used
      used, seq, variant = skim_payload(payload, copts)
      if not used then
        summary.error = reader.corruption(offset, "decode_failure", seq)
        break
      end
    else
      local derr
      ev, derr = decode(payload, copts)
      if not ev then
        summary.error = reader.corruption(offset, "decode_failure", derr)
        break
      end
      seq = ev.sequence
    end
    n = n + 1
    last = seq
    if math.ult(max, last) then max = last end
    valid = offset + HEADER + #payload
    if on_record then on_record(offset, ev, payload, seq, variant) end
  end
  summary.records, summary.valid_bytes = n, valid
  summary.last_sequence, summary.max_sequence = last, max
  return summary
end

-- ---------------------------------------------------------------------------
-- Buffer validators (§3.6): payload present -> version -> zero length -> CRC -> decode.

local function walk_buffer(data, opts)
  local copts = codec.options(opts)
  local pos, size, high, n = 0, #data, 0, 0
  local function bad(token) return high, pos, reader.corruption(pos, token), n end
  while true do
    if pos == size then return high, pos, nil, n end
    if size - pos < HEADER then return bad("incomplete_header") end
    local version, length, crc = string.unpack("<I4I4I4", data, pos + 1)
    if size - pos - HEADER < length then return bad("incomplete_payload") end
    if version ~= codec.FRAME_VERSION then return bad("unsupported_version") end
    if length == 0 then return bad("decode_failure") end
    local payload = data:sub(pos + HEADER + 1, pos + HEADER + length)
    if core.crc32(payload) ~= crc then return bad("crc_mismatch") end
    local used, seq = codec.skim_payload(payload, copts)
    if not used then return bad("decode_failure") end
    if math.ult(high, seq) then high = seq end
    n = n + 1
    pos = pos + HEADER + length
  end
end

--- Strict buffer validation of a whole-file byte string.
-- @return highest sequence, end offset | nil, corruption
function reader.validate_buffer_strict(data, opts)
  local high, pos, err = walk_buffer(data, opts)
  if err then return nil, err end
  return high, pos
end

--- Lenient buffer validation: highest sequence of the valid prefix, its end offset,
-- the first corruption (nil when none) and the number of valid records.
-- Trailing and mid-file corruption look alike.
function reader.validate_buffer_lenient(data, opts)
  return walk_buffer(data, opts)
end

-- ---------------------------------------------------------------------------
-- The streaming Reader (§3.4).

local Reader = {}
Reader.__index = Reader
reader.Reader = Reader

--- Opens a reader. An empty file at open time starts in the "at end" state.
-- @return Reader | nil, IoError (`I/O error when opening WAL file: <e>`)
function reader.open(path, opts)
  local log, msg, ename = core.log_open(path, { readonly = true, create = false })
  if not log then
    local text = reader.os_error_text(msg, ename)
    return nil, errors.new("IoError", { errno = ename, os_message = text, path = path, op = "open" },
      "I/O error when opening WAL file: " .. text)
  end
  return setmetatable({
    log = log, opts = opts or {}, pos = 0, sequence = 0,
    eof = log:size() == 0, iter = nil, held = nil,
  }, Reader)
end

-- A frames iterator positioned at self.pos (a record boundary: 0 or the end of the
-- last record returned), so continuing after a clean end does not re-walk the file.
function Reader:_iterator()
  return core.frames(self.log, { order = "reader", version = 5, offset = self.pos })
end

--- Next event, `nil` at clean end, or `nil, err`. A corruption sets the end flag so
-- the next call returns nil; I/O errors do not.
function Reader:next()
  if self.held then
    local ev = self.held
    self.held = nil
    self.sequence = ev.sequence
    return ev
  end
  if self.eof or not self.log then return nil end
  if not self.iter then self.iter = { self:_iterator() } end
  local it = self.iter
  local offset, _, payload = it[1](it[2])
  if type(offset) ~= "number" then
    self.iter = nil
    local err = offset and status_error(offset)
    if err and err.kind == "Corruption" then self.eof = true end
    if err then return nil, err end
    return nil
  end
  local ev, derr = codec.decode_payload(payload, codec.options(self.opts))
  if not ev then
    self.iter, self.eof = nil, true
    return nil, reader.corruption(offset, "decode_failure", derr)
  end
  self.pos = offset + HEADER + #payload
  self.sequence = ev.sequence
  return ev, offset
end

--- Sequence number of the last event returned (0 initially).
function Reader:current_sequence()
  return self.sequence
end

--- True when the end flag is set.
function Reader:at_end()
  return self.eof
end

--- Clears the end flag so later appends become visible.
function Reader:reset_eof()
  self.eof = false
end

--- Seeks to the first record whose sequence equals `s` after a strict validation of the
-- whole file; the next `next()` returns that record.
--
-- One pass does both (§3.4): the strict scan remembers the first exact match, and the
-- seek fails with the first corruption anywhere even when the match precedes it.
-- `opts.validated_bytes = V` (recovery bootstrap): the caller has just validated the
-- prefix [0, V) of this file strictly (the appender's writer-open scan, whose checks
-- are the reader's in another order, so a prefix valid for one is valid for the
-- other); only [V, end) is validated again, then the search stops at the match.
-- @return true | nil, err (corruption, or `End of WAL reached`)
function Reader:seek_to_sequence(s, opts)
  if not self.log then return nil, errors.new("EndOfWal", nil, "End of WAL reached") end
  local v = opts and opts.validated_bytes or 0
  if v > self.log:size() then v = 0 end
  local found, at
  local sopts = { skim = true }
  for k, val in pairs(self.opts) do if sopts[k] == nil then sopts[k] = val end end
  local function match(offset, _, payload, seq)
    if not found and seq == s then found, at = payload, offset end
  end
  if v == 0 then
    local summary = reader.scan(self.log, sopts, match)
    if summary.error then return nil, summary.error end
  else
    sopts.offset = v
    local summary = reader.scan(self.log, sopts)
    if summary.error then return nil, summary.error end
    local copts = codec.options(self.opts)
    for offset, _, payload in core.frames(self.log, { order = "reader", version = 5 }) do
      if type(offset) ~= "number" then
        -- a read error here is not "no such sequence": it must not end the replay quietly
        local serr = status_error(offset)
        if serr then return nil, serr end
        break
      end
      local used, seq = codec.skim_payload(payload, copts)
      if not used then break end
      if seq == s then found, at = payload, offset break end
    end
  end
  self.iter = nil
  self.pos = 0
  if found then
    self.pos = at + HEADER + #found
    found = codec.decode_payload(found, codec.options(self.opts))
  end
  if not found then
    return nil, errors.new("EndOfWal", nil, "End of WAL reached")
  end
  self.held = found
  self.eof = false
  return true
end

--- A reader over no file at all: what a reader of a missing WAL would see once the
-- engine's bootstrap had created it empty (the read-only recovery bootstrap uses it
-- instead of creating the file). Every read returns nil; a seek finds nothing.
function reader.empty(opts)
  return setmetatable({ log = nil, opts = opts or {}, pos = 0, sequence = 0, eof = true }, Reader)
end

--- Closes the underlying file.
function Reader:close()
  self.iter = nil
  if self.log then self.log:close() end
  self.log = nil
end

return reader
