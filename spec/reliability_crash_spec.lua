-- Crash tests: kill -9 at random moments of snapshot replaces (snapshot.write), WAL
-- appends (appender, sync "always") and batch runs (aqstore batch with a report).
-- The children print every acknowledged step to a file before going on; after each
-- kill: the snapshot loads and is the last acknowledged one or the one being written,
-- the WAL holds every acknowledged record, repair and recovery succeed, and a resumed
-- batch finishes every job with correct outputs.
-- `make crash` (AQS_RELIABILITY=full) runs hundreds of kills; `make test` a few dozen.
local fault = require "support.fault"
local fixtures = require "support.fixtures"
local snapshot = require "actionqueue.storage.snapshot"
local wal = require "actionqueue.storage.wal"
local recovery = require "actionqueue.storage.recovery"
local core = require "actionqueue.storage.core"

local full = os.getenv("AQS_RELIABILITY") == "full"
local valgrind = os.getenv("AQS_UNDER_VALGRIND") ~= nil
local N_SNAP = full and 200 or (valgrind and 2 or 12)
local N_WAL = full and 200 or (valgrind and 2 or 12)
local N_BATCH = full and 60 or (valgrind and 1 or 3)
-- the long runs use a 1.1 MB snapshot so kills land inside writes more often
local BIG = full and "valid_12_medium_1000.snap" or "valid_08_strings.snap"

