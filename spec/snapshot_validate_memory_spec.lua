-- snapshot.validate(t) judges the table's canonical encoding in a C buffer that the rules
-- read directly: no Lua string of the whole encoding is made beside the table (building
-- 100k tasks + runs peaked at 473 MiB with it, 383 MiB without).
local snapshot = require "actionqueue.storage.snapshot"
local fixtures = require "spec.support.fixtures"

describe("snapshot.validate memory", function()
  it("makes no Lua string of the table's encoding", function()
    local path = fixtures.path("snapshot", "valid_12_medium_1000.snap")
    local f = io.open(path, "rb")
    if not f then pending("shared fixtures not found") return end
    local size = f:seek("end")
    f:close()
    local snap = assert(snapshot.load(path))
    collectgarbage("collect")
    collectgarbage("stop")
    local before = collectgarbage("count")
    local ok, v = snapshot.validate(snap)
    local all = snapshot.validate(snap, { all = true })
    local grown = collectgarbage("count") - before
    collectgarbage("restart")
    assert.is_true(ok, v and v.message)
    assert.same({}, all)
    -- the encoding is about the file's size (1 MB); two validations made two of them
    assert.is_true(grown < size / 1024 / 8, ("the Lua heap grew by %.0f KiB (file %.0f KiB)")
      :format(grown, size / 1024))
  end)

  it("still names the encoder's path for a table it refuses", function()
    local snap = assert(snapshot.load(fixtures.path("snapshot", "valid_12_medium_1000.snap")))
    snap.tasks[3].task_spec.id = nil
    local ok, v = snapshot.validate(snap)
    assert.is_nil(ok)
    assert.equal("EncodeError", v.kind)
    assert.equal("tasks[3].task_spec.id", v.path)
  end)
end)
