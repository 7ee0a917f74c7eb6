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

local format, lower, ult = string.format, string.lower, math.ult
local normalize, tostring, type = uuid.normalize, tostring, type
local NIL_UUID = T.NIL_UUID

local STOP = setmetatable({}, { __tostring = function() return "validate: stop" end })

-- u64 values are printed unsigned (values above 2^63-1 are negative Lua integers).
local function u(n)
  return format("%u", n)
end

-- Ids compare by UUID value and print lower-case hyphenated; an id that does not parse
-- (only possible for hand-made tables) is used as is. Ids from the decoder are already
-- canonical: a 36-character string without upper-case letters is returned unchanged
-- (uuid.normalize would return it unchanged too: lower-case hyphenated if it parses,
-- the string itself if it does not). `lower(s) == s` is the cheapest such test (the
-- lower-cased copy of a lower-case id is the same interned string).
local function id(s)
  if type(s) == "string" and #s == 36 and lower(s) == s then return s end
  return normalize(s) or tostring(s)
end

-- For snapshots straight from the decoder (`opts.decoded`): every id is canonical.
local function same(s) return s end

-- `CostCents` -> `cost_cents`: the display form of a BudgetDimension.
local function snake(name)
  return (tostring(name):gsub("(%l)(%u)", "%1_%2"):lower())
end

local EMPTY = setmetatable({}, { __newindex = function() error("validate: EMPTY is read-only", 2) end })

local function list(v)
  return type(v) == "table" and v or EMPTY
end

-- Transition table: allowed[from][to] == true (from the state machine).
local allowed = {}
for _, from in ipairs(sm.states) do
  allowed[from] = {}
  for _, to in ipairs(sm.states) do
    if sm.can_transition(from, to) then allowed[from][to] = true end
  end
end
local NO_TARGETS = {}

