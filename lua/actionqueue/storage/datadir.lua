--- Data dir layout, creation, locks and writer detection.
--
-- Layout: `<dir>/snapshots/snapshot.bin` and `<dir>/wal/actionqueue.wal`.
-- The writers (`snapshot.write`, `wal.open_appender`) never create directories: a typo in
-- a path should fail, not grow a tree. `init` creates the layout when asked, as the
-- engine's bootstrap does on start-up.
--
-- Locking protocol (docs/wal.md "Locking"): every mutation takes an exclusive advisory
-- lock at once or is refused, never queued. A WAL mutation (append, repair, truncate)
-- locks the WAL file itself (flock on its own descriptor) and, when the WAL sits in a
-- data dir (`<dir>/wal/actionqueue.wal`), first `<dir>/store.lock`, the lock file of
-- later engine versions (created when missing). Compaction in place locks
-- `<dir>/store.lock`. Reading takes a shared lock on `store.lock` only when the file
-- exists (reading never creates files) and never fails because of it. The 0.1.2 engine
-- takes no lock, so mutations also look for other processes that have the file open for
-- writing (`writers`, Linux /proc) and refuse unless forced.
-- @module actionqueue.storage.datadir
local core = require "actionqueue.storage.core"
local errors = require "actionqueue.storage.errors"
local fsutil = require "actionqueue.storage.fsutil"
local lfs = require "lfs"

local datadir = {}

datadir.LOCK_FILE = "store.lock"
datadir.WAL_FILE = "wal/actionqueue.wal"
datadir.SNAPSHOT_FILE = "snapshots/snapshot.bin"

--- The two file paths of data dir `dir`.
-- @tparam string dir
-- @treturn table `{dir = dir, snapshot = "<dir>/snapshots/snapshot.bin", wal = "<dir>/wal/actionqueue.wal"}`
function datadir.paths(dir)
  assert(type(dir) == "string" and dir ~= "", "datadir.paths: directory string expected")
  local base = dir:gsub("/+$", "")
  if base == "" then base = "/" end
  local prefix = base == "/" and "/" or base .. "/"
  return { dir = dir, snapshot = prefix .. datadir.SNAPSHOT_FILE, wal = prefix .. datadir.WAL_FILE }
end

--- Creates the data dir layout (`dir`, `dir/snapshots`, `dir/wal`; `mkdir -p`, existing
-- directories are fine) and makes the new names durable (each parent fsynced). Files are
-- not created: the first `snapshot.write` or `wal.open_appender` does that.
-- @tparam string dir
-- @treturn[1] table the paths (see `paths`)
-- @return[2] nil
-- @return[2] err `{kind = "IoError", path = the directory that failed, message = ...}`, or
--   `UnsafePath` when `wal` or `snapshots` is a symbolic link (`check_layout`)
function datadir.init(dir)
  local p = datadir.paths(dir)
  local safe, uerr = datadir.check_layout(dir, "create the data dir layout")
  if not safe then return nil, uerr end
  for _, sub in ipairs { fsutil.dirname(p.snapshot), fsutil.dirname(p.wal) } do
    -- the components mkdir_p will create, outermost first
    local missing, d = {}, sub
    while d ~= "" and d ~= "." and d ~= "/" and lfs.attributes(d, "mode") == nil do
      table.insert(missing, 1, d)
      d = fsutil.dirname(d)
    end
    local ok, msg = fsutil.mkdir_p(sub)
    if not ok then
      return nil, errors.new("IoError", { path = sub, op = "mkdir" },
        "cannot create data dir folder " .. sub .. ": " .. tostring(msg))
    end
    for _, created in ipairs(missing) do
      local parent = fsutil.dirname(created)
      local synced, serr = fsutil.fsync_dir(parent)
      if not synced then
        return nil, errors.new("IoError", { path = parent, op = "fsync dir" },
          "cannot make data dir folder " .. created .. " durable: " .. tostring(serr))
      end
    end
  end
  return p
end

