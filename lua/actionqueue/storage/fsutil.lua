--- Small file-system helpers shared by the library, the batch runner and the CLI.
-- Plain (non-frame) files only: snapshot frames go through the core AtomicWriter and
-- WAL records through the FramedLog. Errors follow the io.open convention
-- (`nil, "path: strerror"`) unless stated otherwise.
-- @module actionqueue.storage.fsutil
local core = require "actionqueue.storage.core"

local fsutil = {}

--- Reads a whole file.
-- @treturn string data
-- @return nil, message (io.open's)
function fsutil.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read("a")
  f:close()
  return data
end

--- Reads up to `size` bytes at byte `offset` (0-based); "" at the end of the file.
-- @return nil, message (io.open's)
function fsutil.read_range(path, offset, size)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  f:seek("set", offset)
  local data = f:read(size) or ""
  f:close()
  return data
end

--- Size in bytes of a file that can be opened for reading, else nil.
function fsutil.file_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

--- True when something (file, directory, ...) exists at `path` (lfs.attributes).
function fsutil.exists(path)
  return require("lfs").attributes(path, "mode") ~= nil
end

--- The directory part of `path`: "." without a slash, "" for a name in "/".
function fsutil.dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

--- The names in directory `dir` except "." and "..", sorted. Raises like `lfs.dir` when
-- the directory cannot be read.
function fsutil.list_dir(dir)
  local names = {}
  for name in require("lfs").dir(dir) do
    if name ~= "." and name ~= ".." then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

--- Creates directory `path` and its missing parents (`mkdir -p`), as the engine's
-- bootstrap does. With `opts.check_only` nothing is created: it only reports the error
-- the creation would hit (a component that exists but is not a directory), so a
-- read-only caller fails exactly where the engine would and succeeds where it would
-- have created something.
-- @return true | nil, message (`I/O error: ...`, the engine's WalInit text)
function fsutil.mkdir_p(path, opts)
  local lfs = require "lfs"
  local check_only = opts and opts.check_only
  local acc = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    acc = acc .. "/" .. part
    local mode = lfs.attributes(acc, "mode")
    if mode == nil then
      if check_only then return true end
      local ok, err = lfs.mkdir(acc)
      if not ok and lfs.attributes(acc, "mode") ~= "directory" then
        return nil, "I/O error: " .. tostring(err)
      end
    elseif mode ~= "directory" then
      return nil, "I/O error: File exists (os error 17)"
    end
  end
  return true
end

--- fsyncs directory `dir` ("" is "/") so names created or renamed in it survive a crash.
-- A directory that cannot be opened is skipped (true).
-- @return true | nil, message, ENAME (the fsync failed)
function fsutil.fsync_dir(dir)
  local fd = core.proc_open(dir == "" and "/" or dir, "directory")
  if not fd then return true end
  local ok, msg, ename = core.proc_fsync(fd)
  core.proc_close(fd)
  if not ok then return nil, msg, ename end
  return true
end

--- Writes `data` to `path` atomically: `path.tmp`, fsync, rename, directory fsync.
-- (The core AtomicWriter writes frames only; this is for plain files such as reports.)
-- @treturn boolean true
-- @return nil, message
function fsutil.write_file_atomic(path, data)
  local tmp = path .. ".tmp"
  local fd, err = core.proc_open(tmp, "truncate")
  if not fd then return nil, err end
  local ok
  ok, err = core.proc_write(fd, data)
  if ok then ok, err = core.proc_fsync(fd) end
  core.proc_close(fd)
  if ok then ok, err = os.rename(tmp, path) end
  if not ok then
    os.remove(tmp)
    return nil, err
  end
  ok, err = fsutil.fsync_dir(fsutil.dirname(path))
  if not ok then return nil, err end
  return true
end

return fsutil
