-- Issue 16: values at any depth print through the schema; lists iterate or fail at once;
-- filters forgive case and name the valid values; failed lookups explain themselves when
-- chained; ids are told apart in every cell; scripts print; diff takes a path.
local inspect = require "actionqueue.storage.inspect"
local json = require "actionqueue.storage.inspect.json"
local S = require "actionqueue.storage.schema.snapshot"
local data = require "support.inspect_data"

local function wrapped() return inspect.wrap(data.snapshot(), { file = "queue.snap" }) end

-- The message of an error value (string or table with __tostring), without a position.
local function error_text(f)
  local ok, e = pcall(f)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

describe("inspect values at any depth", function()
  it("prints nested records, lists and enum values through the schema", function()
    local s = wrapped()
    assert.matches("^SnapshotEngineControl\n  paused: false\n  paused_at: 1767229200 %(2026", tostring(s.engine))
    assert.matches("^SnapshotMetadata\n  schema_version: 8\n", tostring(s.metadata))
    assert.matches("^SnapshotBudget\n  task_id: 3b9e7f10%-2c4d", tostring(s.budgets[1]))
    local attempts = tostring(s.runs[2].attempts)
    assert.matches("^attempts: 2 entries\n  %[1%] SnapshotAttemptHistoryEntry\n    attempt_id: 708192a3", attempts)
    assert.matches("started_at: 1767225666 %(2026%-01%-01T00:01:06Z%)", attempts)
    assert.matches("^SnapshotLeaseMetadata\n  owner: \"worker%-2\"", tostring(s.runs[2].lease))
    assert.matches("^TaskSpecWire\n  id: 3b9e7f10", tostring(s.tasks[2].task_spec))
    assert.matches("^RunPolicyWire: Repeat\n  count: 7", tostring(s.tasks[2].task_spec.run_policy))
    assert.matches("^TaskPayload\n  bytes: \".-\" %(%d+ bytes%) hex ", tostring(s.tasks[1].task_spec.payload))
    assert.not_matches("table: 0x", tostring(s.tasks[1].task_spec.metadata.tags))
  end)

  it("adds no fields: the encoders see exactly the raw tables", function()
    local raw = data.snapshot()
    local before = json.encode_typed(raw, S.root)
    local s = inspect.wrap(raw)
    assert.equal(before, json.encode_typed(s, S.root))
    local snapshot = require "actionqueue.storage.snapshot"
    assert.equal(snapshot.encode(data.snapshot()), snapshot.encode(s))
    local function keys_in_schema(v, T)
      while T.kind == "option" do T = T.of end
      if type(v) ~= "table" then return end
      if T.kind == "record" then
        for k, x in pairs(v) do
          assert.truthy(T.by_name[k], "unexpected key " .. tostring(k) .. " in " .. T.name)
          keys_in_schema(x, T.by_name[k].type)
        end
      elseif T.kind == "list" then
        for k, x in pairs(v) do
          assert.equal("number", type(k))
          keys_in_schema(x, T.of)
        end
      end
    end
    keys_in_schema(s, S.root)
  end)
end)

