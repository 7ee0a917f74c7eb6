local path = require "actionqueue.storage.inspect.path"
local S = require "actionqueue.storage.schema.snapshot"
local data = require "support.inspect_data"

describe("inspect.path", function()
  local snap
  before_each(function() snap = data.snapshot() end)

  it("parses dotted fields and 1-based indexes", function()
    assert.same({ { field = "runs" }, { index = 3 }, { field = "attempts" } }, path.parse("runs[3].attempts"))
    assert.same({}, path.parse("."))
    assert.equal("runs[3].attempts", path.format(path.parse("runs[3].attempts")))
  end)

  it("rejects malformed paths with the position", function()
    for _, bad in ipairs { "runs[x]", "runs.", "runs..a", "[", "runs[1]x", "9runs" } do
      local steps, err = path.parse(bad)
      assert.is_nil(steps, bad)
      assert.matches("bad path", err)
    end
  end)

  it("resolves parts with their schema types", function()
    local v, T = path.resolve(snap, "runs[2].attempts")
    assert.equal(snap.runs[2].attempts, v)
    assert.equal("list", T.kind)
    assert.equal(S.AttemptHistoryEntry, T.of)
    v, T = path.resolve(snap, "engine")
    assert.equal(snap.engine, v)
    assert.equal(S.EngineControl, T)
    v, T = path.resolve(snap, "tasks[2].task_spec.run_policy.Repeat.count")
    assert.equal(7, v)
    assert.equal("u32", T.kind)
    v, T = path.resolve(snap, ".")
    assert.equal(snap, v)
    assert.equal(S.root, T)
  end)

  it("resolves an absent optional part to nil with its type", function()
    local v, T = path.resolve(snap, "runs[1].lease")
    assert.is_nil(v)
    assert.equal("option", T.kind)
  end)

  it("explains unknown fields, bad indexes and wrong variants", function()
    local v, err = path.resolve(snap, "runs[1].bogus")
    assert.is_nil(v)
    assert.matches('runs%[1%] %(SnapshotRun%) has no field "bogus"; fields: run_instance, state_history', err)
    v, err = path.resolve(snap, "runs[99]")
    assert.is_nil(v)
    assert.equal("runs has 5 entries: [99] is out of range", err)
    v, err = path.resolve(snap, "engine[1]")
    assert.matches("not a list", err)
    assert.is_nil(v)
    v, err = path.resolve(snap, "tasks[1].task_spec.run_policy.Repeat")
    assert.equal("tasks[1].task_spec.run_policy is Once, not Repeat", err)
    assert.is_nil(v)
    v, err = path.resolve(snap, "runs[1].lease.owner")
    assert.is_nil(v)
    assert.equal("runs[1].lease is absent (null)", err)
  end)

  it("finds every record type of the schema and guesses types from keys", function()
    local names = {}
    for _, r in ipairs(path.records()) do names[r.name] = true end
    assert.is_true(names.SnapshotLedgerEntry)
    assert.is_true(names.TaskConstraintsWire)
    assert.equal(S.EngineControl, path.guess(snap.engine))
    assert.equal(S.Run, path.guess(snap.runs[1]))
    assert.equal(S.Budget, path.guess(snap.budgets).of)
    assert.is_nil(path.guess({ nonsense = 1 }))
  end)
end)