--- The data dir holding a WAL at `path` (`<dir>/wal/actionqueue.wal`), else nil.
function datadir.of_wal(path)
  if path == datadir.WAL_FILE then return "." end
  return path:match("^(.*)/" .. datadir.WAL_FILE:gsub("%.", "%%.") .. "$")
end

-- The major/minor pair of a st_dev number (glibc's encoding), as /proc/locks prints it.
local function dev_pair(dev)
  local major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfff)
  local minor = (dev & 0xff) | ((dev >> 12) & ~0xff)
  return major, minor
end

--- Pids holding a flock on the file at `path` (from /proc/locks; {} elsewhere).
function datadir.lock_holders(path)
  local a = lfs.attributes(path)
  local pids = {}
  local f = a and io.open("/proc/locks", "r")
  if not f then return pids end
  local major, minor = dev_pair(a.dev)
  for line in f:lines() do
    local pid, ma, mi, ino = line:match("FLOCK%s+%S+%s+%S+%s+(%d+)%s+(%x+):(%x+):(%d+)")
    if pid and tonumber(ma, 16) == major and tonumber(mi, 16) == minor
        and tonumber(ino) == a.ino then
      pids[#pids + 1] = tonumber(pid)
    end
  end
  f:close()
  table.sort(pids)
  return pids
end

--- The error for a lock of `path` that could not be taken (`msg`, `ename` from the C
-- core): `kind = "Locked"` naming the file and the holders' pids when another process
-- holds it (EWOULDBLOCK), else an `IoError`.
function datadir.locked_error(path, msg, ename)
  if ename ~= "EWOULDBLOCK" then
    return errors.new("IoError", { path = path, op = "lock", errno = ename, cause = msg },
      "I/O error: " .. tostring(msg))
  end
  local pids = datadir.lock_holders(path)
  local who = #pids > 0 and (" (pid " .. table.concat(pids, ", ") .. ")") or ""
  return errors.new("Locked", { path = path, op = "lock", errno = ename, pids = pids },
    string.format("%s is locked: another process holds it%s", path, who))
end

--- The data dir's own folders (`wal`, `snapshots`: the folders of WAL_FILE and
-- SNAPSHOT_FILE), which a mutation must never follow when they are symbolic links.
function datadir.layout_dirs()
  return { fsutil.dirname(datadir.WAL_FILE), fsutil.dirname(datadir.SNAPSHOT_FILE) }
end

--- Checks that the data dir's own folders are not symbolic links (a missing folder is
-- fine: it is created as a real directory when needed). The data dir path itself may be a
-- link: that is the user's choice. Checked by every mutation before it touches the dir
-- (appends, repair, compaction in place, bootstrap, `init`); reading follows links as the
-- 0.1.2 engine does (docs/wal.md "The data dir's own folders").
-- @tparam string dir the data dir
-- @tparam string step what was about to happen ("append to the WAL", ...), for the message
-- @return true | nil, err `{kind = "UnsafePath", path = the link, op = step, target}`
function datadir.check_layout(dir, step)
  local base = dir == "/" and "" or dir:gsub("/+$", "")
  for _, sub in ipairs(datadir.layout_dirs()) do
    local p = base .. "/" .. sub
    local a = lfs.symlinkattributes(p)
    if a and a.mode == "link" then
      local target = a.target or "?"
      return nil, errors.new("UnsafePath", { path = p, op = step, target = target },
        string.format("%s is a symbolic link (to %s): refusing to %s through it; the data " ..
          "dir's own folders (%s) must be real directories, not links (the data dir path " ..
          "itself may be a link)", p, target, step, table.concat(datadir.layout_dirs(), "/, ") .. "/"))
    end
  end
  return true
end

