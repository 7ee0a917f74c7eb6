--- Small file-system helpers shared by the library, the batch runner and the CLI.
-- Plain (non-frame) files only: snapshot frames go through the core AtomicWriter and
-- WAL records through the FramedLog. Errors follow the io.open convention
-- (`nil, "path: strerror"`) unless stated otherwise.
-- @module actionqueue.storage.fsutil
local core = require "actionqueue.storage.core"

local fsutil = {}

--- Opens an input file for reading, like `io.open(path, "rb")`, but a FIFO, device or
-- socket is refused at once instead of blocking (core.proc_open's "read" mode: a symlink
-- to a regular file is followed, a directory opens as io.open's does). The Lua file is
-- then reopened through /proc/self/fd, so it is that very inode (no window in which the
-- name could be swapped for a FIFO).
-- @treturn file a Lua file
-- @return nil, message (`PATH: strerror`, or `PATH: refusing to read a FIFO ...`)
function fsutil.open_input(path)
  local fd, msg = core.proc_open(path, "read")
  if not fd then
    -- io.open's wording for a missing file ("PATH: No such file or directory")
    return nil, (msg:gsub("^open ", "", 1))
  end
  local f = io.open("/proc/self/fd/" .. fd, "rb")
  core.proc_close(fd)
  if f then return f end
  return io.open(path, "rb")   -- no /proc: the check above still ran
end

--- Reads a whole file. A FIFO, device or socket is refused (it could block forever).
-- @treturn string data
-- @return nil, message (io.open's: `PATH: strerror`)
function fsutil.read_file(path)
  local f, err = fsutil.open_input(path)
  if not f then return nil, err end
  local data, rerr = f:read("a")
  f:close()
  if not data then return nil, path .. ": " .. tostring(rerr) end
  return data
end

--- Reads up to `size` bytes at byte `offset` (0-based); "" at the end of the file.
-- @return nil, message (io.open's)
function fsutil.read_range(path, offset, size)
  local f, err = fsutil.open_input(path)
  if not f then return nil, err end
  f:seek("set", offset)
  local data = f:read(size) or ""
  f:close()
  return data
end

--- Size in bytes of a regular file that can be opened for reading, else nil.
function fsutil.file_size(path)
  local f = fsutil.open_input(path)
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

--- Writes `data` to `path` atomically through the core AtomicWriter in plain mode: a
-- temp sibling of its own (`PATH.tmp.<pid>.<random>`, created exclusively, never through
-- a symlink), the previous file's mode and owner, fsync, rename, directory fsync
-- (docs/safety.md). For reports and other non-frame files.
-- @treturn boolean true
-- @return nil, message (`op FILE: strerror`, naming the step and the file), ENAME, info
--   (`{op, path, errno, ename, os_message, replaced}`)
function fsutil.write_file_atomic(path, data)
  return fsutil.write_file(path, data)
end

--- Creates `path` with `data`, whole or not at all, never replacing an existing file:
-- the same protocol as `write_file_atomic`, but the final rename refuses an existing
-- `path` (EEXIST). A failure leaves neither `path` nor a temp file behind. For files
-- that must never be overwritten (WAL repair's cut files).
-- @return true | nil, message, ENAME, info (as `write_file_atomic`)
function fsutil.create_exclusive(path, data)
  return fsutil.write_file(path, data, { replace = false })
end

--- Removes the temp files that process `pid` left for target `path` (`PATH.tmp.<pid>.<hex>`,
-- see docs/safety.md), e.g. after a batch worker was killed inside the AtomicWriter. Only
-- regular files with exactly that name pattern are removed; call it once `pid` is reaped.
-- @treturn integer number of files removed
function fsutil.remove_temps_of(path, pid)
  local dir, base = path:match("^(.*)/([^/]*)$")
  if not dir then dir, base = ".", path end
  local lfs = require "lfs"
  local prefix = base .. ".tmp." .. tostring(math.tointeger(pid) or pid) .. "."
  local n = 0
  local ok, names = pcall(fsutil.list_dir, dir == "" and "/" or dir)
  if not ok then return 0 end
  for _, name in ipairs(names) do
    if name:sub(1, #prefix) == prefix and #name == #prefix + 16 and not name:sub(#prefix + 1):find("[^0-9a-f]") then
      local full = (dir == "" and "" or dir) .. "/" .. name
      if lfs.symlinkattributes(full, "mode") == "file" and os.remove(full) then n = n + 1 end
    end
  end
  return n
end

--- The one implementation behind `write_file_atomic` and `create_exclusive`.
-- @tparam string path
-- @tparam string data
-- @tparam[opt] table opts `replace = false`: never replace an existing `path`;
--   `foreign = false`: never replace a file owned by another user (EPERM)
function fsutil.write_file(path, data, opts)
  local replace = not (opts and opts.replace == false)
  local foreign = not (opts and opts.foreign == false)
  local w, msg, ename, info = core.atomic_writer(path, { frame = false, replace = replace, foreign = foreign })
  if not w then return nil, msg, ename, info end
  local ok
  ok, msg, ename = w:write(data)
  if ok then ok, msg, ename = w:close() end
  if not ok then
    info = w:last_error()
    w:abort()   -- removes the temp; a no-op once the rename happened
    return nil, msg, ename, info
  end
  return true
end

return fsutil
