-- Reliability of the WAL's exclusive mutations (docs/wal.md "Locking", "Repair"):
-- * racing appender processes: the second is refused at once, 0 acknowledged records lost;
-- * kill -9 at random moments of `aqstore wal repair`: the WAL is whole or cut exactly at
--   the bad record, and once cut, a complete cut file holds every byte it dropped; a cut
--   file is never partial; the next repair finishes; no earlier cut file is ever lost; no
--   lock outlives its process;
-- * kill -9 at random moments of `aqstore compact DIR` (in place): the snapshot is the old
--   one or the new one, the WAL is untouched, and the next compaction succeeds.
-- `make test` runs a small slice; AQS_RELIABILITY=full (make crash) runs the long one.
local fixtures = require "support.fixtures"
local files = require "support.files"
local aqstore = require "support.aqstore_run"
local reader = require "actionqueue.storage.wal.reader"
local lfs = require "lfs"
local proc = require "support.proc"

local FULL = os.getenv("AQS_RELIABILITY") == "full"
local N_RACES = FULL and 20 or 1
local N_RECORDS = FULL and 500 or 30
local N_KILLS = FULL and 60 or 2

local q, read, write = files.q, files.read, files.write
local sleep, wait_for, wait_pid = proc.sleep, proc.wait_for_file, proc.wait_pid

-- Runs `cmd` in the background in its own process group; returns its pid.
local function start(cmd, out)
  local p = assert(io.popen(string.format("setsid sh -c %s >%s 2>&1 </dev/null & echo $!",
    q("exec " .. cmd), q(out or "/dev/null"))))
  local pid = tonumber(p:read("l"))
  p:close()
  return pid
end

local function kill9(pid)
  os.execute("kill -9 -- -" .. pid .. " 2>/dev/null; kill -9 " .. pid .. " 2>/dev/null")
  wait_pid(pid, 10)
end

local function lua_cmd(code, env)
  return string.format("env %sLUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s", env or "", q(package.path),
    q(package.cpath), q(code))
end

