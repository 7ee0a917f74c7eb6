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

local function io_error(msg, ename, extra)
  local f = { detail = msg, errno = ename }
  for k, v in pairs(extra or {}) do f[k] = v end
  return errors.new("IoError", f, "I/O error: " .. tostring(msg))
end

--- Writes `snap` atomically to `path`.
-- @tparam string path target file
-- @tparam table snap the snapshot
-- @tparam[opt] table opts `chunk_size` (default 65536); `validated = true` skips the §6
--   validation when the caller knows `snap` passed it unchanged (e.g. it was just loaded:
--   the loader validates, and decode-time rules are stricter than §6)
-- @return `true` or `nil, err` (`err.kind` MappingError | UnsupportedVersion |
--   EncodeError | IoError; `err.replaced = true` when only the directory fsync failed
--   after the new file was already in place)
function write.write(path, snap, opts)
  assert(type(path) == "string", "snapshot.write: path string expected")
  assert(type(snap) == "table", "snapshot.write: snapshot table expected")
  if not (opts and opts.validated) then
    local validate = require "actionqueue.storage.snapshot.validate"
    local ok, v = validate.validate(snap)
    if not ok then
      return nil, errors.new("MappingError", { violation = v }, "Mapping error: " .. v.message)
    end
  end
  if snap.version ~= S.FRAME_VERSION then
    return nil, errors.new("UnsupportedVersion", { version = snap.version },
      ("refusing to write snapshot version %s: the frame version would be %s and the loader "
        .. "only accepts %d"):format(tostring(snap.version), tostring(snap.version), S.FRAME_VERSION))
  end
  local w, msg, ename = core.atomic_writer(path)
  if not w then
    return nil, errors.new("IoError", { detail = msg, errno = ename },
      "I/O error when opening snapshot file: " .. tostring(msg))
  end
  local r
  r, msg, ename = w:begin_frame(S.FRAME_VERSION)
  if not r then
    w:abort()
    return nil, io_error(msg, ename)
  end
  -- The writer itself is the sink: the C encoder writes its chunks straight to it (no
  -- Lua string per chunk, so no garbage for the collector to traverse the document for).
  local done, err = codec.encode(snap, w, opts and opts.chunk_size)
  if not done then
    -- an I/O failure is remembered by the writer and repeated by every later call
    local okw, m, e = w:write("")
    w:abort()
    if not okw then return nil, io_error(m, e) end
    return nil, err
  end
  r, msg, ename = w:finish_frame()
  if not r then
    w:abort()
    return nil, io_error(msg, ename)
  end
  local replaced
  r, msg, ename, replaced = w:close()
  if not r then
    if replaced ~= "replaced" then w:abort() end
    return nil, io_error(msg, ename, { replaced = replaced == "replaced" })
  end
  return true
end

return write