--- Checks, after the fact, that FramedLog `log` opened at `path` is really the data dir's
-- WAL: `<dir>/wal/actionqueue.wal` walked from `<dir>` without following a link
-- (`log:is_at`). A `wal/` swapped for a link between `check_layout` and the open is
-- caught here, before the first byte is written, scanned or cut. A WAL outside any data
-- dir passes.
-- @return true | nil, err (`UnsafePath`, as `check_layout`)
function datadir.verify_wal(path, log, step)
  local dir = datadir.of_wal(path)
  if not dir then return true end
  if dir == "" then dir = "/" end
  local ok, msg, ename = log:is_at(dir, datadir.WAL_FILE)
  if ok then return true end
  if ename == "ELOOP" then
    local link = (dir == "/" and "" or dir:gsub("/+$", "")) .. "/" .. fsutil.dirname(datadir.WAL_FILE)
    local target = lfs.symlinkattributes(link, "target") or "?"
    return nil, errors.new("UnsafePath", { path = link, op = step, target = target, cause = msg },
      string.format("%s is a symbolic link (to %s), swapped in while the WAL was opened: " ..
        "refusing to %s through it; nothing was written", link, target, step))
  end
  return nil, errors.new("UnsafePath", { path = path, op = step, cause = msg },
    string.format("%s is not the file that was opened (%s): a folder of the data dir was " ..
      "replaced meanwhile; refusing to %s", path, tostring(msg), step))
end

-- A lock object over the data dir's two locks (the directory's own descriptor and
-- store.lock); `unlock`/`close` release both, `held` says whether they are held.
local DirLock = {}
DirLock.__index = DirLock
function DirLock:unlock()
  if self.file then self.file:unlock() end
  if self.dir then self.dir:unlock() end
  self.file, self.dir = nil, nil
  return true
end
DirLock.close = DirLock.unlock
DirLock.__close = DirLock.unlock
function DirLock:held() return self.file ~= nil or self.dir ~= nil end
function DirLock:path() return self.lock_path end
function DirLock:__tostring()
  return "DirLock(" .. self.lock_path .. ", " .. (self:held() and "held" or "released") .. ")"
end

-- Errors of store.lock that a planted file causes (a symlink: ELOOP; a FIFO, device or
-- socket: EINVAL/ENXIO): the name is replaced by a regular lock file of ours.
local REPLACEABLE = { ELOOP = true, EINVAL = true, ENXIO = true }

--- Takes the exclusive lock of data dir `dir`: an exclusive flock on the directory's own
-- descriptor (our mutators exclude each other through it even when `store.lock` is
-- removed or swapped), then on `<dir>/store.lock` (created when missing; the lock file of
-- later engine versions). A symlink, FIFO, device or socket planted at `store.lock` is
-- replaced by a regular file of ours (written by the AtomicWriter: the link is replaced,
-- what it points to is never opened), so a planted link cannot block mutations; this
-- happens only while the directory lock is held. The layout is checked first
-- (`check_layout`).
-- @return lock (`unlock()`) | nil, err (`err.kind` "Locked" when held elsewhere,
--   "UnsafePath" for a linked layout folder, else "IoError")
function datadir.lock_exclusive(dir)
  local path = dir .. "/" .. datadir.LOCK_FILE
  local ok, uerr = datadir.check_layout(dir, "lock the data dir")
  if not ok then return nil, uerr end
  local lock = setmetatable({ lock_path = path }, DirLock)
  local dlock, msg, ename = core.lock_file(dir, { directory = true })
  if not dlock and ename == "EWOULDBLOCK" then
    local err = datadir.locked_error(path, msg, ename)
    if #err.pids == 0 then
      -- the holder is seen on the directory's inode
      err.pids = datadir.lock_holders(dir)
      if #err.pids > 0 then
        err.message = string.format("%s is locked: another process holds it (pid %s)", path,
          table.concat(err.pids, ", "))
      end
    end
    return nil, err
  end
  -- (a file system without directory locks: store.lock alone, as before)
  lock.dir = dlock or nil
  local file
  file, msg, ename = core.lock_file(path, { create = true })
  if not file and REPLACEABLE[ename] then
    local wok, wmsg, wname = fsutil.write_file_atomic(path, "")
    if not wok then
      lock:unlock()
      return nil, errors.new("IoError", { path = path, op = "replace lock file", errno = wname, cause = wmsg },
        "I/O error: cannot replace " .. path .. " (not a regular file) by a lock file: " .. tostring(wmsg))
    end
    file, msg, ename = core.lock_file(path, { create = true })
  end
  if not file then
    lock:unlock()
    return nil, datadir.locked_error(path, msg, ename)
  end
  lock.file = file
  return lock
