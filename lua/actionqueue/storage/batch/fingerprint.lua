--- File fingerprints (size + mtime + CRC-32) used by reports and `--resume`.
-- A directory's fingerprint covers every regular file below it (sorted relative paths,
-- their sizes, mtimes and contents), so a data directory changes when any file does.
-- @module actionqueue.storage.batch.fingerprint
local lfs = require "lfs"
local fsutil = require "actionqueue.storage.fsutil"
local core = require "actionqueue.storage.core"

local fingerprint = {}

local CHUNK = 1 << 20

--- CRC-32 of a whole file, streamed.
-- @tparam string path
-- @tparam[opt] integer crc running CRC to continue
-- @treturn integer crc
-- @treturn integer bytes read
-- @return nil, message
function fingerprint.file_crc(path, crc)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  crc = crc or 0
  local n = 0
  while true do
    local chunk = f:read(CHUNK)
    if not chunk then break end
    crc = core.crc32(chunk, crc)
    n = n + #chunk
  end
  f:close()
  return crc, n
end

local function walk(dir, rel, out)
  for _, name in ipairs(fsutil.list_dir(dir)) do
    local path, r = dir .. "/" .. name, (rel == "" and name or rel .. "/" .. name)
    local a = lfs.attributes(path)
    if a and a.mode == "directory" then
      walk(path, r, out)
    elseif a and a.mode == "file" then
      out[#out + 1] = { path = path, rel = r, size = a.size, mtime = a.modification }
    end
  end
end

--- Fingerprint of a file or directory.
-- @tparam string path
-- @treturn table `{size = N, mtime = T, crc = C}` (directories: totals over their files)
-- @return nil, message when the path cannot be read
function fingerprint.of(path)
  local a, err = lfs.attributes(path)
  if not a then return nil, err end
  if a.mode == "directory" then
    local files = {}
    local ok, werr = pcall(walk, path, "", files)
    if not ok then return nil, tostring(werr) end
    local crc, size, mtime = 0, 0, 0
    for _, f in ipairs(files) do
      crc = core.crc32(string.format("%s\0%d\0%d\0", f.rel, f.size, f.mtime), crc)
      local c
      c, err = fingerprint.file_crc(f.path, crc)
      if not c then return nil, err end
      crc = c
      size = size + f.size
      if f.mtime > mtime then mtime = f.mtime end
    end
    return { size = size, mtime = mtime, crc = crc }
  end
  local crc
  crc, err = fingerprint.file_crc(path)
  if not crc then return nil, err end
  return { size = a.size, mtime = a.modification, crc = crc }
end

--- True when two fingerprints describe the same content.
function fingerprint.same(a, b)
  return a ~= nil and b ~= nil and a.size == b.size and a.mtime == b.mtime and a.crc == b.crc
end

return fingerprint
