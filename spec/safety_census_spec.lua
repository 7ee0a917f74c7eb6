-- Concurrency census with real processes (the gap issue 13's closing note left, gap 5;
-- docs/safety.md "Concurrency census"): one process is held by strace inside a pwrite of
-- its output while a second one starts on the same thing. The data must survive (the
-- target is the first one's complete output, the WAL keeps every acknowledged record) and
-- the second must be refused at once with a message that names the file and says another
-- process holds it.
-- * two `compact DIR` in place;
-- * `compact DIR` in place while another process appends to the WAL;
-- * two `rewrite IN TARGET` of one target (before the fix the second was not refused: both
--   wrote and the later rename won, so the first one's OK output was silently replaced);
-- * two `wal repair` of one WAL.
-- (Two `batch --resume` into one report: spec/safety_journal_spec.lua.)
-- Under `make sanitize` strace cannot run with the sanitizer preloads: pending there.
local files = require "support.files"
local fixtures = require "support.fixtures"
local proc = require "support.proc"
local run = require "support.aqstore_run"
local reader = require "actionqueue.storage.wal.reader"
local lfs = require "lfs"

local q = files.q

local have_strace = proc.have_strace

local temps = proc.writer_temps

-- Starts `aqstore ARGS` in `cwd` under strace, holding its first pwrite64 for `hold` s;
-- returns a handle for `finish`.
local function start_held(cwd, args, hold)
  local words = {}
  for i, a in ipairs(args) do words[i] = q(a) end
  local h = { rc = cwd .. "/.rc", out = cwd .. "/.out" }
  local cmd = string.format("cd %s && { strace -f -qq -o /dev/null -e trace=pwrite64 "
    .. "-e inject=pwrite64:delay_enter=%d:when=1 lua5.4 %s %s >%s 2>&1; echo $? > %s; } &",
    q(cwd), math.floor(hold * 1e6), q(run.aqstore), table.concat(words, " "), q(h.out), q(h.rc))
  assert(os.execute("sh -c " .. q(cmd) .. " >/dev/null 2>&1"))
  return h
end

local function finish(h)
  assert.is_true(proc.wait_for_file(h.rc, 60), "the held command ended")
  proc.sleep(0.05)
  local code, out = tonumber(files.read(h.rc)), files.read(h.out) or ""
  os.remove(h.rc); os.remove(h.out)
  return code, out
end

local function wait_temp(dir)
  for _ = 1, 1000 do
    if #temps(dir) > 0 then return true end
    proc.sleep(0.01)
  end
  return false
end

describe("concurrency census (real processes)", function()
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

  local function datadir_copy(name)
    local src = fixtures.root .. "/wal/recovery/attempt_outcomes_snapshot_plus_tail"
    assert(os.execute(string.format("cp -r %s %s", q(src), q(dir .. "/" .. name))))
    return dir .. "/" .. name
  end

  it("two in-place compactions: the second is refused, the first's snapshot is whole", function()
    local d = datadir_copy("d")
    datadir_copy("ref")
    assert.equal(0, run.cli({ "compact", dir .. "/ref", "--timestamp", "1800000000" }).code)
    local a = start_held(dir, { "compact", "d", "--timestamp", "1800000000" }, 2)
    assert.is_true(wait_temp(d .. "/snapshots"), "the first compaction is writing")
    local b = run.cli({ "compact", d, "--timestamp", "1800000000" })
    assert.equal(1, b.code, b.out .. b.err)
    assert.matches(d .. "/store.lock is locked: another process holds it", b.out .. b.err, 1, true)
    local code, out = finish(a)
    assert.equal(0, code, out)
    assert.equal(files.read(dir .. "/ref/snapshots/snapshot.bin"), files.read(d .. "/snapshots/snapshot.bin"))
    assert.same({}, temps(d .. "/snapshots"))
  end)

  it("compaction in place while another process appends: refused; every acknowledged record kept", function()
    local d = datadir_copy("d")
    local wal = d .. "/wal/actionqueue.wal"
    local last = reader.scan(wal).last_sequence
    local ready, stop, log = dir .. "/ready", dir .. "/stop", dir .. "/appender.out"
    local code = string.format([[
      local appender = require "actionqueue.storage.wal.appender"
      local lfs = require "lfs"
      local a = assert(appender.open(%q, { sync = "always" }))
      local seq = a:current_sequence()
      io.open(%q, "w"):close()
      local n = 0
      while not lfs.attributes(%q) and n < 5000 do
        seq = seq + 1
        assert(a:append({ sequence = seq, event = { EnginePaused = { timestamp = seq } } }))
        n = n + 1
        io.write(seq, "\n") io.flush()
      end
      assert(a:close())
    ]], wal, ready, stop)
    local p = assert(io.popen(string.format("LUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s >%s 2>&1 & echo $!",
      q(package.path), q(package.cpath), q(code), q(log))))
    local pid = tonumber(p:read("l"))
    p:close()
    assert.is_true(proc.wait_for_file(ready, 10), files.read(log))
    proc.sleep(0.1)
    local b = run.cli({ "compact", d, "--timestamp", "1800000000" })
    files.write(stop, "")
    assert.equal(1, b.code, b.out .. b.err)
    assert.matches(d .. "/store.lock is locked: another process holds it", b.out .. b.err, 1, true)
    assert.is_true(proc.wait_pid(pid, 30), "the appender ended")
    local s = reader.scan(wal)
    assert.is_nil(s.error)
    local acked = last
    for n in (files.read(log) or ""):gmatch("(%d+)\n") do acked = math.max(acked, tonumber(n)) end
    assert.is_true(acked > last, "the appender appended")
    assert.is_true(s.last_sequence >= acked, "every acknowledged record is in the WAL")
    -- the lock went with the appender
    assert(require("actionqueue.storage.datadir").lock_exclusive(d)):unlock()
  end)

  it("two rewrites of one target: the second is refused, the target is the first's output", function()
    local big = fixtures.path("snapshot", "valid_12_medium_1000.snap")
    local other = fixtures.path("snapshot", "valid_08_strings.snap")
    files.copy(big, dir .. "/big.snap")
    files.copy(fixtures.path("snapshot", "valid_01_tasks.snap"), dir .. "/t.snap")
    local a = start_held(dir, { "rewrite", "big.snap", "t.snap" }, 2)
    assert.is_true(wait_temp(dir), "the first rewrite is writing")
    local b = run.cli({ "rewrite", files.abs(other), dir .. "/t.snap" })
    assert.equal(1, b.code, b.out .. b.err)
    assert.matches(dir .. "/t.snap", b.out .. b.err, 1, true)
    assert.matches("another process", b.out .. b.err, 1, true)
    local code, out = finish(a)
    assert.equal(0, code, out)
    assert.equal(files.read(big), files.read(dir .. "/t.snap"))
    assert.same({}, temps(dir))
  end)

  it("two repairs of one WAL: the second is refused, one cut file, the WAL cut once", function()
    local wal = dir .. "/a.wal"
    local good = files.read(fixtures.root .. "/wal/workload/workload_seed1.wal")
    files.write(wal, good .. "\5\0\0\0\200\0\0\0" .. string.rep("x", 40))
    local a = start_held(dir, { "wal", "repair", "a.wal" }, 2)
    assert.is_true(wait_temp(dir), "the first repair is saving the cut bytes")
    local b = run.cli({ "wal", "repair", wal })
    assert.equal(1, b.code, b.out .. b.err)
    assert.matches(wal .. " is locked: another process holds it", b.out .. b.err, 1, true)
    local code, out = finish(a)
    assert.equal(0, code, out)
    assert.equal(good, files.read(wal))
    assert.equal("\5\0\0\0\200\0\0\0" .. string.rep("x", 40), files.read(wal .. ".cut-" .. #good))
    assert.is_nil(lfs.attributes(wal .. ".cut-" .. #good .. ".2"))
  end)
end)
