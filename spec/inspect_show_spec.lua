local show = require "actionqueue.storage.inspect.show"
local fmt = require "actionqueue.storage.inspect.fmt"
local S = require "actionqueue.storage.schema.snapshot"
local data = require "support.inspect_data"

describe("inspect.show", function()
  local snap
  before_each(function() snap = data.snapshot() end)

  it("prints every field of a record in schema order", function()
    local text = show.render(snap.runs[2], S.Run)
    local last = 0
    for _, f in ipairs(S.Run.fields) do
      local at = text:find("\n  " .. f.name .. ":", 1, true)
      assert.truthy(at, f.name)
      assert.is_true(at > last, f.name .. " in order")
      last = at
    end
    assert.matches("^SnapshotRun\n", text)
  end)

  it("annotates timestamps with ISO dates and prints u64 unsigned", function()
    local text = show.render(snap.engine, S.EngineControl)
    assert.matches("paused_at: 1767229200 %(2026%-01%-01T01:00:00Z%)", text)
    snap.metadata.wal_sequence = -1
    text = show.render(snap.metadata, S.Metadata)
    assert.matches("wal_sequence: 18446744073709551615\n", text)
    assert.not_matches("%(", text:match("wal_sequence[^\n]*"))
  end)

  it("shows bytes as a text preview plus hex", function()
    local text = show.render(snap.tasks[3].task_spec.payload, S.Task.by_name.task_spec.type.by_name.payload.type)
    assert.matches('bytes: "%.PNG%.%.%.%.%.%.%.%.IHDR" %(16 bytes%) hex 89504e470d0a1a0a0000000d49484452', text)
    assert.equal("(0 bytes)", fmt.bytes(""))
    assert.matches("%(100 bytes%) hex 6161", fmt.bytes(string.rep("a", 100)))
    assert.matches("%.%.%.$", fmt.bytes(string.rep("a", 100)))
  end)

  it("prints enums, nulls and inline scalar lists", function()
    local text = show.render(snap.tasks[2], S.Task)
    assert.matches("run_policy: Repeat\n%s+count: 7\n%s+interval_secs: 86400", text)
    assert.matches("canceled_at: null", text)
    assert.matches('required_capabilities: %["reports"%]', text)
    text = show.render(snap.role_assignments[1], S.RoleAssignment)
    assert.matches("role: Operator", text)
    local custom = data.copy(snap.role_assignments[1])
    custom.role = { Custom = "night-shift" }
    assert.matches('role: Custom%("night%-shift"%)', show.render(custom, S.RoleAssignment))
  end)

  it("truncates long lists with a count", function()
    local runs = {}
    for i = 1, 30 do runs[i] = snap.runs[1 + (i % 5)] end
    local text = show.render(runs, S.root.by_name.runs.type, { max = 4 })
    assert.matches("^30 entries", text)
    assert.matches("%[4%] SnapshotRun", text)
    assert.not_matches("%[5%] SnapshotRun", text)
    assert.matches("%.%.%. 26 more %(of 30%)", text)
  end)

  it("guesses the type of a raw part", function()
    assert.matches("^SnapshotLeaseMetadata", show.render(snap.runs[2].lease))
    assert.equal("42", show.render(42))
  end)
end)
