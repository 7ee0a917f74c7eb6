--- File fingerprints (size + mtime + CRC-32) used by reports and `--resume`.
-- A directory's fingerprint covers every regular file below it (sorted relative paths,
-- their sizes, mtimes and contents), so a data directory changes when any file does.
-- A job's input fingerprint (`fingerprint.of_input`) leaves out what the job itself writes
-- there: a compaction whose output lies inside its own data dir, the output's temp
-- siblings, and the data dir's `store.lock` (a lock holds no data), so the next resume
-- still recognises the input as unchanged.
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
  -- never blocks: a FIFO, device or socket input is refused (docs/safety.md)
  local f, err = require("actionqueue.storage.fsutil").open_input(path)
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

local function walk(dir, rel, out, skip)
  for _, name in ipairs(fsutil.list_dir(dir)) do
    local path, r = dir .. "/" .. name, (rel == "" and name or rel .. "/" .. name)
    local a = lfs.attributes(path)
    if skip and skip(r) then -- luacheck: ignore 542 (left out on purpose)
    elseif a and a.mode == "directory" then
      walk(path, r, out, skip)
    elseif a and a.mode == "file" then
      out[#out + 1] = { path = path, rel = r, size = a.size, mtime = a.modification }
    end
  end
end

--- Fingerprint of a file or directory.
-- @tparam string path
-- @tparam[opt] function skip for a directory: `skip(relative_path)` true leaves that entry out
-- @treturn table `{size = N, mtime = T, crc = C}` (directories: totals over their files)
-- @return nil, message when the path cannot be read
function fingerprint.of(path, skip)
  local a, err = lfs.attributes(path)
  if not a then return nil, err end
  if a.mode == "directory" then
    local files = {}
    local ok, werr = pcall(walk, path, "", files, skip)
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

--- Fingerprint of a job's input, without what the job writes into it (see the module text).
-- @tparam table job normalised job (`path`, optional `output_path`)
-- @treturn table|nil fingerprint (see `fingerprint.of`)
-- @return nil, message
function fingerprint.of_input(job)
  if lfs.attributes(job.path, "mode") ~= "directory" then return fingerprint.of(job.path) end
  local outputs = require "actionqueue.storage.batch.outputs"
  local out_rel
  if job.output_path then
    local root = outputs.canonical(job.path) .. "/"
    local out = outputs.canonical(job.output_path)
    if out:sub(1, #root) == root then out_rel = out:sub(#root + 1) end
  end
  return fingerprint.of(job.path, function(rel)
    if rel == "store.lock" then return true end
    if out_rel and (rel == out_rel or rel:sub(1, #out_rel + 4) == out_rel .. ".tmp") then return true end
    return false
  end)
end

--- True when two fingerprints describe the same content.
function fingerprint.same(a, b)
  return a ~= nil and b ~= nil and a.size == b.size and a.mtime == b.mtime and a.crc == b.crc
end

return fingerprint
