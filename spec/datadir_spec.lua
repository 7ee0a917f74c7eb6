-- Creating the data dir layout when asked (issue 14 item 3): `datadir.init(dir)` makes
-- `dir/snapshots` and `dir/wal` so that the writers, which never create directories, work
-- in an empty directory; a failure names the directory.
local datadir = require "actionqueue.storage.datadir"
local files = require "support.files"
local lfs = require "lfs"

describe("datadir", function()
  local tmp
  before_each(function() tmp = files.tmpdir() end)
  after_each(function() files.rmtree(tmp) end)

  it("paths names the engine's two files", function()
    assert.same({ dir = "data", snapshot = "data/snapshots/snapshot.bin", wal = "data/wal/actionqueue.wal" },
      datadir.paths("data"))
    assert.equal("/srv/aq/wal/actionqueue.wal", datadir.paths("/srv/aq/").wal)
  end)

  it("init creates the layout (and missing parents), then the writers work", function()
    local storage = require "actionqueue.storage"
    local p = assert(datadir.init(tmp .. "/a/data"))
    assert.equal("directory", lfs.attributes(tmp .. "/a/data/snapshots", "mode"))
    assert.equal("directory", lfs.attributes(tmp .. "/a/data/wal", "mode"))
    local snap = assert(storage.snapshot.build { timestamp = 1767225600, tasks = { { payload = "x" } } })
    assert(storage.snapshot.write(p.snapshot, snap))
    local w = assert(storage.wal.open_appender(p.wal, { sync = "none" }))
    w:close()
    assert.equal(storage.datadir, datadir)
  end)

  it("init is idempotent and leaves existing files alone", function()
    assert(datadir.init(tmp))
    files.write(tmp .. "/snapshots/snapshot.bin", "keep")
    assert(datadir.init(tmp))
    assert.equal("keep", files.read(tmp .. "/snapshots/snapshot.bin"))
  end)

  it("a failure names the directory it could not create", function()
    files.write(tmp .. "/file", "")
    local p, err = datadir.init(tmp .. "/file/data")
    assert.is_nil(p)
    assert.equal("IoError", err.kind)
    assert.matches(tmp .. "/file/data/snapshots", err.message, 1, true)
    assert.equal(tmp .. "/file/data/snapshots", err.path)
  end)
end)

describe("writers and a missing directory", function()
  local run = require "support.aqstore_run"
  local tmp
  before_each(function() tmp = files.tmpdir() end)
  after_each(function() files.rmtree(tmp) end)

  it("aqstore build names the missing output directory", function()
    files.copy(require("support.fixtures").repo .. "/examples/queue.lua", tmp .. "/queue.lua")
    local r = run.cli({ "build", "queue.lua", "nodir/queue.snap" }, { cwd = tmp })
    assert.equal(1, r.code)
    assert.matches("the output directory nodir does not exist", r.err, 1, true)
    local j = run.cli({ "build", "--json", "queue.lua", "nodir/queue.snap" }, { cwd = tmp })
    assert.matches('"hint": "the output directory nodir does not exist"', j.out, 1, true)
  end)

  it("snapshot.write's error names the missing directory (err.hint)", function()
    local storage = require "actionqueue.storage"
    local snap = assert(storage.snapshot.build { timestamp = 1 })
    local ok, err = storage.snapshot.write(tmp .. "/nodir/snapshot.bin", snap)
    assert.is_nil(ok)
    assert.matches(tmp .. "/nodir", err.hint, 1, true)
  end)
end)

describe("wal.open_appender and a missing directory", function()
  it("keeps the engine's text and names the missing directory (err.hint)", function()
    local storage = require "actionqueue.storage"
    local tmp = files.tmpdir()
    local w, err = storage.wal.open_appender(tmp .. "/data/wal/actionqueue.wal")
    files.rmtree(tmp)
    assert.is_nil(w)
    assert.equal("I/O error when opening or bootstrapping WAL file: No such file or directory (os error 2)",
      err.message)
    assert.matches("the WAL directory " .. tmp .. "/data/wal does not exist", err.hint, 1, true)
  end)
end)
