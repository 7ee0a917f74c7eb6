-- Semantic validation (snapshot-format.md §6): every rule, its text and path, the
-- reference's order, the all-violations mode, and the golden mapping fixtures.
local validate = require("actionqueue.storage.snapshot.validate").validate
local S = require "actionqueue.storage.schema.snapshot"
local fixtures = require "support.fixtures"

local T1 = "7a5c0000-0000-4000-8000-000000000001"
local T2 = "7a5c0000-0000-4000-8000-000000000002"
local TX = "7a5c0000-0000-4000-8000-000000000063"
local R1 = "12a00000-0000-4000-8000-000000000001"
local R2 = "12a00000-0000-4000-8000-000000000002"
local A1 = "a77e0000-0000-4000-8000-000000000001"
local A2 = "a77e0000-0000-4000-8000-000000000002"
local SUB1 = "5b5c0000-0000-4000-8000-000000000001"
local NIL = "00000000-0000-0000-0000-000000000000"

local function task(tid, created)
  return {
    task_spec = {
      id = tid, payload = { bytes = "" }, run_policy = "Once",
      constraints = { max_attempts = 1, concurrency_key_hold_policy = "HoldDuringRetry", safety_level = "Pure" },
      metadata = { tags = {}, priority = 0 },
    },
    created_at = created or 100,
  }
end

local function hist(from, to, ts) return { from = from, to = to, timestamp = ts } end

-- A valid snapshot exercising every collection; each test breaks one thing.
local function base()
  return {
    version = 4, timestamp = 1000,
    metadata = { schema_version = 8, wal_sequence = 5, task_count = 2, run_count = 2 },
    tasks = { task(T1, 100), task(T2, 101) },
    runs = {
      { run_instance = { id = R1, task_id = T1, state = "Running", current_attempt_id = A1,
                         attempt_count = 1, created_at = 100, scheduled_at = 100,
                         effective_priority = 0, last_state_change_at = 103 },
        state_history = { hist(nil, "Scheduled", 100), hist("Scheduled", "Ready", 101),
                          hist("Ready", "Leased", 102), hist("Leased", "Running", 103) },
        attempts = { { attempt_id = A1, started_at = 103 } },
        lease = { owner = "w", expiry = 200, acquired_at = 102, updated_at = 103 } },
      { run_instance = { id = R2, task_id = T2, state = "Scheduled", attempt_count = 0,
                         created_at = 101, scheduled_at = 500, effective_priority = 0,
                         last_state_change_at = 101 },
        state_history = { hist(nil, "Scheduled", 101) }, attempts = {} },
    },
    engine = { paused = false, paused_at = 10, resumed_at = 20 },
    dependency_declarations = { { task_id = T2, depends_on = { T1 }, declared_at = 1000 } },
    budgets = { { task_id = T1, dimension = "Token", limit = 10, consumed = 0, allocated_at = 1, exhausted = false } },
    subscriptions = { { subscription_id = SUB1, task_id = T2, filter = { TaskCompleted = { task_id = T1 } },
                        created_at = 1 } },
    actors = {}, tenants = {}, role_assignments = {}, capability_grants = {}, ledger_entries = {},
  }
end

local function first(snap)
  local ok, v = validate(snap)
  assert.is_nil(ok, "expected a violation")
  return v
end

local function expect(snap, kind, path, message)
  local v = first(snap)
  assert.same({ kind = kind, path = path, message = message }, v)
end

