--- Semantic validation of an in-memory snapshot (snapshot-format.md §6, recovery.md §4).
--
-- One walk implements both modes: it visits the rules in the reference's exact order
-- and hands every violation to a collector. In the default mode the collector stops the
-- walk at the first violation (what the engine reports); with `{all = true}` it keeps
-- going and returns every violation, in document/rule order, each with the path of the
-- offending value (`runs[3].state_history[2]`, 1-based) so an operator can repair a file.
--
-- Violations are `{kind = <rule name>, path = <document path>, message = <reference text>}`
-- (the text without the loader's `Mapping error: ` prefix).
-- @module actionqueue.storage.snapshot.validate
local S = require "actionqueue.storage.schema.snapshot"
local T = require "actionqueue.storage.schema.types"
local sm = require "actionqueue.storage.statemachine"
local uuid = require "actionqueue.storage.uuid"

local M = {}

local STOP = setmetatable({}, { __tostring = function() return "validate: stop" end })

-- u64 values are printed unsigned (values above 2^63-1 are negative Lua integers).
local function u(n)
  return string.format("%u", n)
end

-- Ids compare by UUID value and print lower-case hyphenated; an id that does not parse
-- (only possible for hand-made tables) is used as is.
local function id(s)
  return uuid.normalize(s) or tostring(s)
end

-- `CostCents` -> `cost_cents`: the display form of a BudgetDimension.
local function snake(name)
  return (tostring(name):gsub("(%l)(%u)", "%1_%2"):lower())
end

local function list(v)
  return type(v) == "table" and v or {}
end

local function new_collector(all)
  local c = { all = all, found = {} }
  function c.fail(kind, path, fmt, ...)
    c.found[#c.found + 1] = { kind = kind, path = path, message = string.format(fmt, ...) }
    if not c.all then error(STOP, 0) end
    return true
  end
  return c
end

-- §6.1 steps 1-3.
local function check_header(snap, fail)
  local md = snap.metadata or {}
  if md.schema_version ~= S.SCHEMA_VERSION then
    fail("UnsupportedSchemaVersion", "metadata.schema_version",
      "unsupported snapshot schema version: expected %d, found %s", S.SCHEMA_VERSION,
      md.schema_version and u(md.schema_version) or "nil")
  end
  local tasks, runs = list(snap.tasks), list(snap.runs)
  if md.task_count ~= #tasks then
    fail("TaskCountMismatch", "metadata.task_count",
      "snapshot task_count mismatch: declared %s, actual %d", u(md.task_count or 0), #tasks)
  end
  if md.run_count ~= #runs then
    fail("RunCountMismatch", "metadata.run_count",
      "snapshot run_count mismatch: declared %s, actual %d", u(md.run_count or 0), #runs)
  end
end

-- §6.1 step 4; returns the set of task ids.
local function check_tasks(snap, fail)
  local known = {}
  for i, task in ipairs(list(snap.tasks)) do
    local p = string.format("tasks[%d]", i)
    local tid = id((task.task_spec or {}).id)
    if known[tid] then
      fail("DuplicateTaskId", p .. ".task_spec.id", "duplicate snapshot task id: %s", tid)
    end
    known[tid] = true
    if task.canceled_at ~= nil and math.ult(task.canceled_at, task.created_at) then
      fail("InvalidTaskCanceledAtCausality", p .. ".canceled_at",
        "snapshot task %s has invalid canceled_at causality: canceled_at (%s) < created_at (%s)",
        tid, u(task.canceled_at), u(task.created_at))
    end
  end
  return known
end

-- §6.2.1 run payload checks.
local function check_run_payload(ri, rid, p, fail)
  if rid == T.NIL_UUID then
    fail("InvalidRunId", p .. ".id", "snapshot run has invalid nil run id: %s", rid)
  end
  local tid = id(ri.task_id)
  if tid == T.NIL_UUID then
    fail("InvalidTaskId", p .. ".task_id", "snapshot run %s has invalid nil task id: %s", rid, tid)
  end
  if ri.state == "Ready" and math.ult(ri.created_at, ri.scheduled_at) then
    fail("InvalidReadyScheduleCausality", p .. ".scheduled_at",
      "snapshot run %s has invalid Ready schedule causality: scheduled_at (%s) > created_at (%s)",
      rid, u(ri.scheduled_at), u(ri.created_at))
  end
  if ri.current_attempt_id ~= nil then
    if ri.state ~= "Running" and ri.state ~= "Canceled" then
      fail("InvalidAttemptLineageState", p .. ".current_attempt_id",
        "snapshot run %s has active attempt lineage in invalid state %s", rid, tostring(ri.state))
    end
    if ri.attempt_count == 0 then
      fail("InvalidAttemptLineageCount", p .. ".attempt_count",
        "snapshot run %s has active attempt with invalid attempt_count (%d)", rid, ri.attempt_count)
    end
  end
end

-- §6.2.2 run detail checks.
local function check_run_detail(run, ri, rid, p, fail)
  local h, a = list(run.state_history), list(run.attempts)
  local function transition(path, from, to)
    fail("InvalidRunStateHistoryTransition", path,
      "snapshot run %s has invalid state history transition %s -> %s", rid, tostring(from), tostring(to))
  end
  local missing = "snapshot run %s missing initial Scheduled state history entry"
  if #h == 0 then
    fail("MissingInitialRunStateHistory", p .. ".state_history", missing, rid)
  else
    local first = h[1]
    local prev = "Scheduled"
    if first.from ~= nil or first.to ~= "Scheduled" or first.timestamp ~= ri.created_at then
      fail("MissingInitialRunStateHistory", p .. ".state_history[1]", missing, rid)
      -- (all mode) go on from where the faulty first entry says the run went
      if sm.is_state(first.to) then prev = first.to end
    end
    for k = 2, #h do
      local e = h[k]
      local ep = string.format("%s.state_history[%d]", p, k)
      if e.from == nil then
        transition(ep, prev, e.to)
      elseif e.from ~= prev or not sm.can_transition(e.from, e.to) then
        transition(ep, e.from, e.to)
      end
      prev = e.to
    end
    if prev ~= ri.state then
      transition(p .. ".run_instance.state", prev, ri.state)
    end
  end
  if #a ~= ri.attempt_count then
    fail("InvalidAttemptHistoryCount", p .. ".attempts",
      "snapshot run %s has attempt history length %d inconsistent with attempt_count (%d)",
      rid, #a, ri.attempt_count or 0)
  end
  if ri.current_attempt_id ~= nil then
    local active = id(ri.current_attempt_id)
    local count, at = 0, nil
    for k, entry in ipairs(a) do
      if id(entry.attempt_id) == active then count = count + 1; at = at or k end
    end
    if count ~= 1 or a[at].finished_at ~= nil then
      local path = (count == 1) and string.format("%s.attempts[%d].finished_at", p, at)
        or p .. ".run_instance.current_attempt_id"
      fail("InvalidActiveAttemptHistory", path,
        "snapshot run %s has invalid active attempt history alignment", rid)
    end
  end
  if run.lease ~= nil and not sm.may_hold_lease(ri.state) then
    fail("InvalidLeasePresence", p .. ".lease",
      "snapshot run %s has lease metadata in invalid state %s", rid, tostring(ri.state))
  end
end

-- §6.1 step 5.
local function check_runs(snap, tasks, fail)
  local seen = {}
  for i, run in ipairs(list(snap.runs)) do
    local p = string.format("runs[%d]", i)
    local ri = run.run_instance or {}
    local rid = id(ri.id)
    check_run_payload(ri, rid, p .. ".run_instance", fail)
    check_run_detail(run, ri, rid, p, fail)
    if seen[rid] then
      fail("DuplicateRunId", p .. ".run_instance.id", "duplicate snapshot run id: %s", rid)
    end
    seen[rid] = true
    local tid = id(ri.task_id)
    if not tasks[tid] then
      fail("RunReferencesUnknownTask", p .. ".run_instance.task_id",
        "snapshot run %s references unknown task %s", rid, tid)
    end
  end
end

-- §6.3.
local function check_engine(snap, fail)
  local e = snap.engine or { paused = false }
  if e.paused and e.paused_at == nil then
    fail("InvalidEnginePausedCausality", "engine.paused_at",
      "snapshot engine state invalid: paused=true requires paused_at")
  end
  -- checks 2, 3 and 4 share one rule and one text: reported once
  local resumed
  if e.paused and e.resumed_at ~= nil then
    resumed = "engine.resumed_at"
  elseif e.paused_at == nil and e.resumed_at ~= nil then
    resumed = "engine.resumed_at"
  elseif not e.paused and e.paused_at ~= nil and e.resumed_at == nil then
    resumed = "engine.resumed_at"
  end
  if resumed then
    fail("InvalidEngineResumedCausality", resumed,
      "snapshot engine state invalid: paused=false with paused_at requires resumed_at")
  end
  if not e.paused and e.paused_at ~= nil and e.resumed_at ~= nil
     and math.ult(e.resumed_at, e.paused_at) then
    fail("InvalidEnginePauseResumeOrdering", "engine.resumed_at",
      "snapshot engine state invalid: resumed_at (%s) < paused_at (%s)", u(e.resumed_at), u(e.paused_at))
  end
end

-- §6.1 steps 7-9.
local function check_references(snap, tasks, fail)
  local declared = {}
  for i, d in ipairs(list(snap.dependency_declarations)) do
    local p = string.format("dependency_declarations[%d]", i)
    local tid = id(d.task_id)
    if declared[tid] then
      fail("DuplicateDependencyDeclaration", p .. ".task_id",
        "snapshot contains duplicate dependency declaration for task %s", tid)
    end
    declared[tid] = true
    if not tasks[tid] then
      fail("DependencyDeclarationUnknownTask", p .. ".task_id",
        "snapshot dependency declaration for unknown task %s", tid)
    end
    for k, pre in ipairs(list(d.depends_on)) do
      local pid = id(pre)
      if not tasks[pid] then
        fail("DependencyReferencesUnknownTask", string.format("%s.depends_on[%d]", p, k),
          "snapshot dependency declaration for task %s references unknown prerequisite task %s", tid, pid)
      end
    end
  end

  local budgets = {}
  for i, b in ipairs(list(snap.budgets)) do
    local p = string.format("budgets[%d]", i)
    local tid = id(b.task_id)
    local key = tid .. "/" .. tostring(b.dimension)
    if budgets[key] then
      fail("DuplicateBudgetAllocation", p .. ".dimension",
        "duplicate budget allocation for task %s dimension %s", tid, snake(b.dimension))
    end
    budgets[key] = true
    if not tasks[tid] then
      fail("BudgetReferencesUnknownTask", p .. ".task_id", "budget allocation references unknown task %s", tid)
    end
  end

  local subs = {}
  for i, s in ipairs(list(snap.subscriptions)) do
    local p = string.format("subscriptions[%d]", i)
    local sid, tid = id(s.subscription_id), id(s.task_id)
    if subs[sid] then
      fail("DuplicateSubscriptionId", p .. ".subscription_id", "duplicate subscription id %s", sid)
    end
    subs[sid] = true
    if not tasks[tid] then
      fail("SubscriptionReferencesUnknownTask", p .. ".task_id",
        "subscription %s references unknown task %s", sid, tid)
    end
  end
  -- actors, tenants, role assignments, capability grants, ledger entries: no checks.
end

--- Validates a snapshot the way the reference engine does.
-- @tparam table snap in-memory snapshot
-- @tparam[opt] table opts `{all = true}` to collect every violation
-- @return default mode: `true`, or `nil, violation` (the engine's first failure);
--   all mode: the list of violations (empty when valid)
function M.validate(snap, opts)
  assert(type(snap) == "table", "validate: snapshot table expected")
  local all = type(opts) == "table" and opts.all or false
  local c = new_collector(all)
  local ok, err = pcall(function()
    check_header(snap, c.fail)
    local tasks = check_tasks(snap, c.fail)
    check_runs(snap, tasks, c.fail)
    check_engine(snap, c.fail)
    check_references(snap, tasks, c.fail)
  end)
  if not ok and err ~= STOP then error(err, 0) end
  if all then return c.found end
  if c.found[1] then return nil, c.found[1] end
  return true
end

--- The display text of the first violation, as the loader prints it
-- (`Mapping error: ...`), or nil when the snapshot is valid.
function M.mapping_error(snap)
  local ok, v = M.validate(snap)
  if ok then return nil end
  return "Mapping error: " .. v.message
end

return M
