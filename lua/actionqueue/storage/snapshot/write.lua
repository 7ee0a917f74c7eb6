--- The snapshot writer: validate (§6), refuse a version the loader would reject, encode
-- canonically and stream the frame through the C atomic writer (temp sibling, fsync,
-- rename, directory fsync). On any failure the target keeps its previous content and no
-- temp file is left behind.
-- @module actionqueue.storage.snapshot.write
local core = require "actionqueue.storage.core"
local errors = require "actionqueue.storage.errors"
local codec = require "actionqueue.storage.snapshot.codec"
local S = require "actionqueue.storage.schema.snapshot"

local write = {}

-- The reference's texts (snapshot-format.md §2.6) from the C writer's error details
-- (`info` = `w:last_error()`: op, errno, ename, os_message, replaced). `detail` keeps the
-- C message, which names the file.
local DIR_TEXT = {
  ["open dir"] = "failed to open snapshot parent directory for fsync: ",
  ["fsync dir"] = "failed to fsync snapshot parent directory: ",
  ["close dir"] = "failed to fsync snapshot parent directory: ",
}
-- Our addition after a failed directory step: the rename already happened.
write.REPLACED_SUFFIX = " (snapshot replaced, durability unknown)"

local fsutil = require "actionqueue.storage.fsutil"

-- What an errno at creating the temp file means for the user: the OUTPUT side is wrong
-- (the engine's text reads as if the input were missing).
local OPEN_HINT = {
  ENOENT = "the output directory %s does not exist",
  ENOTDIR = "a component of the output directory %s is not a directory",
  EACCES = "no permission to create files in the output directory %s",
  EROFS = "the output directory %s is on a read-only file system",
  ENOSPC = "no space left in the output directory %s",
}

local function hint_for(info, path)
  local h = info and info.op == "open temp" and OPEN_HINT[info.ename]
  if h then
    local dir = fsutil.dirname(path)
    return h:format(dir == "" and "/" or dir)
  end
end

local function io_error(msg, ename, info, path)
  local f = { detail = msg, errno = ename, target = path }
  local text = tostring(msg)
  if info then
    f.op, f.path, f.os_errno, f.replaced = info.op, info.path, info.errno, info.replaced
    text = (DIR_TEXT[info.op] or "") .. info.os_message
    if info.replaced then text = text .. write.REPLACED_SUFFIX end
  end
  return errors.new("IoError", f, "I/O error: " .. text)
end

--- Writes `snap` atomically to `path`.
-- @tparam string path target file
-- @tparam table snap the snapshot
-- @tparam[opt] table opts `chunk_size` (default 65536); `validated = true` skips the §6
--   validation when the caller knows `snap` passed it unchanged (e.g. it was just loaded:
--   the loader validates, and decode-time rules are stricter than §6)
-- The file is replaced by the protocol of docs/safety.md: a temp file of its own (never
-- shared, never through a symlink), the previous file's mode and owner, a temp that was
-- removed or replaced by someone else makes the write fail; a symlink at `path` is
-- replaced by the new file (its destination is never written).
-- @return `true` or `nil, err` (`err.kind` MappingError | UnsupportedVersion |
--   EncodeError | IoError; `err.replaced = true` when only the directory fsync failed
--   after the new file was already in place). IoError texts are the reference's
--   (snapshot-format.md §2.6): `I/O error when opening snapshot file: <os message>`,
--   `I/O error: <os message>` (write, fsync, rename), `I/O error: failed to open snapshot
--   parent directory for fsync: <os message>` / `... failed to fsync snapshot parent
--   directory: <os message>`, the last two followed by `REPLACED_SUFFIX`. `err.detail`
--   is the C message naming the file, `err.op` the failing step ("open temp", "write",
--   "write header", "chmod", "fsync", "close", "verify temp", "rename", "open dir",
--   "fsync dir", "close dir"), `err.path` the file that step acted on (the temp file, the
--   target or the directory), `err.target` = `path`, `err.os_errno` the errno, `err.hint`
--   a sentence about the output side where the errno says more (missing directory ...);
--   `errors.where(err)` formats them for display after the message.
function write.write(path, snap, opts)
  assert(type(path) == "string", "snapshot.write: path string expected")
  assert(type(snap) == "table", "snapshot.write: snapshot table expected")
  if not (opts and opts.validated) then
    local validate = require "actionqueue.storage.snapshot.validate"
    local ok, v = validate.validate(snap)
    -- (a table the encoder refuses fails below with the encoder's EncodeError)
    if not ok and v.kind ~= "EncodeError" then
      return nil, errors.new("MappingError", { violation = v }, "Mapping error: " .. v.message)
    end
  end
  if snap.version ~= S.FRAME_VERSION then
    return nil, errors.new("UnsupportedVersion", { version = snap.version },
      ("refusing to write snapshot version %s: the frame version would be %s and the loader "
        .. "only accepts %d"):format(tostring(snap.version), tostring(snap.version), S.FRAME_VERSION))
  end
  local chunk = opts and opts.chunk_size
  -- The writer itself is the sink: the C encoder writes its chunks straight to it (no
  -- Lua string per chunk, so no garbage for the collector to traverse the document for).
  return write.stream(path, function(w) return codec.encode(snap, w, chunk) end)
end

--- Writes a payload produced in pieces atomically to `path`, framed (version
-- `S.FRAME_VERSION`), with the texts and the protocol of `write.write` (which is this
-- with the canonical encoder as `produce`).
-- @tparam string path target file
-- @tparam function produce `produce(w)` writes the payload with `w:write(chunk)` (or as
--   an encoder's sink); returns true, or nil and an error value (returned as is, unless
--   the writer failed: then its IoError)
-- @tparam[opt] function judge `judge(w)` after the frame is complete, before the file
--   replaces `path` (the temp file is `w:temp_path()`): true to go on, or a false value
--   and a reason: the write is then abandoned and `false, reason` returned
-- @return `true` | `nil, err` like `write.write` | `false, reason` (judged)
function write.stream(path, produce, judge)
  local w, msg, ename, info = core.atomic_writer(path)
  if not w then
    local text = tostring(msg)
    if info and info.op == "path" then
      text = "snapshot path has no filename component: " .. path
    elseif info then
      text = info.os_message
    end
    return nil, errors.new("IoError", { detail = msg, errno = ename, os_errno = info and info.errno,
      op = info and info.op, path = info and info.path, target = path, hint = hint_for(info, path) },
      "I/O error when opening snapshot file: " .. text)
  end
  local r
  r, msg, ename = w:begin_frame(S.FRAME_VERSION)
  if not r then
    w:abort()
    return nil, io_error(msg, ename, w:last_error(), path)
  end
  local done, err = produce(w)
  if not done then
    -- an I/O failure is remembered by the writer and repeated by every later call
    local okw, m, e = w:write("")
    local winfo = w:last_error()
    w:abort()
    if not okw then return nil, io_error(m, e, winfo, path) end
    return nil, err
  end
  r, msg, ename = w:finish_frame()
  if not r then
    local finfo = w:last_error()
    w:abort()
    return nil, io_error(msg, ename, finfo, path)
  end
  if judge then
    local fine, reason = judge(w)
    if not fine then
      w:abort()
      return false, reason
    end
  end
  local replaced
  r, msg, ename, replaced = w:close()
  if not r then
    local cinfo = w:last_error()
    if replaced ~= "replaced" then w:abort() end
    local close_err = io_error(msg, ename, cinfo, path)
    close_err.replaced = replaced == "replaced"
    return nil, close_err
  end
  return true
end

return write
