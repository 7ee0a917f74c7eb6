-- Issue 16: data dirs in the REPL. aq.load(DIR) gives the recovered state (snapshot + WAL
-- tail) as the same kind of view, plus the WAL events; r:history() merges them; nothing
-- in the data dir is created or written.
local fixtures = require "support.fixtures"
local files = require "support.files"
local run = require "support.aqstore_run"

local CASE = "attempt_in_flight_snapshot_plus_tail"

local function manifest_case(name)
  for _, c in ipairs(fixtures.manifest("wal").cases or fixtures.manifest("wal")) do
    if c.dir == "recovery/" .. name then return c end
  end
end

-- The RECOVERED line of the manifest as a table of key = number.
local function recovered(case)
  local out = {}
  for k, v in case.recover.stdout[1]:gmatch("(%S+)=(%S+)") do out[k] = tonumber(v) or v end
  return out
end

-- Every file below `dir` with its bytes (what must not change).
local function tree(dir)
  local lfs = require "lfs"
  local out = {}
  local function walk(d, rel)
    for name in lfs.dir(d) do
      if name ~= "." and name ~= ".." then
        local p, r = d .. "/" .. name, rel .. name
        if lfs.attributes(p, "mode") == "directory" then out[r .. "/"] = "dir" walk(p, r .. "/")
        else out[r] = files.read(p) end
      end
    end
  end
  walk(dir, "")
  return out
end

describe("aq.load(DIR)", function()
  local dir
  before_each(function()
    dir = files.tmpdir()
    assert.equal(0, os.execute("cp -r " .. files.q(fixtures.path("wal", "recovery", CASE)) .. "/. " .. files.q(dir))
      and 0 or 1)
  end)
  after_each(function() files.rmtree(dir) end)

  it("gives the recovered state with the manifest's counts, and its WAL events", function()
    local aq = require "actionqueue.storage"
    local want = recovered(manifest_case(CASE))
    local s = aq.load(dir)
    assert.equal(want.tasks, #s.tasks)
    assert.equal(want.runs, #s.runs)
    assert.equal(want.latest_sequence, s.metadata.wal_sequence)
    local text = tostring(s)
    assert.matches("data dir", text)
    assert.matches("snapshot at sequence " .. want.snapshot_sequence .. " %+ " .. want.wal_replay_events_applied
      .. " WAL event%(s%) replayed %-> sequence " .. want.latest_sequence, text)
    assert.equal(want.wal_writer_sequence, #s:events())
    assert.matches("^SnapshotRun", tostring(s.runs[1]))
  end)

  it("merges a run's WAL events (sequence, offset, variant) into its history", function()
    local aq = require "actionqueue.storage"
    local s = aq.load(dir)
    local r = s.runs[1]
    local hist = tostring(r:history())
    local events = s:events { run = r.run_instance.id }
    assert.is_true(#events > 3)
    for _, e in ipairs(events) do
      assert.matches("#" .. e.sequence .. " @%d+", hist)
    end
    assert.matches("#%d+ @%d+ RunStateChanged%s+Leased %-> Running", hist)
    assert.matches("LeaseHeartbeat", hist)
    local since = s:events { run = r.run_instance.id, since = 20 }
    for _, e in ipairs(since) do assert.is_true(e.sequence >= 20) end
    assert.equal(2, #s:events { variant = "leaseacquired" })
    local ok, err = pcall(function() return s:events { variant = "LeaseAquired" } end)
    assert.is_false(ok)
    assert.matches('did you mean "LeaseAcquired"', tostring(err))
    assert.matches("^%d+ events?\nseq%s+offset%s+time%s+event\n", tostring(events))
  end)

  it("creates and writes nothing", function()
    local aq = require "actionqueue.storage"
    local before = tree(dir)
    local s = aq.load(dir)
    tostring(s:events()); tostring(s.runs[1]:history())
    assert.same(before, tree(dir))
    -- and a data dir without a snapshot folder stays without one
    files.rmtree(dir .. "/snapshots")
    before = tree(dir)
    aq.load(dir)
    assert.same(before, tree(dir))
  end)

  it("a data dir that does not recover: one line, and aq.events(DIR) still lists the records", function()
    local aq = require "actionqueue.storage"
    local bad = files.tmpdir()
    os.execute("cp -r " .. files.q(fixtures.path("wal", "recovery", "wal_torn_tail")) .. "/. " .. files.q(bad))
    local before = tree(bad)
    local ok, err = pcall(aq.load, bad)
    assert.is_false(ok)
    assert.matches("incomplete_payload", tostring(err))
    assert.matches("aq.events%(DIR%)", tostring(err))
    assert.not_matches("\n", tostring(err))
    local list, problem = aq.events(bad)
    assert.is_true(#list > 0)
    assert.matches("incomplete_payload", tostring(problem))
    assert.matches("^%d+ events?\nseq%s+offset", tostring(list))
    assert.equal(#list, #list { since = 1 })
    assert.same(before, tree(bad))
    files.rmtree(bad)
  end)

  it("aqstore repl DIR shows the recovered counts and a merged timeline", function()
    local r = run.cli({ "repl", dir }, { stdin = "s\ns.runs[1]:history()\n" })
    assert.equal(0, r.code, r.err)
    assert.matches("runs%s+4: ", r.out)
    assert.matches("#%d+ @%d+ RunCreated", r.out)
  end)
end)
