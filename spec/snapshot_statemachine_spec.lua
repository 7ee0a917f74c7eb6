-- The run state machine (snapshot-format.md §5).
local sm = require "actionqueue.storage.statemachine"
local T = require "actionqueue.storage.schema.types"

describe("statemachine", function()
  it("knows every RunState of the schema, in wire order", function()
    assert.equal(#T.RunState.variants, #sm.states)
    for i, v in ipairs(T.RunState.variants) do
      assert.equal(v.name, sm.states[i])
      assert.equal(i - 1, sm.index[v.name])
    end
  end)

  it("has exactly the 17 valid pairs of the table", function()
    local expected = {
      "Scheduled>Ready", "Scheduled>Canceled", "Ready>Leased", "Ready>Canceled",
      "Leased>Running", "Leased>Ready", "Leased>Canceled",
      "Running>RetryWait", "Running>Suspended", "Running>Completed", "Running>Failed", "Running>Canceled",
      "RetryWait>Ready", "RetryWait>Failed", "RetryWait>Canceled", "Suspended>Ready", "Suspended>Canceled",
    }
    local want = {}
    for _, p in ipairs(expected) do want[p] = true end
    local n = 0
    for _, from in ipairs(sm.states) do
      for _, to in ipairs(sm.states) do
        local key = from .. ">" .. to
        assert.equal(want[key] == true, sm.can_transition(from, to), key)
        if sm.can_transition(from, to) then n = n + 1 end
      end
    end
    assert.equal(17, n)
    assert.is_false(sm.can_transition(nil, "Ready"))
    assert.is_false(sm.can_transition("Nope", "Ready"))
  end)

  it("terminal states have no way out", function()
    for _, s in ipairs(sm.states) do
      local terminal = s == "Completed" or s == "Failed" or s == "Canceled"
      assert.equal(terminal, sm.is_terminal(s), s)
      if terminal then assert.same({}, sm.targets(s)) end
    end
  end)

  it("lease and active-attempt states", function()
    local lease = {}
    for _, s in ipairs(sm.states) do if sm.may_hold_lease(s) then lease[#lease + 1] = s end end
    assert.same({ "Ready", "Leased", "Running" }, lease)
    assert.is_true(sm.may_have_active_attempt("Running"))
    assert.is_false(sm.may_have_active_attempt("Canceled"))
  end)

  it("finds shortest valid paths", function()
    assert.same({ "Scheduled" }, sm.path("Scheduled", "Scheduled"))
    assert.same({ "Scheduled", "Ready", "Leased", "Running" }, sm.path("Scheduled", "Running"))
    assert.same({ "Scheduled", "Canceled" }, sm.path("Scheduled", "Canceled"))
    assert.same({ "Scheduled", "Ready", "Leased", "Running", "Failed" }, sm.path("Scheduled", "Failed"))
    assert.is_nil(sm.path("Completed", "Ready"))
    for _, s in ipairs(sm.states) do
      local p = assert(sm.path("Scheduled", s))
      for i = 2, #p do assert.is_true(sm.can_transition(p[i - 1], p[i])) end
    end
  end)
end)
