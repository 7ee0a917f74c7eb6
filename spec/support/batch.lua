--- Helpers for the batch specs: temp dirs, running `aqstore batch`, reading reports.
local fixtures = require "support.fixtures"
local cjson = require "cjson"
local files = require "support.files"
local run = require "support.aqstore_run"
local lfs = require "lfs"

local H = {}

H.abs, H.q, H.tmpdir, H.rmtree = files.abs, files.q, files.tmpdir, files.rmtree
H.read, H.write, H.copy = files.read, files.write, files.copy

H.aqstore = run.aqstore

--- Environment for an `aqstore` process that runs `test` kind jobs: the interpreter requires
-- the kind's module (spec/support/batch_test_kind.lua, on LUA_PATH) before the CLI starts.
H.TEST_KIND_ENV = { LUA_INIT_5_4 = "require'support.batch_test_kind'" }

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

--- Writes `dir/jobs.lua` with `n` slow copies (test kind, `seconds` each) of the 1 MB
-- fixture, `dir/in/sNN.snap` to `dir/out/sNN.snap`: jobs that a kill or a signal lands in
-- the middle of. Returns the job list.
function H.slow_copy_jobs(dir, n, seconds)
  local big = H.fixture("valid_12_medium_1000.snap")
  assert(lfs.mkdir(dir .. "/in"))
  assert(lfs.mkdir(dir .. "/out"))
  local jobs = {}
  for i = 1, n do
    local name = string.format("s%02d.snap", i)
    H.copy(big, dir .. "/in/" .. name)
    jobs[i] = { kind = "test", action = "copy", seconds = seconds, input = "in/" .. name, output = "out/" .. name }
  end
  H.jobfile(dir .. "/jobs.lua", { jobs = jobs })
  return jobs
end

--- Names of the temp files (`*.tmp*`) in `dir`.
function H.temp_files(dir)
  local found = {}
  for name in lfs.dir(dir) do
    if name:match("%.tmp") then found[#found + 1] = name end
  end
  return found
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

-- Starts `lua5.4 ARGS...` in a new session (its own process group, like a shell job);
-- returns a handle with the group id and the files its stdout, stderr and exit code go to.
function H.start_group(dir, argv, env)
  local h = { out = dir .. "/stdout", err = dir .. "/stderr", rc = dir .. "/rc", pidfile = dir .. "/pid" }
  for _, f in ipairs({ h.out, h.err, h.rc, h.pidfile }) do os.remove(f) end
  local words = {}
  for i, a in ipairs(argv) do words[i] = H.q(a) end
  local envs = {}
  for k, v in pairs(env or {}) do envs[#envs + 1] = k .. "=" .. H.q(v) end
  local inner = string.format("echo $$ > %s; exec env %s lua5.4 %s", H.q(h.pidfile), table.concat(envs, " "),
    table.concat(words, " "))
  local outer = string.format("setsid sh -c %s >%s 2>%s </dev/null; echo $? > %s", H.q(inner), H.q(h.out),
    H.q(h.err), H.q(h.rc))
  assert(os.execute("sh -c " .. H.q(outer) .. " >/dev/null 2>&1 &"))
  for _ = 1, 500 do
    local p = H.read(h.pidfile)
    if p and tonumber(p) then
      h.pgid = tonumber(p)
      return h
    end
    os.execute("sleep 0.01")
  end
  error("the batch did not start")
end

--- Waits (bounded) for the group leader to exit; returns its exit code.
function H.wait_exit(h)
  for _ = 1, 1500 do
    local rc = H.read(h.rc)
    if rc and tonumber(rc) then return tonumber(rc) end
    os.execute("sleep 0.01")
  end
  error("the batch did not exit after the signal")
end

--- Interpreters still in group `pgid` (the runner's workers would be). The test kind's own
-- `sleep` children are left out: they are not workers and end within 40 ms.
function H.group_members(pgid)
  local n = 0
  for name in lfs.dir("/proc") do
    if name:match("^%d+$") then
      local stat = H.read("/proc/" .. name .. "/stat")
      -- pid (comm) state ppid pgrp ...: comm may hold spaces, so parse after the last ')'
      local comm = stat and stat:match("%((.*)%)")
      local pgrp = stat and stat:match("%)%s+%S+%s+%d+%s+(%d+)")
      if pgrp and tonumber(pgrp) == pgid and comm:match("^lua") then n = n + 1 end
    end
  end
  return n
end

--- Waits (bounded, 20 s) until no interpreter is left in group `pgid`.
function H.wait_group_empty(pgid)
  for _ = 1, 2000 do
    if H.group_members(pgid) == 0 then return true end
    os.execute("sleep 0.01")
  end
  error("processes of group " .. pgid .. " did not exit")
end

--- True when the snapshot codec (snapshot.load) has landed.
function H.have_snapshot()
  local ok, snap = pcall(require, "actionqueue.storage.snapshot")
  return ok and type(snap) == "table" and type(snap.load) == "function" and type(snap.write) == "function"
end

return H
