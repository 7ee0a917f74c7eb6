-- snapshot.build: friendly tables -> complete, valid snapshots; schema-driven type errors.
local build = require("actionqueue.storage.snapshot.build").build
local validate = require("actionqueue.storage.snapshot.validate").validate
local S = require "actionqueue.storage.schema.snapshot"
local sm = require "actionqueue.storage.statemachine"
local errors = require "actionqueue.storage.errors"

local V4 = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local TID = "7a5c0000-0000-4000-8000-000000000001"

local function deepcopy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = deepcopy(v) end
  return c
end

local function fails(input, message, path)
  local snap, err = build(input)
  assert.is_nil(snap)
  assert.is_true(errors.is(err))
  assert.equal("BuildError", err.kind)
  if message then assert.equal(message, err.message) end
  assert.equal(err.message, tostring(err))
  if path then assert.equal(path, err.path) end
  return err
end

describe("snapshot.build", function()
  it("builds the empty snapshot with every collection and the header filled", function()
    local before = os.time()
    local s = assert(build({}))
    local after = os.time()
    assert.equal(S.FRAME_VERSION, s.version)
    assert.equal(S.SCHEMA_VERSION, s.metadata.schema_version)
    assert.same({ schema_version = 8, wal_sequence = 0, task_count = 0, run_count = 0 }, s.metadata)
    assert.is_true(s.timestamp >= before and s.timestamp <= after)
    assert.same({ paused = false }, s.engine)
    for _, f in ipairs(S.root.fields) do
      if f.type.kind == "list" then assert.same({}, s[f.name], f.name) end
    end
    assert.is_true(validate(s))
    assert.same(s.metadata, assert(build()).metadata)
  end)

  it("takes timestamp and wal_sequence (top level or in metadata)", function()
    local s = assert(build { timestamp = 1700000000, wal_sequence = 42 })
    assert.equal(1700000000, s.timestamp)
    assert.equal(42, s.metadata.wal_sequence)
    s = assert(build { metadata = { wal_sequence = 7 } })
    assert.equal(7, s.metadata.wal_sequence)
  end)

  it("fills task defaults from the schema and generates v4 ids", function()
    local s = assert(build { timestamp = 5, tasks = { {}, {} } })
    assert.equal(2, s.metadata.task_count)
    local t1, t2 = s.tasks[1], s.tasks[2]
    assert.truthy(t1.task_spec.id:match(V4))
    assert.not_equal(t1.task_spec.id, t2.task_spec.id)
    assert.equal(5, t1.created_at)
    assert.same({ bytes = "" }, t1.task_spec.payload)
    assert.equal("Once", t1.task_spec.run_policy)
    assert.same({ max_attempts = 1, concurrency_key_hold_policy = "HoldDuringRetry", safety_level = "Pure" },
      t1.task_spec.constraints)
    assert.same({ tags = {}, priority = 0 }, t1.task_spec.metadata)
    assert.is_nil(t1.updated_at)
    assert.is_nil(t1.canceled_at)
  end)

  it("accepts natural Lua forms", function()
    local s = assert(build { tasks = {
      { id = TID:upper(), payload = "hi", run_policy = { Repeat = { count = 3, interval_secs = 60 } },
        metadata = { tags = { "a" }, priority = -3, description = "d" } },
      { task_spec = { payload = { bytes = { 1, 2, 255 }, content_type = "x/y" } }, canceled_at = 9, created_at = 1 },
    } })
    local a, b = s.tasks[1].task_spec, s.tasks[2].task_spec
    assert.equal(TID, a.id)
    assert.same({ bytes = "hi" }, a.payload)
    assert.same({ Repeat = { count = 3, interval_secs = 60 } }, a.run_policy)
    assert.same({ tags = { "a" }, priority = -3, description = "d" }, a.metadata)
    assert.same({ bytes = "\1\2\255", content_type = "x/y" }, b.payload)
    assert.equal(9, s.tasks[2].canceled_at)
  end)

  it("makes every default from a timestamp above 2^63-1 (given as a decimal string)", function()
    local s = assert(build({ timestamp = "18446744073709551615", tasks = { {} },
      runs = { { task = 1, state_history = {} }, { task = 1, state = "Running", current_attempt_id = TID } } },
      { validate = false }))
    -- 2^64-1 is held as the same bit pattern (-1)
    assert.equal(-1, s.timestamp)
    assert.equal(-1, s.tasks[1].created_at)
    assert.equal(-1, s.runs[1].run_instance.last_state_change_at)
    assert.equal(-1, s.runs[2].attempts[1].started_at)
    assert.equal(-1, s.runs[2].state_history[4].timestamp)
  end)

  it("accepts u64 above 2^63-1 as decimal strings", function()
    local s = assert(build { wal_sequence = "18446744073709551615", timestamp = "9223372036854775808" })
    assert.equal(-1, s.metadata.wal_sequence)
    assert.equal(math.mininteger, s.timestamp)
    fails({ wal_sequence = "18446744073709551616" }, 'metadata.wal_sequence: expected u64, got "18446744073709551616"')
  end)

  describe("runs", function()
    it("default to a valid Scheduled run of the named task", function()
      local s = assert(build { timestamp = 100, tasks = { { metadata = { priority = 4 } } }, runs = { { task = 1 } } })
      local r = s.runs[1]
      assert.equal(1, s.metadata.run_count)
      assert.truthy(r.run_instance.id:match(V4))
      assert.equal(s.tasks[1].task_spec.id, r.run_instance.task_id)
      assert.equal("Scheduled", r.run_instance.state)
      assert.equal(100, r.run_instance.created_at)
      assert.equal(100, r.run_instance.scheduled_at)
      assert.equal(4, r.run_instance.effective_priority)
      assert.equal(0, r.run_instance.attempt_count)
      assert.same({ { to = "Scheduled", timestamp = 100 } }, r.state_history)
      assert.same({}, r.attempts)
      assert.is_nil(r.lease)
    end)

    it("produce a valid history for every state", function()
      for _, state in ipairs(sm.states) do
        local s, err = build { timestamp = 50, tasks = { { id = TID } },
                               runs = { { task_id = TID, state = state, created_at = 10 } } }
        assert.is_nil(err, state)
        local h = s.runs[1].state_history
        assert.equal(state, h[#h].to)
        assert.equal(10, s.runs[1].run_instance.last_state_change_at)
        assert.is_true(validate(s))
      end
    end)

    it("create the open attempt of a Running run", function()
      local s = assert(build { tasks = { { id = TID } },
        runs = { { task = TID, state = "Running", current_attempt_id = "A77E0000-0000-4000-8000-000000000001",
                   lease = { owner = "w", expiry = 9, acquired_at = 1, updated_at = 1 } } } })
      local r = s.runs[1]
      assert.equal(1, r.run_instance.attempt_count)
      assert.equal("a77e0000-0000-4000-8000-000000000001", r.attempts[1].attempt_id)
      assert.is_nil(r.attempts[1].finished_at)
      assert.equal("w", r.lease.owner)
    end)

    it("keep a given history and attempts", function()
      local s = assert(build { timestamp = 10, tasks = { { id = TID } }, runs = { {
        task_id = TID, state = "Completed", created_at = 3,
        state_history = { { to = "Scheduled", timestamp = 3 }, { from = "Scheduled", to = "Ready", timestamp = 4 },
                          { from = "Ready", to = "Leased", timestamp = 5 }, { from = "Leased", to = "Running" },
                          { from = "Running", to = "Completed", timestamp = 8 } },
        attempts = { { started_at = 6, finished_at = 8, result = "Success", output = "ok" } },
      } } })
      local r = s.runs[1]
      assert.equal(10, r.state_history[4].timestamp) -- missing timestamp: the snapshot's
      assert.equal(8, r.run_instance.last_state_change_at)
      assert.equal(1, r.run_instance.attempt_count)
      assert.equal("ok", r.attempts[1].output)
    end)
  end)

  it("fills the other collections", function()
    local s = assert(build { timestamp = 7, tasks = { { id = TID } },
      dependency_declarations = { { task = 1, depends_on = { TID } } },
      budgets = { { task = 1, dimension = "CostCents", limit = 10 } },
      subscriptions = { { task_id = TID, filter = { Custom = { key = "k" } } } },
      actors = { { identity = "w", heartbeat_interval_secs = 30 } },
      tenants = { { name = "acme" } },
      role_assignments = { { actor_id = TID, role = { Custom = "r" }, tenant_id = TID } },
      capability_grants = { { actor_id = TID, capability = "CanSubmit", tenant_id = TID } },
      ledger_entries = { { tenant_id = TID, ledger_key = "k", payload = "\0\1" } },
    })
    assert.same({ task_id = TID, depends_on = { TID }, declared_at = 7 }, s.dependency_declarations[1])
    assert.same({ task_id = TID, dimension = "CostCents", limit = 10, consumed = 0, allocated_at = 7,
                  exhausted = false }, s.budgets[1])
    assert.truthy(s.subscriptions[1].subscription_id:match(V4))
    assert.equal(7, s.subscriptions[1].created_at)
    assert.truthy(s.actors[1].actor_id:match(V4))
    assert.same({}, s.actors[1].capabilities)
    assert.truthy(s.tenants[1].tenant_id:match(V4))
    assert.equal(7, s.role_assignments[1].assigned_at)
    assert.equal(7, s.capability_grants[1].granted_at)
    assert.equal("\0\1", s.ledger_entries[1].payload)
    assert.truthy(s.ledger_entries[1].entry_id:match(V4))
  end)

  it("does not modify its input", function()
    local input = { tasks = { { payload = "x" } }, runs = { { task = 1, state = "Ready" } } }
    local before = deepcopy(input)
    assert(build(input))
    assert.same(before, input)
  end)

  describe("errors name the path", function()
    it("wrong scalar types and ranges", function()
      fails({ tasks = { {}, { constraints = { max_attempts = -1 } } } },
        "tasks[2].task_spec.constraints.max_attempts: expected u32, got -1",
        "tasks[2].task_spec.constraints.max_attempts")
      fails({ tasks = { { metadata = { priority = 2147483648 } } } },
        "tasks[1].task_spec.metadata.priority: expected i32, got 2147483648")
      fails({ tasks = { { metadata = { priority = 1.5 } } } },
        "tasks[1].task_spec.metadata.priority: expected i32, got 1.5")
      fails({ timestamp = -1 }, "timestamp: expected u64, got -1")
      fails({ engine = { paused = "yes" } }, 'engine.paused: expected bool, got "yes"')
      fails({ tasks = { { metadata = { tags = { "a", 5 } } } } },
        "tasks[1].task_spec.metadata.tags[2]: expected string, got 5")
      fails({ tasks = { { payload = { bytes = { 1, 256 } } } } },
        "tasks[1].task_spec.payload.bytes[2]: expected u8, got 256")
      fails({ tasks = { { id = TID } }, subscriptions = { { task_id = TID,
        filter = { BudgetThreshold = { task_id = TID, dimension = "Token", threshold_pct = 256 } } } } },
        "subscriptions[1].filter.BudgetThreshold.threshold_pct: expected u8, got 256")
    end)
    it("records, lists and ids", function()
      fails({ tasks = "x" }, 'tasks: expected a list, got "x"')
      fails({ tasks = { [1] = {}, [3] = {} } }, "tasks: expected a list, got a table with key 3")
      fails({ metadata = 5 }, "metadata: expected SnapshotMetadata, got 5")
      fails({ tasks = { { id = "nope" } } }, "tasks[1].task_spec.id: UUID parsing failed: invalid character: "
        .. "expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `n` at 1")
      fails({ tasks = { { id = 5 } } }, "tasks[1].task_spec.id: expected TaskId (a UUID string), got 5")
    end)
    it("unknown fields at any depth", function()
      fails({ bogus = 1 }, "bogus: unknown field", "bogus")
      fails({ tasks = { { colour = "red" } } }, "tasks[1].colour: unknown field")
      fails({ tasks = { { constraints = { retries = 3 } } } }, "tasks[1].task_spec.constraints.retries: unknown field")
      fails({ engine = { paused = false, why = 1 } }, "engine.why: unknown field")
    end)
    it("missing required fields", function()
      fails({ actors = { { identity = "w" } } }, "actors[1].heartbeat_interval_secs: missing field")
      fails({ tenants = { {} } }, "tenants[1].name: missing field")
    end)
    it("enums", function()
      fails({ tasks = { { run_policy = "Twice" } } },
        "tasks[1].task_spec.run_policy: unknown variant `Twice`, expected `Once` or `Repeat`")
      fails({ tasks = { { run_policy = { Cron = { expression = "* * * * *" } } } } },
        "tasks[1].task_spec.run_policy: unknown variant `Cron`, expected `Once` or `Repeat`")
      fails({ runs = { { task_id = TID, state = "scheduled" } } },
        "runs[1].run_instance.state: unknown variant `scheduled`, "
        .. "expected one of `Scheduled`, `Ready`, `Leased`, `Running`, `RetryWait`, `Suspended`, `Completed`, "
        .. "`Failed`, `Canceled`")
      fails({ tasks = { { run_policy = { Repeat = { count = 1 } } } } },
        "tasks[1].task_spec.run_policy.Repeat.interval_secs: missing field")
    end)
    it("decode-time checks of the schema", function()
      fails({ tasks = { { constraints = { max_attempts = 0 } } } },
        "tasks[1].task_spec.constraints: invalid max_attempts value: 0 (must be >= 1)")
      fails({ tasks = { { constraints = { concurrency_key = "" } } } },
        "tasks[1].task_spec.constraints: concurrency key must not be an empty string")
      fails({ tasks = { { run_policy = { Repeat = { count = 0, interval_secs = 1 } } } } },
        "tasks[1].task_spec.run_policy: invalid repeat count: 0 (must be >= 1)")
      fails({ tasks = { { id = "00000000-0000-0000-0000-000000000000" } } },
        "tasks[1].task_spec: invalid task identifier for task admission: 00000000-0000-0000-0000-000000000000")
      fails({ tasks = { { id = TID } }, runs = { { task_id = TID, state = "Scheduled", current_attempt_id = TID } } },
        "runs[1].run_instance: active attempt_id is only valid in Running state")
    end)
    it("validation rules of the result", function()
      local err = fails({ tasks = { { id = TID } }, runs = { { task_id = "7a5c0000-0000-4000-8000-000000000063" } } },
        nil)
      assert.equal("RunReferencesUnknownTask", err.rule)
      assert.equal("runs[1].run_instance.task_id", err.path)
      assert.truthy(err.message:find("references unknown task 7a5c0000-0000-4000-8000-000000000063", 1, true))
    end)
    it("validation can be skipped", function()
      local s = assert(build({ engine = { paused = true } }, { validate = false }))
      local ok, v = validate(s)
      assert.is_nil(ok)
      assert.equal("InvalidEnginePausedCausality", v.kind)
    end)
  end)
end)

describe("build -> write -> load", function()
  local ok, snapshot = pcall(require, "actionqueue.storage.snapshot")
  if not (ok and type(snapshot) == "table" and snapshot.write and snapshot.load) then
    pending("needs snapshot.write/snapshot.load (snapshot codec)")
    return
  end
  it("round-trips a built snapshot", function()
    local s = assert(build { timestamp = 1700000000, wal_sequence = "18446744073709551615",
      tasks = { { payload = "hi", run_policy = { Repeat = { count = 2, interval_secs = 9 } } } },
      runs = { { task = 1, state = "Running", current_attempt_id = "a77e0000-0000-4000-8000-000000000001" } },
      budgets = { { task = 1, dimension = "TimeSecs", limit = 5 } } })
    local path = os.tmpname()
    assert(snapshot.write(path, s))
    local back = assert(snapshot.load(path))
    os.remove(path)
    assert.same(s, back)
  end)
end)

describe("snapshot.build reads its defaults from the schema (issue 17 item 2)", function()
  local T = require "actionqueue.storage.schema.types"
  -- the code of build.lua without its comments (which describe the defaults)
  local src = assert(io.open(debug.getinfo(build, "S").source:sub(2))):read("a"):gsub("%-%-[^\n]*", "")

  it("keeps no hand-written list of own ids or friendly defaults", function()
    assert.is_nil(src:find("OWN_ID", 1, true))
    assert.is_nil(src:find('"max_attempts"', 1, true))
    assert.is_nil(src:find('"priority"', 1, true))
    assert.is_nil(src:find('"Once"', 1, true))
  end)

  it("marks exactly one own id per identity record", function()
    local own = {}
    for _, rec in ipairs { T.TaskSpec, T.RunInstance, S.AttemptHistoryEntry, S.Subscription, S.Actor, S.Tenant,
                           S.LedgerEntry } do
      local n = 0
      for _, f in ipairs(rec.fields) do
        if f.own_id then n = n + 1; own[#own + 1] = rec.name .. "." .. f.name end
      end
      assert.equal(1, n, rec.name)
    end
    assert.same({ "TaskSpecWire.id", "RunInstanceWire.id", "SnapshotAttemptHistoryEntry.attempt_id",
                  "SnapshotSubscription.subscription_id", "SnapshotActor.actor_id", "SnapshotTenant.tenant_id",
                  "SnapshotLedgerEntry.entry_id" }, own)
  end)

  it("fills the build_default attributes", function()
    local s = assert(build { tasks = { {} }, runs = { { task = 1 } },
      budgets = { { task = 1, dimension = "Token", limit = 1 } } })
    local spec = s.tasks[1].task_spec
    assert.equal(T.TaskConstraints.by_name.max_attempts.build_default, spec.constraints.max_attempts)
    assert.equal(T.TaskMetadata.by_name.priority.build_default, spec.metadata.priority)
    assert.equal(T.TaskSpec.by_name.run_policy.build_default, spec.run_policy)
    assert.equal(T.TaskPayload.by_name.bytes.build_default, spec.payload.bytes)
    assert.equal(S.Budget.by_name.consumed.build_default, s.budgets[1].consumed)
    local ledger = assert(build { ledger_entries = { { tenant_id = TID, ledger_key = "k", payload = "" } } })
    assert.truthy(ledger.ledger_entries[1].entry_id:match(V4))
  end)

  it("keeps the codecs blind to the build attributes (same bytes as before)", function()
    local core = require "actionqueue.storage.core"
    local s = assert(build { timestamp = 5, tasks = { { id = TID } } })
    local json = core.json_encode(s, S.root)
    assert.same(s, core.json_decode(json, S.root))
  end)
end)

describe("snapshot.build on values of the wrong kind", function()
  it("returns a BuildError where it used to raise (a record given as a number or string)", function()
    fails({ tasks = { 5 } }, "tasks[1]: expected SnapshotTask, got 5")
    fails({ runs = { "x" } }, 'runs[1]: expected SnapshotRun, got "x"')
    fails({ runs = { { run_instance = true } } }, "runs[1].run_instance: expected RunInstanceWire, got true")
    fails({ budgets = { 1 } }, "budgets[1]: expected SnapshotBudget, got 1")
  end)
end)

describe("snapshot.build and the collector", function()
  it("restores the collector's pause on every path", function()
    local mine = 176 -- Lua keeps the pause in steps of 4
    local before = collectgarbage("setpause", mine)
    assert(build { tasks = { {} } })
    assert.is_nil((build { tasks = { { constraints = { max_attempts = -1 } } } }))
    assert.is_nil((build { tasks = { { id = "7a5c0000-0000-4000-8000-000000000001" } },
      runs = { { task_id = "7a5c0000-0000-4000-8000-000000000002" } } })) -- a validation rule
    assert.equal(mine, collectgarbage("setpause", before))
    assert.is_true(collectgarbage("isrunning"))
  end)

  it("leaves a collector the caller stopped stopped", function()
    collectgarbage("stop")
    local ok, err = pcall(function()
      assert(build { tasks = { {} } })
      assert.is_nil((build { tasks = { { constraints = { max_attempts = -1 } } } }))
      assert.is_false(collectgarbage("isrunning"))
    end)
    collectgarbage("restart")
    assert(ok, err)
  end)
end)

describe("snapshot.build on flat runs (the RunInstance fields on the run)", function()
  it("reports the run's errors in the same order as nested runs", function()
    fails({ tasks = { {} }, runs = { { task = 3, bogus = 1 } } }, "runs[1].run_instance.task: no task at index 3")
    fails({ tasks = { {} }, runs = { { task = 1, bogus = 1, zz = 2 } } }, "runs[1].bogus: unknown field")
    fails({ tasks = { {} }, runs = { { task = 1, state = "Ready", attempt_count = -1 } } },
      "runs[1].run_instance.attempt_count: expected u32, got -1")
    fails({ tasks = { {} }, runs = { { task = 1, state_history = 5 } } },
      "runs[1].state_history: expected a list, got 5")
  end)

  it("and nested runs report theirs at the same paths", function()
    fails({ tasks = { {} }, runs = { { run_instance = { task = 3, colour = 1 } } } },
      "runs[1].run_instance.task: no task at index 3")
    fails({ tasks = { {} }, runs = { { run_instance = { task = 1, colour = 1 }, zz = 1 } } },
      "runs[1].zz: unknown field")
    fails({ tasks = { {} }, runs = { { run_instance = { task = 1, colour = 1 } } } },
      "runs[1].run_instance.colour: unknown field")
    fails({ tasks = { {} }, runs = { { run_instance = { task = 1, state = "Running", current_attempt_id = 7 } } } },
      "runs[1].run_instance.current_attempt_id: expected AttemptId (a UUID string), got 7")
    local s = assert(build { tasks = { {} }, runs = { { run_instance = { task = 1, state = "Ready" } } } })
    assert.equal(s.tasks[1].task_spec.id, s.runs[1].run_instance.task_id)
    assert.equal(2, #s.runs[1].state_history)
  end)

  it("makes fresh tables for every run (none shared with the input or another run)", function()
    local input = { tasks = { {} }, runs = { { task = 1 }, { task = 1, state = "Ready" } } }
    local s = assert(build(input))
    assert.are_not.equal(s.runs[1], s.runs[2])
    assert.are_not.equal(s.runs[1].run_instance, s.runs[2].run_instance)
    assert.are_not.equal(s.runs[1].attempts, s.runs[2].attempts)
    assert.is_nil(rawget(s.runs[1].run_instance, "task"))
    assert.same({ "Scheduled", "Ready" }, { s.runs[2].state_history[1].to, s.runs[2].state_history[2].to })
    assert.same({ task = 1 }, input.runs[1])
  end)
end)
