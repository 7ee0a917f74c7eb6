--- Data dir layout: `<dir>/snapshots/snapshot.bin` and `<dir>/wal/actionqueue.wal`.
-- The writers (`snapshot.write`, `wal.open_appender`) never create directories: a typo in
-- a path should fail, not grow a tree. `init` creates the layout when asked, as the
-- engine's bootstrap does on start-up.
-- @module actionqueue.storage.datadir
local fsutil = require "actionqueue.storage.fsutil"

local datadir = {}

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
-- @return[2] err `{kind = "IoError", path = the directory that failed, message = ...}`
function datadir.init(dir)
  local errors = require "actionqueue.storage.errors"
  local lfs = require "lfs"
  local p = datadir.paths(dir)
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

return datadir
