--- File helpers for the specs: absolute paths, temporary directories, whole-file read and
-- write, shell quoting. One copy for every spec (batch, CLI, WAL and recovery fixtures).
local fixtures = require "support.fixtures"
local lfs = require "lfs"

local files = {}

--- Absolute form of a path (fixtures.root may be relative to the working directory).
function files.abs(path)
  if path:sub(1, 1) == "/" then return path end
  return lfs.currentdir() .. "/" .. path
end

--- Quotes `s` for the shell (single quotes).
function files.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- A fresh temporary directory.
function files.tmpdir()
  local name = os.tmpname()
  os.remove(name)
  assert(lfs.mkdir(name))
  return name
end

--- Removes a directory tree.
function files.rmtree(path)
  if not path or path == "" or path == "/" then return end
  os.execute("rm -rf " .. files.q(path))
end

--- Reads a whole file (binary) or returns nil, err.
files.read = fixtures.read

--- Writes `data` to `path` (replacing it); raises on failure.
function files.write(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  f:close()
end

--- Copies file `src` to `dst`.
function files.copy(src, dst)
  files.write(dst, assert(files.read(src), src))
end

return files