-- Paths are built only when a violation is recorded (the success path formats nothing).
local function new_collector(all)
  local c = { all = all, found = {} }
  function c.fail(kind, path, fmt, ...)
    c.found[#c.found + 1] = { kind = kind, path = path, message = format(fmt, ...) }
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
local function check_tasks(snap, fail, decoded)
  local known = {}
  local tasks = list(snap.tasks)
  for i = 1, #tasks do
    local task = tasks[i]
    if task == nil then break end -- (ipairs semantics)
    local tid = (task.task_spec or EMPTY).id
    if not decoded then tid = id(tid) end
    if known[tid] then
      fail("DuplicateTaskId", format("tasks[%d].task_spec.id", i), "duplicate snapshot task id: %s", tid)
    end
    known[tid] = true
    local canceled_at = task.canceled_at
    if canceled_at ~= nil and ult(canceled_at, task.created_at) then
      fail("InvalidTaskCanceledAtCausality", format("tasks[%d].canceled_at", i),
        "snapshot task %s has invalid canceled_at causality: canceled_at (%s) < created_at (%s)",
        tid, u(canceled_at), u(task.created_at))
    end
  end
  return known
end

-- §6.2.1 run payload checks (`i`: the run's index, for the paths).
local function check_run_payload(ri, rid, tid, i, fail)
  if rid == NIL_UUID then
    fail("InvalidRunId", format("runs[%d].run_instance.id", i), "snapshot run has invalid nil run id: %s", rid)
  end
  if tid == NIL_UUID then
    fail("InvalidTaskId", format("runs[%d].run_instance.task_id", i),
      "snapshot run %s has invalid nil task id: %s", rid, tid)
  end
  local state = ri.state
  if state == "Ready" and ult(ri.created_at, ri.scheduled_at) then
    fail("InvalidReadyScheduleCausality", format("runs[%d].run_instance.scheduled_at", i),
      "snapshot run %s has invalid Ready schedule causality: scheduled_at (%s) > created_at (%s)",
      rid, u(ri.scheduled_at), u(ri.created_at))
  end
  if ri.current_attempt_id ~= nil then
    if state ~= "Running" and state ~= "Canceled" then
      fail("InvalidAttemptLineageState", format("runs[%d].run_instance.current_attempt_id", i),
        "snapshot run %s has active attempt lineage in invalid state %s", rid, tostring(state))
    end
    if ri.attempt_count == 0 then
      fail("InvalidAttemptLineageCount", format("runs[%d].run_instance.attempt_count", i),
        "snapshot run %s has active attempt with invalid attempt_count (%d)", rid, ri.attempt_count)
    end
  end
end

local TRANSITION = "snapshot run %s has invalid state history transition %s -> %s"
local MISSING = "snapshot run %s missing initial Scheduled state history entry"

-- §6.2.2 run detail checks.
local function check_run_detail(run, ri, rid, i, fail, canon)
  local h, a = list(run.state_history), list(run.attempts)
  local nh = #h
  if nh == 0 then
    fail("MissingInitialRunStateHistory", format("runs[%d].state_history", i), MISSING, rid)
  else
    local first = h[1]
    local prev = "Scheduled"
    if first.from ~= nil or first.to ~= "Scheduled" or first.timestamp ~= ri.created_at then
      fail("MissingInitialRunStateHistory", format("runs[%d].state_history[1]", i), MISSING, rid)
      -- (all mode) go on from where the faulty first entry says the run went
      if sm.is_state(first.to) then prev = first.to end
    end
    for k = 2, nh do
      local e = h[k]
      local from, to = e.from, e.to
      if from == nil then
        fail("InvalidRunStateHistoryTransition", format("runs[%d].state_history[%d]", i, k),
          TRANSITION, rid, tostring(prev), tostring(to))
      elseif from ~= prev or not (allowed[from] or NO_TARGETS)[to] then
        fail("InvalidRunStateHistoryTransition", format("runs[%d].state_history[%d]", i, k),
          TRANSITION, rid, tostring(from), tostring(to))
      end
      prev = to
    end
    if prev ~= ri.state then
      fail("InvalidRunStateHistoryTransition", format("runs[%d].run_instance.state", i),
        TRANSITION, rid, tostring(prev), tostring(ri.state))
    end
  end
  local na = #a
  if na ~= ri.attempt_count then
    fail("InvalidAttemptHistoryCount", format("runs[%d].attempts", i),
      "snapshot run %s has attempt history length %d inconsistent with attempt_count (%d)",
      rid, na, ri.attempt_count or 0)
  end
  if ri.current_attempt_id ~= nil then
    local active = canon(ri.current_attempt_id)
    local count, at = 0, nil
    for k, entry in ipairs(a) do
      if canon(entry.attempt_id) == active then count = count + 1; at = at or k end
    end
    if count ~= 1 or a[at].finished_at ~= nil then
      local path = (count == 1) and format("runs[%d].attempts[%d].finished_at", i, at)
        or format("runs[%d].run_instance.current_attempt_id", i)
      fail("InvalidActiveAttemptHistory", path,
        "snapshot run %s has invalid active attempt history alignment", rid)
    end
  end
  if run.lease ~= nil and not sm.may_hold_lease(ri.state) then
    fail("InvalidLeasePresence", format("runs[%d].lease", i),
      "snapshot run %s has lease metadata in invalid state %s", rid, tostring(ri.state))
  end
end

-- §6.1 step 5.
local function check_runs(snap, tasks, fail, decoded)
  local seen = {}
  local runs = list(snap.runs)
  for i = 1, #runs do
    local run = runs[i]
    if run == nil then break end -- (ipairs semantics)
    local ri = run.run_instance or EMPTY
    local rid, tid = ri.id, ri.task_id
    if not decoded then rid, tid = id(rid), id(tid) end
    check_run_payload(ri, rid, tid, i, fail)
    check_run_detail(run, ri, rid, i, fail, decoded and same or id)
    if seen[rid] then
      fail("DuplicateRunId", format("runs[%d].run_instance.id", i), "duplicate snapshot run id: %s", rid)
    end
    seen[rid] = true
    if not tasks[tid] then
      fail("RunReferencesUnknownTask", format("runs[%d].run_instance.task_id", i),
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
    local tid = id(d.task_id)
    if declared[tid] then
      fail("DuplicateDependencyDeclaration", format("dependency_declarations[%d].task_id", i),
        "snapshot contains duplicate dependency declaration for task %s", tid)
    end
    declared[tid] = true
    if not tasks[tid] then
      fail("DependencyDeclarationUnknownTask", format("dependency_declarations[%d].task_id", i),
        "snapshot dependency declaration for unknown task %s", tid)
    end
    for k, pre in ipairs(list(d.depends_on)) do
      local pid = id(pre)
      if not tasks[pid] then
        fail("DependencyReferencesUnknownTask", format("dependency_declarations[%d].depends_on[%d]", i, k),
          "snapshot dependency declaration for task %s references unknown prerequisite task %s", tid, pid)
      end
    end
  end

  local budgets = {}
  for i, b in ipairs(list(snap.budgets)) do
    local tid = id(b.task_id)
    local key = tid .. "/" .. tostring(b.dimension)
    if budgets[key] then
      fail("DuplicateBudgetAllocation", format("budgets[%d].dimension", i),
        "duplicate budget allocation for task %s dimension %s", tid, snake(b.dimension))
    end
    budgets[key] = true
    if not tasks[tid] then
      fail("BudgetReferencesUnknownTask", format("budgets[%d].task_id", i),
        "budget allocation references unknown task %s", tid)
    end
  end

  local subs = {}
  for i, s in ipairs(list(snap.subscriptions)) do
    local sid, tid = id(s.subscription_id), id(s.task_id)
    if subs[sid] then
      fail("DuplicateSubscriptionId", format("subscriptions[%d].subscription_id", i),
        "duplicate subscription id %s", sid)
    end
    subs[sid] = true
    if not tasks[tid] then
      fail("SubscriptionReferencesUnknownTask", format("subscriptions[%d].task_id", i),
        "subscription %s references unknown task %s", sid, tid)
    end
  end
  -- actors, tenants, role assignments, capability grants, ledger entries: no checks.
end

--- Validates a snapshot the way the reference engine does.
-- @tparam table snap in-memory snapshot
-- @tparam[opt] table opts `{all = true}` to collect every violation; `decoded = true`
--   (for the loader) promises that `snap` comes unchanged from the decoder, whose ids are
--   already canonical strings, so they are not normalised again
-- @return default mode: `true`, or `nil, violation` (the engine's first failure);
--   all mode: the list of violations (empty when valid)
function M.validate(snap, opts)
  assert(type(snap) == "table", "validate: snapshot table expected")
  local all = type(opts) == "table" and opts.all or false
  local decoded = type(opts) == "table" and opts.decoded or false
  local c = new_collector(all)
  local ok, err = pcall(function()
    check_header(snap, c.fail)
    local tasks = check_tasks(snap, c.fail, decoded)
    check_runs(snap, tasks, c.fail, decoded)
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
