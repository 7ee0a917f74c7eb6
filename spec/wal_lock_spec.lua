-- WAL mutations are exclusive and repair never destroys what it cannot explain
-- (issue 13 defects 3, 4, 5): a second appender is refused at once, naming the file;
-- racing appender processes lose no acknowledged record; repair refuses a file that is
-- not a WAL and a WAL another process has open for writing; cut files are never
-- overwritten, deleted or left empty.
local files = require "support.files"
local aqstore = require "support.aqstore_run"
local fixtures = require "support.fixtures"
local codec = require "actionqueue.storage.wal.codec"
local appender = require "actionqueue.storage.wal.appender"
local repair = require "actionqueue.storage.wal.repair"
local reader = require "actionqueue.storage.wal.reader"
local datadir = require "actionqueue.storage.datadir"
local lfs = require "lfs"
local proc = require "support.proc"

local q, write, read = files.q, files.write, files.read
local wait_for, wait_pid = proc.wait_for_file, proc.wait_pid
local FULL = os.getenv("AQS_RELIABILITY") == "full"

local function rec(seq, ts)
  return assert(codec.encode_record({ sequence = seq, event = { EnginePaused = { timestamp = ts or seq } } }))
end

-- Starts `lua5.4 -e CODE` in the background with the specs' module paths; returns its pid.
local function spawn(code, out)
  local cmd = string.format("LUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s >%s 2>&1 & echo $!",
    q(package.path), q(package.cpath), q(code), q(out))
  local p = assert(io.popen(cmd))
  local pid = tonumber(p:read("l"))
  p:close()
  return pid
end