local function aqstore_cmd(...)
  local parts = { "lua5.4", q(aqstore.aqstore) }
  for _, a in ipairs { ... } do parts[#parts + 1] = q(a) end
  return table.concat(parts, " ")
end

-- kill -9 does not test durability (the page cache survives it), so the runs may use a
-- memory file system: fsync there costs nothing and the slices stay fast.
local function tmpdir()
  if lfs.attributes("/dev/shm", "mode") == "directory" then
    local p = io.popen("mktemp -d /dev/shm/aqs-lock.XXXXXX 2>/dev/null")
    local d = p and p:read("l")
    if p then p:close() end
    if d and d ~= "" then return d end
  end
  return files.tmpdir()
end

-- The cut files next to WAL `base` (`base.cut-O`, `base.cut-O.N`), not the writer's temps.
local function cut_files(dir, base)
  local out = {}
  for name in lfs.dir(dir) do
    if name:sub(1, #base + 5) == base .. ".cut-" and not name:find(".tmp.", 1, true) then
      out[#out + 1] = dir .. "/" .. name
    end
  end
  table.sort(out)
  return out
end

describe("racing appenders", function()
  local tmp
  before_each(function() tmp = tmpdir() end)
  after_each(function() files.rmtree(tmp) end)

  it(N_RACES .. " races of two appender processes: the second is refused, 0 acknowledged records lost", function()
    local appender_code = [[
      local appender = require "actionqueue.storage.wal.appender"
      local path, ready, go, n = os.getenv("W"), os.getenv("READY"), os.getenv("GO"), tonumber(os.getenv("N"))
      local a, err = appender.open(path, { sync = "always" })
      if not a then io.write("REFUSED ", err.kind, " ", err.message, "\n") return end
      io.open(ready, "w"):close()
      for _ = 1, 500 do if io.open(go) then break end os.execute("sleep 0.01") end
      local start = a:current_sequence()
      for i = 1, n do
        local seq = start + i
        local ok = a:append({ sequence = seq, event = { EnginePaused = { timestamp = seq } } })
        if not ok then break end
        io.write("ACK ", seq, "\n")
        io.stdout:flush()
      end
      a:close()
    ]]
    local refused, acked_total, lost = 0, 0, 0
    for race = 1, N_RACES do
      local path = tmp .. "/race.wal"
      local env = string.format("W=%s N=%d GO=%s ", q(path), N_RECORDS, q(tmp .. "/go"))
      local a = start(lua_cmd(appender_code, env .. "READY=" .. q(tmp .. "/a.ready") .. " "), tmp .. "/a.out")
      assert.is_true(wait_for(tmp .. "/a.ready", 20), "race " .. race .. ": " .. (read(tmp .. "/a.out") or ""))
      local b = start(lua_cmd(appender_code, env .. "READY=" .. q(tmp .. "/b.ready") .. " "), tmp .. "/b.out")
      assert.is_true(wait_pid(b, 30))
      write(tmp .. "/go", "")
      assert.is_true(wait_pid(a, 60))
      local outb = read(tmp .. "/b.out") or ""
      if outb:match("^REFUSED Locked .- is locked: another process holds it") then refused = refused + 1 end
      local present = {}
      local s = reader.scan(path, {}, function(_, ev) present[ev.sequence] = true end)
      assert.is_nil(s.error, tostring(s.error))
      for _, o in ipairs { read(tmp .. "/a.out") or "", outb } do
        for seq in o:gmatch("ACK (%d+)") do
          acked_total = acked_total + 1
          if not present[tonumber(seq)] then lost = lost + 1 end
        end
      end
      for _, f in ipairs { "a.ready", "b.ready", "go", "a.out", "b.out" } do os.remove(tmp .. "/" .. f) end
    end
    print(string.format("\nracing appenders: %d races, second refused %d times, %d acknowledged, %d lost",
      N_RACES, refused, acked_total, lost))
    assert.equal(N_RACES, refused)
    assert.equal(0, lost)
    assert.equal(N_RACES * N_RECORDS, acked_total)
  end)
end)

describe("kill -9", function()
  if not fixtures.available() then
    pending("shared fixtures not found")
    return
  end
  local tmp
  before_each(function() tmp = tmpdir() end)
  after_each(function() files.rmtree(tmp) end)

  it(N_KILLS .. " kills during wal repair: WAL whole or cut, the cut bytes complete once cut", function()
    -- a real WAL with a large torn tail: a header announcing 8 MiB, then 3 MiB of payload
    local good = assert(read(fixtures.path("wal", "recovery/large_wal_only/wal/actionqueue.wal")))
    local torn = string.pack("<I4I4I4", 5, 8 * 1024 * 1024, 0) .. string.rep("\171", 3 * 1024 * 1024)
    local original = good .. torn
    local path = tmp .. "/w.wal"
    local outcomes = { untouched = 0, cut = 0 }
    for k = 1, N_KILLS do
      write(path, original)
      for _, c in ipairs(cut_files(tmp, "w.wal")) do os.remove(c) end
      -- an earlier repair's cut file must survive everything
      local earlier = path .. ".cut-" .. #good
      write(earlier, "rescued earlier")
      local pid = start(aqstore_cmd("wal", "repair", path))
      -- the whole repair takes about 30 ms here (+ ~10 ms to start and kill): spread the kills
      sleep((k * 0.618034) % 1 * 0.045)
      kill9(pid)
      local after = read(path)
      assert.equal("rescued earlier", read(earlier), "kill " .. k .. ": an earlier cut file changed")
      local cuts = cut_files(tmp, "w.wal")
      -- a cut file appears whole or not at all (fsutil.create_exclusive)
      for _, c in ipairs(cuts) do
        if c ~= earlier then assert.is_true(read(c) == torn, "kill " .. k .. ": partial cut file " .. c) end
      end
      if after == original then
        outcomes.untouched = outcomes.untouched + 1
      else
        assert.is_true(after == good, "kill " .. k .. ": WAL neither whole nor cut at the bad record")
        outcomes.cut = outcomes.cut + 1
        local complete = false
        for _, c in ipairs(cuts) do if read(c) == torn then complete = true end end
        assert.is_true(complete, "kill " .. k .. ": WAL cut but no complete cut file")
      end
      -- the lock died with the process: the next repair finishes
      local r = aqstore.cli({ "wal", "repair", path }, { merge = true })
      assert.equal(0, r.code, "kill " .. k .. ": " .. r.out)
      assert.is_true(read(path) == good)
      local complete = false
      for _, c in ipairs(cut_files(tmp, "w.wal")) do if read(c) == torn then complete = true end end
      assert.is_true(complete, "kill " .. k .. ": the cut bytes were lost")
    end
    print(string.format("\nkill -9 during wal repair: %d kills, WAL untouched %d, cut %d",
      N_KILLS, outcomes.untouched, outcomes.cut))
  end)

  it(N_KILLS .. " kills during compaction in place: old or new snapshot, WAL untouched", function()
    local src = fixtures.path("wal", "recovery/large_snapshot_plus_tail")
    local expected = assert(read(fixtures.path("wal", "recovery/large_snapshot_plus_tail.expected.snap")))
    local old_snap = assert(read(src .. "/snapshots/snapshot.bin"))
    local wal_bytes = assert(read(src .. "/wal/actionqueue.wal"))
    local data = tmp .. "/data"
    local outcomes = { old = 0, new = 0 }
    for k = 1, N_KILLS do
      files.rmtree(data)
      assert(os.execute("cp -r " .. q(src) .. " " .. q(data)))
      local pid = start(aqstore_cmd("compact", data, "--timestamp", "1800000000"))
      -- compaction of this data dir takes about 40 ms here (+ ~10 ms to start and kill)
      sleep((k * 0.618034) % 1 * 0.06)
      kill9(pid)
      assert.is_true(read(data .. "/wal/actionqueue.wal") == wal_bytes, "kill " .. k .. ": WAL changed")
      local snap = read(data .. "/snapshots/snapshot.bin")
      if snap == old_snap then outcomes.old = outcomes.old + 1
      else
        assert.is_true(snap == expected, "kill " .. k .. ": snapshot is neither the old nor the new one")
        outcomes.new = outcomes.new + 1
      end
      -- no stale lock: compaction in place runs again (from the old state: the expected bytes)
      if snap == old_snap then
        local r = aqstore.cli({ "compact", data, "--timestamp", "1800000000" }, { merge = true })
        assert.equal(0, r.code, "kill " .. k .. ": " .. r.out)
        assert.is_true(read(data .. "/snapshots/snapshot.bin") == expected)
      end
    end
    print(string.format("\nkill -9 during compact: %d kills, old snapshot %d, new snapshot %d",
      N_KILLS, outcomes.old, outcomes.new))
  end)
end)