describe("snapshot.validate", function()
  it("accepts a valid snapshot", function()
    assert.is_true(validate(base()))
    assert.same({}, validate(base(), { all = true }))
  end)

  it("accepts the empty snapshot", function()
    local s = { version = 4, timestamp = 0, tasks = {}, runs = {},
                metadata = { schema_version = 8, wal_sequence = 0, task_count = 0, run_count = 0 },
                engine = { paused = false } }
    assert.is_true(validate(s))
  end)

  describe("header rules", function()
    it("UnsupportedSchemaVersion", function()
      local s = base(); s.metadata.schema_version = 7
      expect(s, "UnsupportedSchemaVersion", "metadata.schema_version",
        "unsupported snapshot schema version: expected 8, found 7")
    end)
    it("TaskCountMismatch", function()
      local s = base(); s.metadata.task_count = 3
      expect(s, "TaskCountMismatch", "metadata.task_count", "snapshot task_count mismatch: declared 3, actual 2")
    end)
    it("TaskCountMismatch prints u64 unsigned", function()
      local s = base(); s.metadata.task_count = -1
      expect(s, "TaskCountMismatch", "metadata.task_count",
        "snapshot task_count mismatch: declared 18446744073709551615, actual 2")
    end)
    it("RunCountMismatch", function()
      local s = base(); s.metadata.run_count = 0
      expect(s, "RunCountMismatch", "metadata.run_count", "snapshot run_count mismatch: declared 0, actual 2")
    end)
  end)

  describe("task rules", function()
    it("DuplicateTaskId (by UUID value)", function()
      local s = base(); s.tasks[2].task_spec.id = T1:upper()
      s.runs[2].run_instance.task_id = T1
      expect(s, "DuplicateTaskId", "tasks[2].task_spec.id", "duplicate snapshot task id: " .. T1)
    end)
    it("InvalidTaskCanceledAtCausality", function()
      local s = base(); s.tasks[2].canceled_at = 100
      expect(s, "InvalidTaskCanceledAtCausality", "tasks[2].canceled_at",
        "snapshot task " .. T2 .. " has invalid canceled_at causality: canceled_at (100) < created_at (101)")
    end)
    it("canceled_at equal to created_at is fine, and u64 compare is unsigned", function()
      local s = base(); s.tasks[2].canceled_at = 101
      assert.is_true(validate(s))
      s.tasks[2].canceled_at = -1 -- 2^64-1, later than anything
      assert.is_true(validate(s))
      s.tasks[2].canceled_at = 5; s.tasks[2].created_at = -2
      expect(s, "InvalidTaskCanceledAtCausality", "tasks[2].canceled_at",
        "snapshot task " .. T2
          .. " has invalid canceled_at causality: canceled_at (5) < created_at (18446744073709551614)")
    end)
  end)

  describe("run payload rules", function()
    it("InvalidRunId", function()
      local s = base(); s.runs[2].run_instance.id = NIL
      expect(s, "InvalidRunId", "runs[2].run_instance.id", "snapshot run has invalid nil run id: " .. NIL)
    end)
    it("InvalidTaskId", function()
      local s = base(); s.runs[2].run_instance.task_id = NIL
      expect(s, "InvalidTaskId", "runs[2].run_instance.task_id",
        "snapshot run " .. R2 .. " has invalid nil task id: " .. NIL)
    end)
    it("InvalidReadyScheduleCausality", function()
      local s = base(); local r = s.runs[2]
      r.run_instance.state = "Ready"; r.state_history[2] = hist("Scheduled", "Ready", 102)
      expect(s, "InvalidReadyScheduleCausality", "runs[2].run_instance.scheduled_at",
        "snapshot run " .. R2 .. " has invalid Ready schedule causality: scheduled_at (500) > created_at (101)")
      r.run_instance.scheduled_at = 101
      assert.is_true(validate(s))
    end)
    it("InvalidAttemptLineageState", function()
      local s = base(); local ri = s.runs[2].run_instance
      ri.current_attempt_id = A2; ri.attempt_count = 1
      expect(s, "InvalidAttemptLineageState", "runs[2].run_instance.current_attempt_id",
        "snapshot run " .. R2 .. " has active attempt lineage in invalid state Scheduled")
    end)
    it("a Canceled run may carry current_attempt_id (section 6 alone)", function()
      local s = base(); local r = s.runs[1]
      r.run_instance.state = "Canceled"; r.state_history[5] = hist("Running", "Canceled", 104); r.lease = nil
      assert.is_true(validate(s))
    end)
    it("InvalidAttemptLineageCount", function()
      local s = base(); s.runs[1].run_instance.attempt_count = 0
      expect(s, "InvalidAttemptLineageCount", "runs[1].run_instance.attempt_count",
        "snapshot run " .. R1 .. " has active attempt with invalid attempt_count (0)")
    end)
  end)

  describe("run detail rules", function()
    local missing = "snapshot run " .. R1 .. " missing initial Scheduled state history entry"
    it("MissingInitialRunStateHistory: empty history", function()
      local s = base(); s.runs[1].state_history = {}
      expect(s, "MissingInitialRunStateHistory", "runs[1].state_history", missing)
    end)
    it("MissingInitialRunStateHistory: first entry has from", function()
      local s = base(); s.runs[1].state_history[1].from = "Ready"
      expect(s, "MissingInitialRunStateHistory", "runs[1].state_history[1]", missing)
    end)
    it("MissingInitialRunStateHistory: first entry not Scheduled", function()
      local s = base(); s.runs[1].state_history[1].to = "Ready"
      expect(s, "MissingInitialRunStateHistory", "runs[1].state_history[1]", missing)
    end)
    it("MissingInitialRunStateHistory: first timestamp differs from created_at", function()
      local s = base(); s.runs[1].state_history[1].timestamp = 99
      expect(s, "MissingInitialRunStateHistory", "runs[1].state_history[1]", missing)
    end)
    local function tr(rid, from, to)
      return "snapshot run " .. rid .. " has invalid state history transition " .. from .. " -> " .. to
    end
    it("InvalidRunStateHistoryTransition: invalid pair", function()
      local s = base(); local h = s.runs[1].state_history
      table.remove(h, 2); table.remove(h, 2); h[2].from = "Scheduled"
      expect(s, "InvalidRunStateHistoryTransition", "runs[1].state_history[2]", tr(R1, "Scheduled", "Running"))
    end)
    it("InvalidRunStateHistoryTransition: from null reports the previous state", function()
      local s = base(); s.runs[1].state_history[3].from = nil
      expect(s, "InvalidRunStateHistoryTransition", "runs[1].state_history[3]", tr(R1, "Ready", "Leased"))
    end)
    it("InvalidRunStateHistoryTransition: broken chain", function()
      local s = base(); s.runs[1].state_history[3].from = "Scheduled"
      expect(s, "InvalidRunStateHistoryTransition", "runs[1].state_history[3]", tr(R1, "Scheduled", "Leased"))
    end)
    it("InvalidRunStateHistoryTransition: self transition", function()
      local s = base(); s.runs[1].state_history[3] = hist("Ready", "Ready", 102)
      expect(s, "InvalidRunStateHistoryTransition", "runs[1].state_history[3]", tr(R1, "Ready", "Ready"))
    end)
    it("InvalidRunStateHistoryTransition: leaving a terminal state", function()
      local s = base(); local r = s.runs[2]
      r.run_instance.state = "Ready"; r.run_instance.scheduled_at = 101
      r.state_history[2] = hist("Scheduled", "Canceled", 102)
      r.state_history[3] = hist("Canceled", "Ready", 103)
      expect(s, "InvalidRunStateHistoryTransition", "runs[2].state_history[3]", tr(R2, "Canceled", "Ready"))
    end)
    it("InvalidRunStateHistoryTransition: history ends elsewhere than the run state", function()
      local s = base(); s.runs[2].state_history[2] = hist("Scheduled", "Ready", 102)
      expect(s, "InvalidRunStateHistoryTransition", "runs[2].run_instance.state", tr(R2, "Ready", "Scheduled"))
    end)
    it("InvalidAttemptHistoryCount", function()
      local s = base(); local r = s.runs[2]; r.attempts = { { attempt_id = A2, started_at = 1, finished_at = 2 } }
      expect(s, "InvalidAttemptHistoryCount", "runs[2].attempts",
        "snapshot run " .. R2 .. " has attempt history length 1 inconsistent with attempt_count (0)")
    end)
    local align = "snapshot run " .. R1 .. " has invalid active attempt history alignment"
    it("InvalidActiveAttemptHistory: active attempt finished", function()
      local s = base(); s.runs[1].attempts[1].finished_at = 104
      expect(s, "InvalidActiveAttemptHistory", "runs[1].attempts[1].finished_at", align)
    end)
    it("InvalidActiveAttemptHistory: no entry for the active attempt", function()
      local s = base(); s.runs[1].attempts[1].attempt_id = A2
      expect(s, "InvalidActiveAttemptHistory", "runs[1].run_instance.current_attempt_id", align)
    end)
    it("InvalidActiveAttemptHistory: two entries for the active attempt", function()
      local s = base(); local r = s.runs[1]
      r.attempts[2] = { attempt_id = A1, started_at = 1, finished_at = 2 }; r.run_instance.attempt_count = 2
      expect(s, "InvalidActiveAttemptHistory", "runs[1].run_instance.current_attempt_id", align)
    end)
    it("InvalidLeasePresence", function()
      local s = base(); s.runs[2].lease = { owner = "w", expiry = 1, acquired_at = 1, updated_at = 1 }
      expect(s, "InvalidLeasePresence", "runs[2].lease",
        "snapshot run " .. R2 .. " has lease metadata in invalid state Scheduled")
    end)
    it("DuplicateRunId", function()
      local s = base(); s.runs[2].run_instance.id = R1
      expect(s, "DuplicateRunId", "runs[2].run_instance.id", "duplicate snapshot run id: " .. R1)
    end)
    it("RunReferencesUnknownTask", function()
      local s = base(); s.runs[2].run_instance.task_id = TX
      expect(s, "RunReferencesUnknownTask", "runs[2].run_instance.task_id",
        "snapshot run " .. R2 .. " references unknown task " .. TX)
    end)
  end)

  describe("engine rules", function()
    local resumed = "snapshot engine state invalid: paused=false with paused_at requires resumed_at"
    local cases = {
      { { paused = true }, "InvalidEnginePausedCausality", "engine.paused_at",
        "snapshot engine state invalid: paused=true requires paused_at" },
      { { paused = true, paused_at = 1, resumed_at = 2 }, "InvalidEngineResumedCausality",
        "engine.resumed_at", resumed },
      { { paused = false, resumed_at = 2 }, "InvalidEngineResumedCausality", "engine.resumed_at", resumed },
      { { paused = false, paused_at = 1 }, "InvalidEngineResumedCausality", "engine.resumed_at", resumed },
      { { paused = false, paused_at = 7, resumed_at = 6 }, "InvalidEnginePauseResumeOrdering", "engine.resumed_at",
        "snapshot engine state invalid: resumed_at (6) < paused_at (7)" },
    }
    for i, c in ipairs(cases) do
      it(c[2] .. " #" .. i, function()
        local s = base(); s.engine = c[1]
        expect(s, c[2], c[3], c[4])
      end)
    end
    it("accepts the three valid combinations", function()
      for _, e in ipairs { { paused = false }, { paused = true, paused_at = 3 },
                           { paused = false, paused_at = 3, resumed_at = 3 } } do
        local s = base(); s.engine = e
        assert.is_true(validate(s))
      end
    end)
  end)

  describe("reference rules", function()
    it("DuplicateDependencyDeclaration", function()
      local s = base(); s.dependency_declarations[2] = { task_id = T2, depends_on = {}, declared_at = 1 }
      expect(s, "DuplicateDependencyDeclaration", "dependency_declarations[2].task_id",
        "snapshot contains duplicate dependency declaration for task " .. T2)
    end)
    it("DependencyDeclarationUnknownTask", function()
      local s = base(); s.dependency_declarations[1].task_id = TX
      expect(s, "DependencyDeclarationUnknownTask", "dependency_declarations[1].task_id",
        "snapshot dependency declaration for unknown task " .. TX)
    end)
    it("DependencyReferencesUnknownTask (first offending prerequisite)", function()
      local s = base(); s.dependency_declarations[1].depends_on = { T1, T2, TX, NIL }
      expect(s, "DependencyReferencesUnknownTask", "dependency_declarations[1].depends_on[3]",
        "snapshot dependency declaration for task " .. T2 .. " references unknown prerequisite task " .. TX)
    end)
    it("self dependencies, repeats and empty lists are accepted", function()
      local s = base(); s.dependency_declarations[1].depends_on = { T2, T2, T1 }
      s.dependency_declarations[2] = { task_id = T1, depends_on = {}, declared_at = 1 }
      assert.is_true(validate(s))
    end)
    it("DuplicateBudgetAllocation uses the snake_case dimension", function()
      local s = base()
      s.budgets[1].dimension = "CostCents"
      s.budgets[2] = { task_id = T1, dimension = "Token", limit = 1, consumed = 0, allocated_at = 1,
                       exhausted = false }
      assert.is_true(validate(s))
      s.budgets[3] = { task_id = T1, dimension = "CostCents", limit = 1, consumed = 0, allocated_at = 1,
                       exhausted = false }
      expect(s, "DuplicateBudgetAllocation", "budgets[3].dimension",
        "duplicate budget allocation for task " .. T1 .. " dimension cost_cents")
      s.budgets[3].dimension = "TimeSecs"; s.budgets[4] = s.budgets[3]
      expect(s, "DuplicateBudgetAllocation", "budgets[4].dimension",
        "duplicate budget allocation for task " .. T1 .. " dimension time_secs")
    end)
    it("BudgetReferencesUnknownTask", function()
      local s = base(); s.budgets[1].task_id = TX
      expect(s, "BudgetReferencesUnknownTask", "budgets[1].task_id", "budget allocation references unknown task " .. TX)
    end)
    it("DuplicateSubscriptionId", function()
      local s = base()
      s.subscriptions[2] = { subscription_id = SUB1, task_id = T1, filter = { Custom = { key = "k" } }, created_at = 1 }
      expect(s, "DuplicateSubscriptionId", "subscriptions[2].subscription_id", "duplicate subscription id " .. SUB1)
    end)
    it("SubscriptionReferencesUnknownTask (filter ids are not checked)", function()
      local s = base(); s.subscriptions[1].filter = { TaskCompleted = { task_id = TX } }
      assert.is_true(validate(s))
      s.subscriptions[1].task_id = TX
      expect(s, "SubscriptionReferencesUnknownTask", "subscriptions[1].task_id",
        "subscription " .. SUB1 .. " references unknown task " .. TX)
    end)
    it("actors, tenants, grants and ledger entries are not validated", function()
      local s = base()
      s.role_assignments = { { actor_id = NIL, role = "Operator", tenant_id = NIL, assigned_at = 0 } }
      s.ledger_entries = { { entry_id = NIL, tenant_id = NIL, ledger_key = "", payload = "", timestamp = 0 } }
      assert.is_true(validate(s))
    end)
  end)

  describe("order (first failure)", function()
    it("schema version before counts", function()
      local s = base(); s.metadata.schema_version = 0; s.metadata.task_count = 9
      assert.equal("UnsupportedSchemaVersion", first(s).kind)
    end)
    it("counts before task ids, task count before run count", function()
      local s = base(); s.metadata.run_count = 9; s.metadata.task_count = 9; s.tasks[2].task_spec.id = T1
      assert.equal("TaskCountMismatch", first(s).kind)
    end)
    it("all tasks before any run", function()
      local s = base(); s.runs[1].state_history = {}; s.tasks[2].canceled_at = 1
      assert.equal("InvalidTaskCanceledAtCausality", first(s).kind)
    end)
    it("within a task: duplicate before canceled_at", function()
      local s = base(); s.tasks[2].task_spec.id = T1; s.tasks[2].canceled_at = 1
      assert.equal("DuplicateTaskId", first(s).kind)
    end)
    it("run payload before run detail", function()
      local s = base(); s.runs[1].run_instance.attempt_count = 0
      assert.equal("InvalidAttemptLineageCount", first(s).kind) -- also InvalidAttemptHistoryCount
    end)
    it("run detail before duplicate run id", function()
      local s = base(); s.runs[2].run_instance.id = R1; s.runs[2].state_history = {}
      assert.equal("MissingInitialRunStateHistory", first(s).kind)
    end)
    it("duplicate run id before unknown task", function()
      local s = base(); s.runs[2].run_instance.id = R1; s.runs[2].run_instance.task_id = TX
      assert.equal("DuplicateRunId", first(s).kind)
    end)
    it("an earlier run's unknown task before a later run's detail error", function()
      local s = base(); s.runs[1].run_instance.task_id = TX; s.runs[2].state_history = {}
      assert.equal("RunReferencesUnknownTask", first(s).kind)
    end)
    it("runs before engine, engine before dependencies", function()
      local s = base(); s.engine = { paused = true }; s.runs[2].run_instance.task_id = TX
      s.dependency_declarations[1].task_id = TX
      assert.equal("RunReferencesUnknownTask", first(s).kind)
      s.runs[2].run_instance.task_id = T2
      assert.equal("InvalidEnginePausedCausality", first(s).kind)
    end)
    it("an earlier declaration's prerequisites before a later duplicate", function()
      local s = base(); s.dependency_declarations[1].depends_on = { TX }
      s.dependency_declarations[2] = { task_id = T2, depends_on = {}, declared_at = 1 }
      assert.equal("DependencyReferencesUnknownTask", first(s).kind)
    end)
    it("dependencies before budgets before subscriptions", function()
      local s = base(); s.subscriptions[1].task_id = TX; s.budgets[1].task_id = TX
      s.dependency_declarations[1].task_id = TX
      assert.equal("DependencyDeclarationUnknownTask", first(s).kind)
      s.dependency_declarations[1].task_id = T2
      assert.equal("BudgetReferencesUnknownTask", first(s).kind)
      s.budgets[1].task_id = T1
      assert.equal("SubscriptionReferencesUnknownTask", first(s).kind)
    end)
  end)

  describe("all mode", function()
    it("returns every violation in document order, the first equal to the default mode's", function()
      local s = base()
      s.metadata.run_count = 5
      s.tasks[2].canceled_at = 1
      s.runs[1].state_history[3].from = "Scheduled"
      s.runs[1].lease = nil
      s.runs[2].run_instance.task_id = TX
      s.runs[2].lease = { owner = "w", expiry = 1, acquired_at = 1, updated_at = 1 }
      s.engine = { paused = true }
      s.dependency_declarations[1].depends_on = { TX, T1, TX }
      s.budgets[2] = s.budgets[1]
      local all = validate(s, { all = true })
      local got = {}
      for i, v in ipairs(all) do got[i] = v.kind .. " " .. v.path end
      assert.same({
        "RunCountMismatch metadata.run_count",
        "InvalidTaskCanceledAtCausality tasks[2].canceled_at",
        "InvalidRunStateHistoryTransition runs[1].state_history[3]",
        "InvalidLeasePresence runs[2].lease",
        "RunReferencesUnknownTask runs[2].run_instance.task_id",
        "InvalidEnginePausedCausality engine.paused_at",
        "DependencyReferencesUnknownTask dependency_declarations[1].depends_on[1]",
        "DependencyReferencesUnknownTask dependency_declarations[1].depends_on[3]",
        "DuplicateBudgetAllocation budgets[2].dimension",
      }, got)
      local _, v = validate(s)
      assert.same(all[1], v)
    end)
    it("reports each broken history entry once and the final mismatch", function()
      local s = base(); local h = s.runs[1].state_history
      h[2].from = "Ready"; h[4].from = nil
      s.runs[1].run_instance.state = "Leased"; s.runs[1].run_instance.current_attempt_id = nil
      s.runs[1].run_instance.attempt_count = 1
      local all = validate(s, { all = true })
      local got = {}
      for i, v in ipairs(all) do got[i] = v.path .. " " .. v.message:match("transition (.*)$") end
      assert.same({
        "runs[1].state_history[2] Ready -> Ready",
        "runs[1].state_history[4] Leased -> Running",
        "runs[1].run_instance.state Running -> Leased",
      }, got)
    end)
    it("mentions the shared engine text once", function()
      local s = base(); s.engine = { paused = true, resumed_at = 4 }
      local all = validate(s, { all = true })
      assert.equal(2, #all)
      assert.equal("InvalidEnginePausedCausality", all[1].kind)
      assert.equal("InvalidEngineResumedCausality", all[2].kind)
    end)
  end)
end)

describe("the rules have one implementation", function()
  it("every rule is written in csrc/verdict.c and none in the Lua tree", function()
    local function read(p)
      local f = assert(io.open(p, "rb"))
      local d = f:read("a")
      f:close()
      return d
    end
    local c = read(fixtures.repo .. "/csrc/verdict.c")
    local kinds, n = {}, 0
    for kind in c:gmatch('FAIL%("(%u%a+)"') do kinds[kind] = true end
    for kind in c:gmatch('OUT%("(%u%a+)"') do kinds[kind] = true end
    for kind in c:gmatch('fail%(v, &v%->v_tasks, i, "(%u%a+)"') do kinds[kind] = true end
    for _ in pairs(kinds) do n = n + 1 end
    assert.equal(27, n)
    local p = io.popen("find " .. fixtures.repo .. "/lua -name '*.lua'")
    for file in p:lines() do
      local text = read(file)
      for kind in pairs(kinds) do
        assert(not text:find('"' .. kind .. '"', 1, true), file .. " has a second copy of rule " .. kind)
      end
    end
    p:close()
  end)
end)

-- Golden mapping fixtures: the in-memory validation text must be the reference's.
-- Payloads are decoded with the project's snapshot decoder when it exists; until then with
-- cjson plus a schema walk (the mapping fixtures hold no integer above 2^53).
local function load_payload(data)
  local ok, snapshot = pcall(require, "actionqueue.storage.snapshot")
  if ok and type(snapshot) == "table" and snapshot.decode then
    local ok2, snap = pcall(snapshot.decode, data)
    if ok2 and snap then return snap end
  end
  local cjson = require "cjson"
  local function conv(t, v)
    if v == cjson.null or v == nil then return nil end
    local k = t.kind
    if k == "option" then return conv(t.of, v) end
    if k == "u8" or k == "u16" or k == "u32" or k == "u64" or k == "i32" then return math.tointeger(v) end
    if k == "id" then return v:lower() end
    if k == "bytes" then
      local b = {}
      for i, n in ipairs(v) do b[i] = string.char(math.tointeger(n)) end
      return table.concat(b)
    end
    if k == "list" then
      local out = {}
      for i, e in ipairs(v) do out[i] = conv(t.of, e) end
      return out
    end
    if k == "record" then
      local out = {}
      for _, f in ipairs(t.fields) do out[f.name] = conv(f.type, v[f.name]) end
      return out
    end
    if k == "enum" then
      if type(v) == "string" then return v end
      local name, payload = next(v)
      local var = t.by_name[name]
      if not var.type then return name end
      return { [name] = conv(var.type, payload) }
    end
    return v
  end
  return conv(S.root, cjson.decode(data))
end

describe("snapshot.validate on the golden mapping fixtures", function()
  if not fixtures.available() then
    pending("shared fixtures not found at " .. fixtures.root)
    return
  end
  local n = 0
  for _, case in ipairs(fixtures.manifest("snapshot")) do
    if case.kind == "mapping" then
      n = n + 1
      it(case.file, function()
        local data = assert(fixtures.read(fixtures.path("snapshot", case.file)))
        local snap = load_payload(data:sub(13))
        local ok, v = validate(snap)
        assert.is_nil(ok)
        assert.equal(case.variant, v.kind)
        local display = case.validate_snapshot_display
        if type(display) == "string" then
          assert.equal(display, v.message)
          local loader = case.expect:match("^ERR Mapping error: (.*)$")
          if loader then assert.equal(loader, v.message) end
        end
        local all = validate(snap, { all = true })
        assert.same(v, all[1])
      end)
    end
  end
  it("found the mapping fixtures", function()
    assert.is_true(n >= 27)
  end)
end)
