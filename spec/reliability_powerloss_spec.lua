-- Power-loss model (spec/support/powerloss.c in a -DAQS_IO_TEST build of the core):
-- writes reach a simulated page cache; only fsync/fdatasync make file data durable and
-- only a directory fsync makes names (create, rename) durable.  A power cut at every
-- syscall of a snapshot replace, a compaction, a WAL repair and WAL appends must keep
-- every acknowledged write, leave the snapshot old-or-new and no stray files; and
-- removing any single fsync from the code path must make the same check fail.
-- `make faults` (AQS_RELIABILITY=full) cuts at every syscall; `make test` at a spread.
local powerloss = require "support.powerloss"
local fixtures = require "support.fixtures"

local full = os.getenv("AQS_RELIABILITY") == "full"
local MAXCUT = full and "100000" or "8"

local files = require "support.files"
local tmpdir = files.tmpdir

describe("power loss", function()
  if not powerloss.available() or not fixtures.available() then
    pending("build-iotest core or fixtures missing (make test-support)")
    return
  end
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() files.rmtree(dir) end)

  local function split(cases)
    local by = {}
    for _, c in ipairs(cases) do
      by[c.name] = by[c.name] or { ok = 0, lost = {} }
      if c.ok then by[c.name].ok = by[c.name].ok + 1 else by[c.name].lost[#by[c.name].lost + 1] = c end
    end
    return by
  end

  it("snapshot.write: a cut at any syscall keeps old or new, never loses an acknowledged replace", function()
    local cases, out, done = powerloss.run("snapshot", dir .. "/d", MAXCUT)
    assert.is_true(done, out)
    local by = split(cases)
    assert.is_true(by.cut.ok >= 8, out)
    assert.same({}, by.cut.lost)
    -- The atomic writer has two fsyncs (temp file, directory); skipping either one
    -- loses the acknowledged replace, so the model really checks both.
    local _, syncs = out:match("BASE calls (%d+) syncs (%d+)")
    assert.equal("2", syncs)
    assert.equal(0, by.skip_sync.ok, out)
    assert.equal(2, #by.skip_sync.lost)
    assert.matches("0 other bytes", by.skip_sync.lost[1].why)        -- data never synced
    assert.matches("the old snapshot", by.skip_sync.lost[2].why)     -- rename never synced
    print(("\npower-loss cases (snapshot): %d cuts, %d skipped fsyncs"):format(by.cut.ok, #by.skip_sync.lost))
  end)

  it("recovery.compact: a cut anywhere keeps the old or the new snapshot and the WAL", function()
    local cases, out, done = powerloss.run("compact", dir .. "/d", MAXCUT)
    assert.is_true(done, out)
    local by = split(cases)
    assert.is_true(by.cut.ok >= 8, out)
    assert.same({}, by.cut.lost)
    assert.equal(0, by.skip_sync.ok, out)     -- both of the snapshot writer's fsyncs matter
    assert.equal(2, #by.skip_sync.lost)
    print(("\npower-loss cases (compact): %d cuts, %d skipped fsyncs"):format(by.cut.ok, #by.skip_sync.lost))
  end)

  it("WAL repair: a cut anywhere keeps the valid records; a returned repair is durable", function()
    local cases, out, done = powerloss.run("repair", dir .. "/d", MAXCUT)
    assert.is_true(done, out)
    local by = split(cases)
    assert.is_true(by.cut.ok >= 8, out)
    assert.same({}, by.cut.lost)
    -- cut file data, its directory entry, the truncation: each fsync is needed
    assert.equal(0, by.skip_sync.ok, out)
    assert.equal(3, #by.skip_sync.lost)
    print(("\npower-loss cases (repair): %d cuts, %d skipped fsyncs"):format(by.cut.ok, #by.skip_sync.lost))
  end)

  for _, mode in ipairs({ "existing", "create" }) do
    it("WAL appends (" .. mode .. " file): every acknowledged record survives a cut anywhere", function()
      local cases, out, done = powerloss.run("wal", dir .. "/d", MAXCUT, mode)
      assert.is_true(done, out)
      local by = split(cases)
      local cut = by[mode == "create" and "cut_create" or "cut"]
      local skip = by[mode == "create" and "skip_sync_create" or "skip_sync"]
      assert.is_true(cut.ok >= 8, out)
      assert.same({}, cut.lost)
      -- Every sync matters: 6 appends (+ the directory sync of a new file).
      assert.equal(0, skip.ok, out)
      assert.equal(mode == "create" and 7 or 6, #skip.lost)
      print(("\npower-loss cases (WAL, %s file): %d cuts, %d skipped fsyncs"):format(mode, cut.ok, #skip.lost))
    end)
  end
end)