local files = require "support.files"
local slurp, put = files.read, files.write
local function lines(p)
  local t = {}
  local d = slurp(p) or ""
  for l in d:gmatch("([^\n]*)\n") do t[#t + 1] = l end   -- complete lines only
  return t
end

-- Starts `script` (a file in dir) in its own process group, waits until `marker` is
-- non-empty, sleeps `delay` seconds and kills the group with SIGKILL.
local function run_and_kill(dir, cmd, marker, delay)
  local sh = ("cd %s && rm -f %s && { %s & pid=$!; n=0; "
    .. "while [ ! -s %s ] && [ $n -lt 1500 ]; do sleep 0.01; n=$((n+1)); done; "
    .. "sleep %.3f; kill -9 -- -$pid 2>/dev/null || kill -9 $pid; wait $pid; } >/dev/null 2>&1")
    :format(fault.shq(dir), marker, cmd, marker, delay)
  if os.getenv("AQS_CRASH_DEBUG") then io.stderr:write(sh, "\n") end
  os.execute(sh)
end

local cwd = assert(io.popen("pwd")):read("l")
local function absolute(paths)
  local out = {}
  for entry in paths:gmatch("[^;]+") do
    out[#out + 1] = entry:sub(1, 1) == "/" and entry or (cwd .. "/" .. entry:gsub("^%./", ""))
  end
  return table.concat(out, ";") .. ";;"
end
local repo = fixtures.repo:sub(1, 1) == "/" and fixtures.repo or (cwd .. "/" .. fixtures.repo)

local function env_only()
  return ("LUA_PATH=%s LUA_CPATH=%s "):format(fault.shq(absolute(package.path)), fault.shq(fault.cpath()))
end
-- children run in their own process group (setsid), so the kill reaches batch workers too
local function env_prefix() return env_only() .. "setsid " end

describe("kill -9", function()
  if not fixtures.available() then
    pending("fixtures missing")
    return
  end
  local dir
  before_each(function() dir = fault.tmpdir("crash") end)
  after_each(function() fault.rmdir(dir) end)
  math.randomseed(os.time())

  it(("snapshot.write: %d kills during replaces leave the acknowledged or the next snapshot"):format(N_SNAP), function()
    local A = assert(slurp(fixtures.path("snapshot", BIG)))
    local B = assert(slurp(fixtures.path("snapshot", "valid_02_runs_all_states.snap")))
    put(dir .. "/A.snap", A)
    put(dir .. "/B.snap", B)
    put(dir .. "/snapshot.bin", A)
    put(dir .. "/child.lua", [[
local snapshot = require "actionqueue.storage.snapshot"
local snaps = { assert(snapshot.load("A.snap")), assert(snapshot.load("B.snap")) }
local ack = assert(io.open("acks", "a"))
ack:setvbuf("no")
local i = tonumber(arg[1])
while true do
  i = i + 1
  assert(snapshot.write("snapshot.bin", snaps[i % 2 + 1], { validated = true }))
  ack:write(i % 2 + 1, "\n")   -- acknowledged: this version is in place
end]])
    local seen = { 0, 0 }
    for it_ = 1, N_SNAP do
      -- the version that must be there unless the next one replaced it
      local acked = lines(dir .. "/acks")
      local last = tonumber(acked[#acked]) or 1
      run_and_kill(dir, env_prefix() .. "lua5.4 child.lua " .. (last - 1), "acks", math.random() * 0.15)
      acked = lines(dir .. "/acks")
      last = tonumber(acked[#acked])
      local got = slurp(dir .. "/snapshot.bin")
      local v = got == A and 1 or got == B and 2 or nil
      assert(v, ("kill %d: snapshot is neither A nor B"):format(it_))
      assert(snapshot.load(dir .. "/snapshot.bin"), "kill " .. it_ .. ": snapshot does not load")
      -- alternating writer: in place is the last acknowledged version or the one after it
      assert(v == last or v == (last % 2) + 1, "kill " .. it_)
      seen[v] = seen[v] + 1
      put(dir .. "/acks", (v .. "\n"))
      os.remove(dir .. "/snapshot.bin.tmp")   -- a kill can leave the temp; the next writer truncates it anyway
    end
    if full then assert.is_true(seen[1] > 0 and seen[2] > 0) end
  end)

  it(("WAL appends: %d kills lose no acknowledged record; repair and recovery succeed"):format(N_WAL), function()
    os.execute("mkdir -p " .. fault.shq(dir .. "/data/wal") .. " " .. fault.shq(dir .. "/data/snapshots"))
    local path = dir .. "/data/wal/actionqueue.wal"
    put(dir .. "/child.lua", [[
local wal = require "actionqueue.storage.wal"
local a = assert(wal.open_appender("data/wal/actionqueue.wal", { repair = "truncate_partial" }))
local ack = assert(io.open("acks", "a"))
ack:setvbuf("no")
while true do
  local s = a:next_sequence()
  local ev = s % 2 == 1 and { EnginePaused = { timestamp = 1700000000 + s } }
    or { EngineResumed = { timestamp = 1700000000 + s } }
  assert(a:append({ sequence = s, event = ev }))
  ack:write(s, "\n")
end]])
    local total_acked = 0
    for it_ = 1, N_WAL do
      run_and_kill(dir, env_prefix() .. "lua5.4 child.lua", "acks", math.random() * 0.1)
      local acked = lines(dir .. "/acks")
      -- repair (safe mode cuts only a torn tail), then every acknowledged record is there
      local plan = assert(wal.repair.plan(path))
      if not plan.ok then assert.is_true(plan.tail, "kill " .. it_ .. ": corruption before the tail") end
      assert(wal.repair.run(path, { keep_cut = false }))
      local have = {}
      for _, ev in wal.records(path) do have[ev.sequence] = true end
      for _, s in ipairs(acked) do
        assert(have[tonumber(s)], ("kill %d: acknowledged sequence %s lost"):format(it_, s))
      end
      total_acked = total_acked + #acked
      os.remove(dir .. "/acks")
      local r, err = recovery.recover(dir .. "/data")
      assert(r, "kill " .. it_ .. ": recovery: " .. tostring(err))
    end
    assert.is_true(total_acked >= N_WAL)
  end)

  it(("batch runs: %d kills; --resume finishes every job with correct outputs"):format(N_BATCH), function()
    local src = fixtures.path("snapshot", BIG)
    if src:sub(1, 1) ~= "/" then src = cwd .. "/" .. src end
    local expected = slurp(src)   -- valid fixtures rewrite byte-identically
    local jobs = { "return { defaults = { kind = 'rewrite' }, jobs = {" }
    local NJ = 24
    for j = 1, NJ do jobs[#jobs + 1] = ("{ input = %q, output = 'out/%02d.snap' },"):format(src, j) end
    jobs[#jobs + 1] = "} }"
    put(dir .. "/jobs.lua", table.concat(jobs, "\n"))
    local aqstore = fault.shq(repo .. "/scripts/aqstore")
    for it_ = 1, N_BATCH do
      os.execute("rm -rf " .. fault.shq(dir .. "/out") .. " " .. fault.shq(dir) .. "/report.json*"
        .. " && mkdir " .. fault.shq(dir .. "/out"))
      run_and_kill(dir, env_prefix() .. aqstore .. " batch jobs.lua -j 2 --quiet --report report.json",
        "out/01.snap", math.random() * 0.4)
      -- every output present after the kill is complete
      for j = 1, NJ do
        local got = slurp(("%s/out/%02d.snap"):format(dir, j))
        assert(got == nil or got == expected, ("kill %d: out/%02d.snap is torn"):format(it_, j))
      end
      local cmd = ("cd %s && %s%s batch jobs.lua -j 2 --quiet --report report.json --resume report.json 2>&1")
        :format(fault.shq(dir), env_only(), aqstore)
      local p = io.popen(cmd)
      local out = p:read("a")
      local ok, _, code = p:close()
      assert(ok, ("kill %d: resume failed (exit %s): %s %s"):format(it_, tostring(code), out,
        tostring(slurp(dir .. "/report.json"))))
      for j = 1, NJ do
        assert(slurp(("%s/out/%02d.snap"):format(dir, j)) == expected, ("kill %d: out/%02d.snap"):format(it_, j))
      end
      local report = require("cjson").decode(slurp(dir .. "/report.json"))
      local entries = report.entries or report.jobs or report
      local n = 0
      for _, e in ipairs(entries) do
        assert(e.status == "ok" or e.status == "skipped", "kill " .. it_ .. ": " .. tostring(e.status))
        n = n + 1
      end
      assert.equal(NJ, n)
    end
    assert.equal("ok", core.frame_read(dir .. "/out/01.snap").status)
  end)
end)