end

--- Takes a shared lock on `dir` (its descriptor) and on `dir`'s `store.lock` when that
-- file exists (a reader never creates or replaces it).
-- @return lock | false (no lock file, or a writer holds it: `busy` = true) , note
function datadir.lock_shared(dir)
  local path = dir .. "/" .. datadir.LOCK_FILE
  local dlock, msg, ename = core.lock_file(dir, { directory = true, shared = true })
  if not dlock and ename == "EWOULDBLOCK" then
    return false, datadir.locked_error(path, msg, ename).message
  end
  local file
  file, msg, ename = core.lock_file(path, { shared = true })
  if not file and ename == "EWOULDBLOCK" then
    if dlock then dlock:unlock() end
    return false, datadir.locked_error(path, msg, ename).message
  end
  if not file and not dlock then return false end
  return setmetatable({ lock_path = path, file = file or nil, dir = dlock or nil }, DirLock)
end

--- Exclusive lock for a mutation of the WAL open as FramedLog `log` at `path`: the
-- data dir's `store.lock` first (when the WAL sits in a data dir), then the WAL file.
-- @return guard (`guard:release()` drops store.lock; closing the log drops its own lock)
--   | nil, err
function datadir.lock_wal(path, log)
  local dir = datadir.of_wal(path)
  local store
  if dir then
    local err
    store, err = datadir.lock_exclusive(dir)
    if not store then return nil, err end
  end
  local ok, msg, ename = log:lock()
  if not ok then
    if store then store:unlock() end
    return nil, datadir.locked_error(path, msg, ename)
  end
  return { store = store, release = function(self)
    if self.store then self.store:unlock() end
  end }
end

--- Other processes that have the file at `path` open for writing (Linux: the
-- /proc/PID/fd links that resolve to its inode, with write access in /proc/PID/fdinfo).
-- Processes whose /proc entries we may not read are not seen. This process is left out.
-- @return list of `{pid = N, fd = N, comm = "name"}` (empty where /proc is missing)
function datadir.writers(path)
  local target = lfs.attributes(path)
  local found = {}
  if not target or not lfs.attributes("/proc/self/fd", "mode") then return found end
  local self_pid = core.proc_info().pid
  local ok = pcall(function()
    for pid in lfs.dir("/proc") do
      local n = tonumber(pid)
      if n and n ~= self_pid then
        local fds = "/proc/" .. pid .. "/fd"
        local iok, iter, state = pcall(lfs.dir, fds)
        if iok then
          for fd in iter, state do
            local a = fd:match("^%d+$") and lfs.attributes(fds .. "/" .. fd)
            if a and a.ino == target.ino and a.dev == target.dev then
              local info = io.open("/proc/" .. pid .. "/fdinfo/" .. fd, "r")
              local text = info and info:read("a") or ""
              if info then info:close() end
              local flags = tonumber(text:match("flags:%s*(%d+)") or "0", 8)
              if flags & 3 ~= 0 then   -- O_WRONLY or O_RDWR
                local c = io.open("/proc/" .. pid .. "/comm", "r")
                local comm = c and c:read("l") or "?"
                if c then c:close() end
                found[#found + 1] = { pid = n, fd = tonumber(fd), comm = comm }
              end
            end
          end
        end
      end
    end
  end)
  if not ok then return found end
  return found
end

--- The refusal for a file other processes have open for writing (`writers` list).
function datadir.busy_error(path, writers, what)
  local who = {}
  for i, w in ipairs(writers) do who[i] = string.format("pid %d (%s)", w.pid, w.comm) end
  return errors.new("Busy", { path = path, op = "check writers", writers = writers },
    string.format("%s is open for writing by another process: %s; refusing to %s while it " ..
      "runs (stop it first, or use --force)", path, table.concat(who, ", "), what))
end

return datadir
