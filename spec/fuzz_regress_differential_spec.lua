-- The differential fuzz targets' drivers (fuzz/snapshot_transcode.lua: the transcoding
-- rewrite against the table path; fuzz/wal_replay.lua: recovery's C replay against the
-- record-at-a-time reducer path and the golden recovery fixtures; fuzz/snapshot_rules.lua:
-- snapshot.validate on mutated tables against the verdict of their encoding) on golden
-- inputs and on every input kept in spec/regressions/<target>/; a broken property raises.
local fixtures = require "support.fixtures"
local files = require "support.files"
local lfs = require "lfs"

local root = fixtures.repo

local function kept(target)
  local list, dir = {}, root .. "/spec/regressions/" .. target
  if lfs.attributes(dir, "mode") == "directory" then
    for name in lfs.dir(dir) do
      if name ~= "." and name ~= ".." and name ~= "README.md" then list[#list + 1] = dir .. "/" .. name end
    end
  end
  table.sort(list)
  return list
end

local function payload(name)
  return assert(files.read(fixtures.path("snapshot", name))):sub(13)
end

-- A driver's own temp dir (its second return value) is gone after each input.
local function removed(dir)
  assert.is_nil(lfs.attributes(dir), "left behind: " .. dir)
end

local test = fixtures.available() and it or pending

describe("fuzz target snapshot_transcode", function()
  local driver, tmp = dofile(root .. "/fuzz/snapshot_transcode.lua")

  test("golden payloads, a pretty respelling and garbage hold the property", function()
    for _, name in ipairs { "valid_01_tasks.snap", "compat_05_pretty_whitespace.snap",
                            "compat_06_uuid_uppercase.snap" } do
      driver(payload(name))
    end
    driver("")
    driver("{\"version\":")
    removed(tmp)
  end)

  it("every kept input replays cleanly", function()
    for _, p in ipairs(kept("snapshot_transcode")) do driver(assert(files.read(p))) end
  end)

  test("a disagreement raises (and the temp dir is removed)", function()
    local rewrite = require "actionqueue.storage.snapshot.rewrite"
    local real = rewrite.by_tables
    rewrite.by_tables = function(input, output)
      local r, err, side = real(input, output)
      if r then r.tasks = r.tasks + 1 end
      return r, err, side
    end
    local ok, err = pcall(driver, payload("valid_01_tasks.snap"))
    rewrite.by_tables = real
    assert.is_false(ok)
    assert.matches("transcoder says", err)
    removed(tmp)
  end)
end)

describe("fuzz target wal_replay", function()
  local driver, tmp = dofile(root .. "/fuzz/wal_replay.lua")
  local function wal(rel) return assert(files.read(fixtures.path("wal", rel))) end

  test("fixture WALs (golden expectations included) and garbage hold the property", function()
    for _, e in ipairs(fixtures.manifest("wal")) do
      if e.kind == "recovery" and type(e.wal) == "table" then driver(wal(e.wal.file)) end
    end
    driver("")
    driver("\5\0\0\0\1")
    removed(tmp)
  end)

  it("every kept input replays cleanly", function()
    for _, p in ipairs(kept("wal_replay")) do driver(assert(files.read(p))) end
  end)

  test("a disagreement raises", function()
    local reducer = require "actionqueue.storage.recovery.reducer"
    local real = reducer.apply
    reducer.apply = function() return nil, { message = "planted" } end
    local data = wal("events/all_events.wal")
    local ok, err = pcall(driver, data)
    reducer.apply = real
    assert.is_false(ok)
    assert.matches("records say", err)
    removed(tmp)
  end)
end)

describe("fuzz target snapshot_rules", function()
  local driver = dofile(root .. "/fuzz/snapshot_rules.lua")

  test("golden payloads, mutated by their own bytes, hold the property", function()
    for _, e in ipairs(fixtures.manifest("snapshot")) do
      if e.kind ~= "frame" then driver(payload(e.file)) end
    end
    driver("not json")
  end)

  it("every kept input replays cleanly", function()
    for _, p in ipairs(kept("snapshot_rules")) do driver(assert(files.read(p))) end
  end)

  test("a disagreement raises", function()
    local load = require "actionqueue.storage.snapshot.load"
    local real = load.verdict
    load.verdict = function() return { tasks = -1, runs = -1 } end
    local ok, err = pcall(driver, payload("valid_01_tasks.snap"))
    load.verdict = real
    assert.is_false(ok)
    assert.matches("verdict counts", err)
  end)
end)
