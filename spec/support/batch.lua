--- Helpers for the batch specs: temp dirs, running `aqstore batch`, reading reports.
local fixtures = require "support.fixtures"
local cjson = require "cjson"
local lfs = require "lfs"

local H = {}

--- Absolute form of a path (fixtures.root may be relative to the working directory).
function H.abs(path)
  if path:sub(1, 1) == "/" then return path end
  return lfs.currentdir() .. "/" .. path
end

H.aqstore = H.abs(fixtures.repo .. "/scripts/aqstore")

--- Absolute path of a snapshot fixture.
function H.fixture(name)
  return H.abs(fixtures.path("snapshot", name))
end

--- A fresh temporary directory.
function H.tmpdir()
  local name = os.tmpname()
  os.remove(name)
  assert(lfs.mkdir(name))
  return name
end

--- Removes a directory tree.
function H.rmtree(path)
  if not path or path == "" or path == "/" then return end
  os.execute("rm -rf '" .. path .. "'")
end

function H.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local d = f:read("a")
  f:close()
  return d
end

function H.write(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  f:close()
end

function H.copy(src, dst)
  H.write(dst, assert(H.read(src), src))
end

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
H.q = q

--- Runs `aqstore batch ARGS...`; returns exit code, stdout, stderr.
-- @tparam table args
-- @tparam[opt] table env extra environment assignments
function H.run(args, env)
  local parts = {}
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. q(v) end
  parts[#parts + 1] = q(H.aqstore) .. " batch"
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local errfile = os.tmpname()
  local p = assert(io.popen(table.concat(parts, " ") .. " 2>" .. q(errfile), "r"))
  local out = p:read("a")
  local _, _, code = p:close()
  local err = H.read(errfile) or ""
  os.remove(errfile)
  return code, out, err
end

--- Decodes a report file.
function H.report(path)
  local data = assert(H.read(path), "no report at " .. path)
  return cjson.decode(data)
end

--- Writes a Lua job file returning `t`.
function H.jobfile(path, t)
  local function ser(v, ind)
    if type(v) == "table" then
      local out = { "{\n" }
      for k, x in pairs(v) do
        local key = type(k) == "number" and "" or (string.format("[%q] = ", k))
        out[#out + 1] = ind .. "  " .. key .. ser(x, ind .. "  ") .. ",\n"
      end
      out[#out + 1] = ind .. "}"
      return table.concat(out)
    elseif type(v) == "string" then
      return string.format("%q", v)
    end
    return tostring(v)
  end
  -- sequences must keep their order: rebuild list parts with ipairs
  local function ser_ordered(v, ind)
    if type(v) ~= "table" then return ser(v, ind) end
    local out = { "{\n" }
    for _, x in ipairs(v) do out[#out + 1] = ind .. "  " .. ser_ordered(x, ind .. "  ") .. ",\n" end
    for k, x in pairs(v) do
      if math.type(k) ~= "integer" then
        out[#out + 1] = ind .. "  " .. string.format("[%q] = ", k) .. ser_ordered(x, ind .. "  ") .. ",\n"
      end
    end
    out[#out + 1] = ind .. "}"
    return table.concat(out)
  end
  H.write(path, "return " .. ser_ordered(t, "") .. "\n")
end

--- Lines of a journal file, decoded.
function H.journal(path)
  local out = {}
  local data = H.read(path) or ""
  for line in data:gmatch("[^\n]+") do
    local ok, e = pcall(cjson.decode, line)
    if ok then out[#out + 1] = e end
  end
  return out
end

--- True when the snapshot codec (snapshot.load) has landed.
function H.have_snapshot()
  local ok, snap = pcall(require, "actionqueue.storage.snapshot")
  return ok and type(snap) == "table" and type(snap.load) == "function" and type(snap.write) == "function"
end

return H
