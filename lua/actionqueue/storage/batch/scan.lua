--- Builds a job list from a directory tree (`aqstore batch --scan ROOT --kind K`).
-- Found: snapshot files (`*.snap`, `*.bin`, `snapshot.bin`) and data directories (a
-- directory containing both `snapshots/` and `wal/`; it is one job and is not descended
-- into). Paths are visited in sorted order, so the job list (and thus sharding) is
-- deterministic. Symbolic links to directories are not followed.
-- @module actionqueue.storage.batch.scan
local lfs = require "lfs"
local fsutil = require "actionqueue.storage.fsutil"
local jobfile = require "actionqueue.storage.batch.jobfile"
local kinds = require "actionqueue.storage.batch.kinds"

local scan = {}

local function is_snapshot_name(name)
  return name == "snapshot.bin" or name:match("%.snap$") ~= nil or name:match("%.bin$") ~= nil
end

local function is_data_dir(path)
  local s = lfs.attributes(path .. "/snapshots", "mode")
  local w = lfs.attributes(path .. "/wal", "mode")
  return s == "directory" and w == "directory"
end

local function walk(dir, rel, found)
  for _, name in ipairs(fsutil.list_dir(dir)) do
    local path = dir .. "/" .. name
    local r = rel == "" and name or (rel .. "/" .. name)
    local mode = lfs.symlinkattributes(path, "mode")
    if mode == "directory" then
      if is_data_dir(path) then
        found[#found + 1] = { path = path, rel = r, dir = true }
      else
        walk(path, r, found)
      end
    elseif (mode == "file" or mode == "link") and is_snapshot_name(name)
      and lfs.attributes(path, "mode") == "file" then
      found[#found + 1] = { path = path, rel = r, dir = false }
    end
  end
end

--- Finds snapshot files and data directories under `root`.
-- @tparam string root
-- @treturn table list of `{path, rel, dir}` in sorted order
-- @return nil, message
function scan.find(root)
  local mode = lfs.attributes(root, "mode")
  if mode ~= "directory" then return nil, root .. ": not a directory" end
  local found = {}
  if is_data_dir(root) then
    found[1] = { path = root, rel = ".", dir = true }
    return found
  end
  local ok, err = pcall(walk, root, "", found)
  if not ok then return nil, tostring(err) end
  return found
end

--- Makes a job list from `root`.
-- Data directories get kind `compact` when `kind` is `compact`; otherwise only snapshot
-- files are used (a data directory's `snapshots/` content is scanned as files).
-- For kinds with an output, `out_dir` is required: output = `out_dir/<relative path>`
-- (data directories: `out_dir/<relative path>.snap`).
-- @tparam string root
-- @tparam string kind
-- @tparam[opt] string out_dir
-- @treturn table normalised jobs
-- @return nil, message
function scan.jobs(root, kind, out_dir)
  local spec = kinds.get(kind)
  if not spec then
    return nil, string.format("--kind: unknown kind %q", tostring(kind))
  end
  if spec.output == true and not out_dir then
    return nil, string.format("--kind %s needs --out-dir for its outputs", kind)
  end
  local found, err = scan.find(root)
  if not found then return nil, err end
  local list = {}
  for _, f in ipairs(found) do
    if f.dir and kind ~= "compact" then
      -- a data directory: check its snapshot files instead
      local sub = scan.find(f.path .. "/snapshots") or {}
      for _, s in ipairs(sub) do
        if not s.dir then
          list[#list + 1] = { kind = kind, input = s.path,
            output = out_dir and (out_dir .. "/" .. f.rel .. "/snapshots/" .. s.rel) or nil }
        end
      end
    elseif (not f.dir) == (kind ~= "compact") then
      list[#list + 1] = { kind = kind, input = f.path,
        output = out_dir and spec.output == true and (out_dir .. "/" .. f.rel .. (f.dir and ".snap" or "")) or nil }
    end
  end
  return jobfile.normalise({ jobs = list }, nil)
end

return scan
