-- Planted symlinks (issue 13 defect 2, docs/safety.md): before each command runs, a
-- symlink to a file outside the workspace is planted at every name the command creates
-- or could be tricked into opening (the engine-style temp `X.tmp`, the output itself,
-- a report's `.tmp` and `.journal`, a WAL's `.cut-OFFSET`, a data dir's snapshot temp).
-- Whatever each command reports, 0 files outside the workspace may change.
local files = require "support.files"
local fixtures = require "support.fixtures"
local run = require "support.aqstore_run"
local lfs = require "lfs"

local q = files.q

describe("planted symlinks", function()
  if not fixtures.available() then
    pending("shared fixtures not found")
    return
  end
  local outside, ws
  before_each(function()
    outside, ws = files.tmpdir(), files.tmpdir()
  end)
  after_each(function()
    files.rmtree(outside)
    files.rmtree(ws)
  end)

  -- Every file outside: name -> content, mode, mtime, size.
  local function census(dir)
    local c = {}
    for name in lfs.dir(dir) do
      if name ~= "." and name ~= ".." then
        local a = lfs.attributes(dir .. "/" .. name)
        c[name] = { data = files.read(dir .. "/" .. name), mode = a.permissions,
                    mtime = a.modification, size = a.size, uid = a.uid }
      end
    end
    return c
  end

  local victims = 0
  local function plant(at)
    victims = victims + 1
    local v = ("%s/victim%03d"):format(outside, victims)
    files.write(v, "precious " .. victims)
    assert(lfs.touch(v, 1000000000, 1000000000))
    os.remove(at)
    assert(lfs.link(v, at, true))
  end

  it("at every file the package creates: 0 files outside touched", function()
    local snap = files.abs(fixtures.path("snapshot", "valid_01_tasks.snap"))
    local queue = files.abs(fixtures.repo .. "/examples/queue.lua")
    local rec = files.abs(fixtures.path("wal", "recovery", "attempt_in_flight_snapshot_plus_tail"))
    local torn = files.abs(fixtures.path("wal", "corrupt", "workload_torn_tail.wal"))
    -- rewrite: the engine's temp name, and the target itself a link
    plant(ws .. "/rw.snap.tmp")
    plant(ws .. "/link.snap")
    plant(ws .. "/link.snap.tmp")
    -- build
    plant(ws .. "/built.snap.tmp")
    -- compact --out, and compact in place in a copy of a data dir
    plant(ws .. "/compact.snap.tmp")
    assert(os.execute(("cp -r %s %s"):format(q(rec), q(ws .. "/dd"))))
    plant(ws .. "/dd/snapshots/snapshot.bin.tmp")
    -- batch report and journal
    plant(ws .. "/r.json.tmp")
    plant(ws .. "/r.json.journal")
    plant(ws .. "/bo.snap.tmp")
    files.write(ws .. "/jobs.lua", ("return { jobs = { { kind = 'rewrite', input = %q, output = %q } } }")
      :format(snap, ws .. "/bo.snap"))
    -- WAL repair: a link at the cut file name the repair plans, and around it
    files.copy(torn, ws .. "/torn.wal")
    local plan = assert(require("actionqueue.storage.wal.repair").plan(ws .. "/torn.wal"))
    local cuts = 0
    for off = math.max(0, plan.offset - 64), plan.offset + 64 do
      assert(lfs.link(outside .. "/victim001", ("%s/torn.wal.cut-%d"):format(ws, off), true))
      cuts = cuts + 1
    end
    local before = census(outside)

    local results = {
      run.cli({ "rewrite", snap, ws .. "/rw.snap" }),
      run.cli({ "rewrite", snap, ws .. "/link.snap" }),
      run.cli({ "build", queue, ws .. "/built.snap" }),
      run.cli({ "compact", "--out", ws .. "/compact.snap", ws .. "/dd" }),
      run.cli({ "compact", ws .. "/dd" }),
      run.cli({ "batch", ws .. "/jobs.lua", "--report", ws .. "/r.json", "-q" }),
      run.cli({ "wal", "repair", ws .. "/torn.wal" }),
    }
    assert.same(before, census(outside))
    -- the writers that had no reason to fail did not fail
    assert.equal(0, results[1].code, results[1].out .. results[1].err)
    assert.equal(0, results[2].code, results[2].out .. results[2].err)
    assert.equal("file", lfs.symlinkattributes(ws .. "/link.snap", "mode"))
    assert.equal(files.read(snap), files.read(ws .. "/link.snap"))
    assert.equal(0, results[3].code, results[3].out .. results[3].err)
    assert.equal("file", lfs.symlinkattributes(ws .. "/built.snap", "mode"))
    assert.equal(0, results[4].code, results[4].out .. results[4].err)
    assert.equal("file", lfs.symlinkattributes(ws .. "/compact.snap", "mode"))
    io.write(("\nplanted symlinks: %d links at %d names, 7 commands, 0 of %d outside files changed\n")
      :format(victims + cuts, victims + cuts, victims))
  end)
end)