describe("inspect lists", function()
  it("iterate with for r in list do (the list is not an endless iterator)", function()
    local s = wrapped()
    local seen = {}
    for r in s:runs { state = "Running" } do
      seen[#seen + 1] = r.run_instance.id
      assert.is_true(#seen < 10, "loop did not terminate")
    end
    assert.same({ "1f2e3d4c-5b6a-4978-8877-665544332211" }, seen)
    local n = 0
    for _ in s.runs do n = n + 1; assert.is_true(n < 10) end
    assert.equal(5, n)
    n = 0
    for i, r in ipairs(s:runs { terminal = false }) do n = i; assert.truthy(r.run_instance) end
    assert.equal(3, n)
    assert.equal(3, #s:runs { terminal = false })
  end)

  it("fail at once for lists of scalars in a for-in loop", function()
    local s = wrapped()
    local msg = error_text(function() for _ in s.tasks[1].task_spec.metadata.tags do end end)
    assert.matches("ipairs", msg)
  end)

  it("accept variant names in any case and name the valid ones on a typo", function()
    local s = wrapped()
    assert.equal(1, #s:runs { state = "running" })
    assert.equal(1, #s:runs { state = "RUNNING" })
    assert.equal(1, #s:tasks { policy = "repeat" })
    local msg = error_text(function() return s:runs { state = "Runing" } end)
    assert.matches('unknown run state "Runing" %(did you mean "Running"%?%)', msg)
    assert.matches("Scheduled, Ready, Leased, Running, RetryWait, Suspended, Completed, Failed, Canceled", msg)
    assert.not_matches("\n", msg)
    msg = error_text(function() return s:runs { colour = "red" } end)
    assert.matches('unknown runs filter "colour"', msg)
    assert.matches("state", msg)
    assert.matches("owner", msg)
  end)
end)

describe("inspect failed lookups", function()
  it("explain themselves when chained", function()
    local s = wrapped()
    local r = s:run("zzz")
    assert.matches('no run with id prefix "zzz"', tostring(r))
    local msg = error_text(function() return s:run("zzz"):history() end)
    assert.matches('no run with id prefix "zzz"', msg)
    assert.not_matches("nil value", msg)
    assert.is_false(inspect.found(r))
    assert.is_true(inspect.found(s:run("1f2e")))
  end)
end)

describe("inspect id columns", function()
  it("never show two equal cells for different ids", function()
    local s = wrapped()
    s.tasks[1].task_spec.id = "7a5c0000-0000-4000-8000-000000000001"
    s.tasks[2].task_spec.id = "7a5c0000-0000-4000-8000-000000000002"
    s.runs[1].run_instance.task_id = s.tasks[1].task_spec.id
    s.runs[2].run_instance.task_id = s.tasks[2].task_spec.id
    s.runs[2].attempts[1].attempt_id = "a77e0000-0000-4000-8000-000000000001"
    s.runs[2].attempts[2].attempt_id = "a77e0000-0000-4000-8000-000000000002"
    local function cells(text, col)
      local out = {}
      for line in text:gmatch("[^\n]+") do
        local c = line:match("^(%S+)%s+(%S+)")
        if col == 2 then c = select(2, line:match("^(%S+)%s+(%S+)")) end
        out[#out + 1] = c
      end
      return out
    end
    local runs_text = tostring(s.runs)
    local task_cells = cells(runs_text, 2)
    assert.not_equal(task_cells[3], task_cells[4])   -- header, count line, then rows 1, 2
    local tasks_text = tostring(s.tasks)
    local c = cells(tasks_text, 1)
    assert.not_equal(c[3], c[4])
    local hist = tostring(s.runs[2]:history())
    local a1 = hist:match("attempt (%S+) started")
    local a2 = select(2, hist:match("attempt (%S+) started.-attempt (%S+) started"))
    assert.truthy(a1 and a2)
    assert.not_equal(a1, a2)
  end)

  it("show the time in the current state", function()
    local s = wrapped()
    local text = tostring(s:runs { state = "Running" })
    assert.matches("in state", text)
    -- the Running run changed state at 01:55:00; the snapshot was taken at 02:00:00
    assert.matches("Running%s+2%s+worker%-2%s+1h59m%s+5m", text)
  end)
end)

describe("inspect in scripts", function()
  it("aq.print prints; aq.show returns printable text", function()
    local aq = require "actionqueue.storage"
    local s = wrapped()
    local out = {}
    local saved = _G.print
    _G.print = function(...) out[#out + 1] = table.concat({ ... }, "\t") end
    local ok, err = pcall(aq.print, s.engine)
    _G.print = saved
    assert.is_true(ok, tostring(err))
    assert.matches("^SnapshotEngineControl", out[1])
  end)

  it("s:diff accepts a path", function()
    local snapshot = require "actionqueue.storage.snapshot"
    local file = os.tmpname()
    local other = data.snapshot()
    other.engine.paused = true
    other.engine.resumed_at = nil
    assert(snapshot.write(file, other))
    local s = wrapped()
    local d = s:diff(file)
    os.remove(file)
    assert.matches("engine.paused: false %-> true", tostring(d))
    assert.matches("%+%+%+ " .. file:gsub("%p", "%%%0"), tostring(d))
    local msg = error_text(function() return s:diff("/nonexistent/x.snap") end)
    assert.matches("/nonexistent/x.snap", msg)
    assert.not_matches("encode_typed", msg)
  end)
end)
