--- Helpers for the batch specs: temp dirs, running `aqstore batch`, reading reports.
local fixtures = require "support.fixtures"
local cjson = require "cjson"
local files = require "support.files"
local run = require "support.aqstore_run"

local H = {}

H.abs, H.q, H.tmpdir, H.rmtree = files.abs, files.q, files.tmpdir, files.rmtree
H.read, H.write, H.copy = files.read, files.write, files.copy

H.aqstore = run.aqstore

--- Absolute path of a snapshot fixture.
function H.fixture(name)
  return H.abs(fixtures.path("snapshot", name))
end

--- Runs `aqstore batch ARGS...`; returns exit code, stdout, stderr.
-- @tparam table args
-- @tparam[opt] table env extra environment assignments
function H.run(args, env)
  local parts = {}
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. H.q(v) .. " " end
  local r = run.cli({ "batch", table.unpack(args) }, { env = table.concat(parts) })
  return r.code, r.out, r.err
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