describe("WAL locking", function()
  local tmp
  before_each(function() tmp = files.tmpdir() end)
  after_each(function() files.rmtree(tmp) end)

  it("refuses a second appender on one file at once, naming the file", function()
    local path = tmp .. "/w.wal"
    local a = assert(appender.open(path, { sync = "none" }))
    local b, err = appender.open(path, { sync = "none" })
    assert.is_nil(b)
    assert.equal("Locked", err.kind)
    assert.equal(path, err.path)
    assert.matches(path .. " is locked: another process holds it", err.message, 1, true)
    assert(a:close())
    b = assert(appender.open(path, { sync = "none" })) -- released by close
    assert(b:close())
  end)

  it("locks <dir>/store.lock for a WAL inside a data dir", function()
    assert(lfs.mkdir(tmp .. "/wal"))
    local path = tmp .. "/wal/actionqueue.wal"
    assert.equal(tmp, datadir.of_wal(path))
    local a = assert(appender.open(path, { sync = "none" }))
    assert.equal("file", lfs.attributes(tmp .. "/store.lock", "mode"))
    local lock, err = datadir.lock_exclusive(tmp)
    assert.is_nil(lock)
    assert.equal("Locked", err.kind)
    assert.matches(tmp .. "/store.lock is locked: another process holds it", err.message, 1, true)
    -- readers are not blocked: a shared lock is refused, reading goes on with a note
    local shared, note = datadir.lock_shared(tmp)
    assert.is_false(shared)
    assert.matches("another process holds it", note)
    assert(require("actionqueue.storage.recovery").recover(tmp))
    assert(a:close())
    lock = assert(datadir.lock_exclusive(tmp))
    lock:unlock()
  end)

  it("compaction in place is refused while a WAL appender holds the data dir", function()
    assert(lfs.mkdir(tmp .. "/wal"))
    local recovery = require "actionqueue.storage.recovery"
    local a = assert(appender.open(tmp .. "/wal/actionqueue.wal", { sync = "none" }))
    assert(a:append({ sequence = 1, event = { EnginePaused = { timestamp = 1 } } }))
    local ok, err = recovery.compact(tmp, { timestamp = 5 })
    assert.is_nil(ok)
    assert.same({ "Locked", "lock" }, { err.kind, err.stage })
    assert.matches(tmp .. "/store.lock is locked: another process holds it", err.message, 1, true)
    assert.is_nil(lfs.attributes(tmp .. "/snapshots/snapshot.bin"))
    -- compaction elsewhere only reads: allowed, with a warning
    local info
    ok, info = recovery.compact(tmp, { timestamp = 5, out = tmp .. "/elsewhere.snap" })
    assert.is_true(ok, info and info.message)
    assert.matches("another process holds it", info.recovered.warnings[1])
    assert(a:close())
    assert(recovery.compact(tmp, { timestamp = 5 }))
    assert.equal("file", lfs.attributes(tmp .. "/snapshots/snapshot.bin", "mode"))
  end)

  it("refuses a symlink at the WAL path instead of appending through it", function()
    local victim = tmp .. "/victim"
    write(victim, "precious")
    assert(lfs.link(victim, tmp .. "/w.wal", true))
    local a, err = appender.open(tmp .. "/w.wal", { sync = "none" })
    assert.is_nil(a)
    assert.matches("ELOOP", tostring(err.errno))
    assert.equal("precious", read(victim))
  end)

  local function race(n_records)
    local path = tmp .. "/race.wal"
    os.remove(path)
    local code = [[
      local appender = require "actionqueue.storage.wal.appender"
      local path, ready, go, n = ...
      local a, err = appender.open(path, { sync = "always" })
      if not a then io.write("REFUSED ", err.kind, " ", err.message, "\n") return end
      io.open(ready, "w"):close()
      local start = a:current_sequence()
      for i = 1, n do
        local seq = start + i
        local ok, aerr = a:append({ sequence = seq, event = { EnginePaused = { timestamp = seq } } })
        if not ok then io.write("FAILED ", tostring(aerr), "\n") break end
        io.write("ACK ", seq, "\n")
        io.stdout:flush()
        if i == 1 then
          for _ = 1, 200 do
            if io.open(go) then break end
            os.execute("sleep 0.05")
          end
        end
      end
      a:close()
    ]]
    local function script(ready, go)
      return "arg = nil; local f = load(" .. string.format("%q", code) .. "); f(" ..
        string.format("%q, %q, %q, %d", path, ready, go, n_records) .. ")"
    end
    local outa, outb = tmp .. "/a.out", tmp .. "/b.out"
    local pa = spawn(script(tmp .. "/a.ready", tmp .. "/go"), outa)
    assert.is_true(wait_for(tmp .. "/a.ready", 10), "first appender never opened: " .. (read(outa) or ""))
    local pb = spawn(script(tmp .. "/b.ready", tmp .. "/go"), outb)
    wait_for(tmp .. "/b.ready", 2)
    write(tmp .. "/go", "")
    assert.is_true(wait_pid(pa, 60) and wait_pid(pb, 60))
    os.remove(tmp .. "/go"); os.remove(tmp .. "/a.ready"); os.remove(tmp .. "/b.ready")
    local acked = {}
    for _, o in ipairs { outa, outb } do
      for seq in (read(o) or ""):gmatch("ACK (%d+)") do acked[#acked + 1] = tonumber(seq) end
    end
    local s = reader.scan(path)
    return acked, s, read(outa), read(outb)
  end

  it("racing appender processes: the second is refused, no acknowledged record is lost", function()
    for _ = 1, FULL and 20 or 1 do
      local acked, s, outa, outb = race(FULL and 500 or 100)
      assert.matches("^REFUSED Locked .* is locked: another process holds it %(pid %d+%)", outb)
      assert.is_nil(s.error, tostring(s.error))
      assert.equal(#acked, s.records, outa)
      local present = {}
      reader.scan(tmp .. "/race.wal", {}, function(_, ev) present[ev.sequence] = true end)
      for _, seq in ipairs(acked) do assert.is_true(present[seq], "acknowledged record lost: " .. seq) end
    end
  end)

  it("refuses to append to or repair a WAL another process has open for writing, unless forced", function()
    local path = tmp .. "/busy.wal"
    write(path, rec(1) .. rec(2):sub(1, 5))
    -- an engine 0.1.2 stand-in: holds the file open read+write, takes no lock
    local stop = tmp .. "/stop"
    local pid = spawn(string.format("local f = io.open(%q, 'r+b'); io.open(%q, 'w'):close(); " ..
      "for _ = 1, 600 do if io.open(%q) then break end os.execute('sleep 0.05') end f:close()",
      path, tmp .. "/held", stop), "/dev/null")
    finally(function()
      write(stop, "")
      wait_pid(pid, 10)
    end)
    assert.is_true(wait_for(tmp .. "/held", 10))
    local ws = datadir.writers(path)
    assert.is_true(#ws >= 1)
    local r, err = repair.run(path)
    assert.is_nil(r)
    assert.equal("Busy", err.kind)
    assert.matches(path .. " is open for writing by another process: pid %d+", err.message)
    assert.equal(#rec(1) + 5, #read(path))
    local a
    a, err = appender.open(path, { sync = "none", repair = "truncate_partial" })
    assert.is_nil(a)
    assert.equal("Busy", err.kind)
    local out = aqstore.cli({ "wal", "repair", path }, { merge = true })
    assert.equal(1, out.code)
    assert.matches("is open for writing by another process", out.out)
    r = assert(repair.run(path, { force = true }))
    assert.equal("truncated", r.action)
  end)
end)

describe("wal repair safety", function()
  local tmp
  before_each(function() tmp = files.tmpdir() end)
  after_each(function() files.rmtree(tmp) end)

  it("refuses a file whose first record is invalid: it does not look like a WAL (defect 4)", function()
    local cases = { text = "hello, this is a text file\n", json = '{"a":1}\n{"b":2}\n' }
    if fixtures.available() then
      cases.snapshot = read(fixtures.path("snapshot", "valid_01_tasks.snap"))
    end
    for name, data in pairs(cases) do
      local path = tmp .. "/" .. name
      write(path, data)
      local r = aqstore.cli({ "wal", "repair", path }, { merge = true })
      assert.equal(1, r.code, name .. ": " .. r.out)
      assert.matches("does not look like a WAL", r.out)
      assert.equal(data, read(path), name .. " was changed")
      assert.is_nil(lfs.attributes(path .. ".cut-0"), name .. ": a cut file was written")
    end
    -- --force: the operator says it is a WAL whose first record is damaged
    local r = aqstore.cli({ "wal", "repair", "--force", tmp .. "/text" }, { merge = true })
    assert.equal(0, r.code, r.out)
    assert.equal("", read(tmp .. "/text"))
    assert.equal(cases.text, read(tmp .. "/text.cut-0"))
  end)

  it("never overwrites or deletes an earlier cut file (defect 5)", function()
    local path = tmp .. "/w.wal"
    local good = rec(1) .. rec(2)
    write(path, good .. "first torn tail")
    assert(repair.run(path))
    write(path .. ".cut-" .. #good, "rescued by the first repair")
    write(path, good .. "second torn tail")
    local r = assert(repair.run(path))
    assert.equal(path .. ".cut-" .. #good .. ".2", r.cut_file)
    assert.equal("rescued by the first repair", read(path .. ".cut-" .. #good))
    assert.equal("second torn tail", read(r.cut_file))
    write(path, good .. "third")
    r = assert(repair.run(path))
    assert.equal(path .. ".cut-" .. #good .. ".3", r.cut_file)
    assert.equal(good, read(path))
  end)

  it("does not write a cut file through a planted symlink", function()
    local path = tmp .. "/w.wal"
    write(path, rec(1) .. "torn")
    local victim = tmp .. "/victim"
    write(victim, "precious")
    assert(lfs.link(victim, path .. ".cut-" .. #rec(1), true))
    local r = assert(repair.run(path))
    assert.equal(path .. ".cut-" .. #rec(1) .. ".2", r.cut_file)
    assert.equal("precious", read(victim))
  end)

  it("leaves no empty cut file and the WAL untouched when the save fails (ENOSPC)", function()
    local mnt = files.tmpdir()
    if not os.execute("mount -t tmpfs -o size=64k aqs-full " .. q(mnt) .. " 2>/dev/null") then
      files.rmtree(mnt)
      pending("needs root to mount a small tmpfs")
      return
    end
    local path = mnt .. "/w.wal"
    local tail = string.rep("\255", 40 * 1024)
    write(path, rec(1) .. tail)
    local r, err = repair.run(path)
    local names = {}
    for name in lfs.dir(mnt) do if name:sub(1, 1) ~= "." then names[#names + 1] = name end end
    local after = read(path)
    os.execute("umount " .. q(mnt))
    files.rmtree(mnt)
    assert.is_nil(r)
    assert.equal("ENOSPC", err.errno)
    assert.matches("cannot save cut bytes", err.message)
    assert.same({ "w.wal" }, names)
    assert.is_true(after == rec(1) .. tail, "the WAL changed")
  end)
end)
