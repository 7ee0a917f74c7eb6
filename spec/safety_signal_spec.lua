-- SIGTERM and SIGHUP in the middle of a write (the gap issue 13's closing note left, gap
-- 4; docs/safety.md "Signals"): on a non-batch command they behave like Ctrl-C: one line
-- on stderr, exit 143 (SIGTERM) or 129 (SIGHUP), the writer's temp file removed, the
-- previous file intact. The writer is slowed with strace's syscall delay injection at a
-- pwrite of its temp file, and the signal is sent while that pwrite is held.
-- Before the fix the process died at once (exit 143 from the shell, no line) and left its
-- temp file, which only a later writer removed after 60 s.
-- Under `make sanitize` strace cannot run with the sanitizer preloads: pending there.
local files = require "support.files"
local fixtures = require "support.fixtures"
local proc = require "support.proc"
local run = require "support.aqstore_run"
local lfs = require "lfs"

local q = files.q

local have_strace = proc.have_strace

local temps = proc.writer_temps

-- Runs `aqstore ARGS` in `cwd` under strace, holding its `nth` pwrite64 for 1.5 s, and
-- sends `sig` once `wait_path()` says the write has begun. Returns code, stderr.
local function signal_at_write(cwd, args, sig, nth, write_started)
  local words = {}
  for i, a in ipairs(args) do words[i] = q(a) end
  local pidfile, rcfile, errfile = cwd .. "/.pid", cwd .. "/.rc", cwd .. "/.err"
  local inner = string.format("echo $$ > %s; exec lua5.4 %s %s", q(pidfile), q(run.aqstore),
    table.concat(words, " "))
  local cmd = string.format("cd %s && { strace -f -qq -o /dev/null -e trace=pwrite64 "
    .. "-e inject=pwrite64:delay_enter=1500000:when=%d sh -c %s >/dev/null 2>%s; echo $? > %s; } &",
    q(cwd), nth, q(inner), q(errfile), q(rcfile))
  assert(os.execute("sh -c " .. q(cmd) .. " >/dev/null 2>&1"))
  assert.is_true(proc.wait_for_file(pidfile, 10), "the command started")
  local pid = tonumber(files.read(pidfile))
  local started = false
  for _ = 1, 500 do
    if write_started() then started = true break end
    proc.sleep(0.01)
  end
  assert.is_true(started, "the write began")
  proc.sleep(0.2)   -- inside the held pwrite
  os.execute(string.format("kill -%s %d", sig, pid))
  assert.is_true(proc.wait_for_file(rcfile, 30), "the command ended")
  proc.sleep(0.05)
  local code = tonumber(files.read(rcfile))
  local err = files.read(errfile) or ""
  os.remove(pidfile); os.remove(rcfile); os.remove(errfile)
  return code, err
end

local function one_line(err, sig)
  assert.is_nil(err:find("traceback", 1, true), err)
  assert.equal(1, select(2, err:gsub("\n", "")), err)
  assert.truthy(err:find("interrupted by " .. sig, 1, true), err)
end

describe("SIGTERM / SIGHUP in the middle of a write", function()
  if not fixtures.available() then
    pending("shared fixtures not found")
    return
  end
  if not have_strace() then
    pending("strace (with ptrace permission, no sanitizer preload) is needed")
    return
  end
  local dir
  before_each(function() dir = files.tmpdir() end)
  after_each(function() files.rmtree(dir) end)

  local big = fixtures.path("snapshot", "valid_12_medium_1000.snap")
  local old = fixtures.path("snapshot", "valid_01_tasks.snap")

  for _, case in ipairs({ { "TERM", 143 }, { "HUP", 129 } }) do
    local sig, code = case[1], case[2]
    it("rewrite: SIG" .. sig .. " gives one line, exit " .. code .. ", no temp, the old file", function()
      files.copy(big, dir .. "/in.snap")
      files.copy(old, dir .. "/out.snap")
      local before = files.read(dir .. "/out.snap")
      local got, err = signal_at_write(dir, { "rewrite", "in.snap", "out.snap" }, sig, 3,
        function() return #temps(dir) > 0 end)
      assert.equal(code, got, err)
      one_line(err, "SIG" .. sig)
      assert.same({}, temps(dir))
      assert.equal(before, files.read(dir .. "/out.snap"), "the previous file is intact")
    end)
  end

  it("build: SIGTERM gives one line, exit 143, no temp, no output", function()
    local got, err = signal_at_write(dir, { "build", files.abs(fixtures.repo .. "/examples/queue.lua"), "o.snap" },
      "TERM", 1, function() return #temps(dir) > 0 end)
    assert.equal(143, got, err)
    one_line(err, "SIGTERM")
    assert.same({}, temps(dir))
    assert.is_nil(lfs.attributes(dir .. "/o.snap"))
  end)

  it("compact in place: SIGTERM gives one line, exit 143, no temp, the old snapshot", function()
    local src = fixtures.root .. "/wal/recovery/attempt_outcomes_snapshot_plus_tail"
    assert(os.execute(string.format("cp -r %s %s/d", q(src), q(dir))))
    local snap = dir .. "/d/snapshots/snapshot.bin"
    local before = files.read(snap)
    local got, err = signal_at_write(dir, { "compact", "d" }, "TERM", 1,
      function() return #temps(dir .. "/d/snapshots") > 0 end)
    assert.equal(143, got, err)
    one_line(err, "SIGTERM")
    assert.same({}, temps(dir .. "/d/snapshots"))
    assert.equal(before, files.read(snap), "the previous snapshot is intact")
  end)

  it("wal repair: SIGTERM while the cut file is written leaves the WAL and no cut file", function()
    local wal = dir .. "/a.wal"
    local good = files.read(fixtures.root .. "/wal/workload/workload_seed1.wal")
    files.write(wal, good .. "\5\0\0\0\200\0\0\0" .. string.rep("x", 40))
    local before = files.read(wal)
    local got, err = signal_at_write(dir, { "wal", "repair", "a.wal" }, "TERM", 1,
      function() return #temps(dir) > 0 end)
    assert.equal(143, got, err)
    one_line(err, "SIGTERM")
    assert.same({}, temps(dir))
    assert.equal(before, files.read(wal), "the WAL is untouched")
    for name in lfs.dir(dir) do assert.is_nil(name:find("cut", 1, true), name) end
  end)
end)
