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
