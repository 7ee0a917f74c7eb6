--- The in-memory projection the replay reducer maintains (recovery.md §8).
--
-- Layout (ids are lower-case hyphenated UUID strings, u64 values Lua integers):
--
--   latest          u64, last applied sequence (0 initially)
--   core            ReplayState (csrc/replay.c): the tasks and runs, compact. A task
--                   is {spec, created_at, updated_at (never set), canceled_at?} with the
--                   spec kept as its postcard bytes; a run is {instance, state history,
--                   attempt history, lease = {owner, expiry}?, lease_meta = {owner,
--                   expiry, acquired_at, updated_at}?} (the run-state mirror of the
--                   reference is the instance's state; the active attempt is
--                   `instance.current_attempt_id`), and a task's runs are the runs with
--                   its id, in creation order. The rules of the events that change them
--                   live there too (reducer.lua lists them).
--   engine          {paused = bool, paused_at?, resumed_at?}
--   deps            TaskId -> {[prereq TaskId] = true}
--   budgets         "<task>|<Dimension>" -> {task_id, dimension, limit, consumed,
--                                            allocated_at, exhausted}
--   subscriptions   SubscriptionId -> {subscription_id, task_id, filter, created_at,
--                                      triggered_at?, canceled_at?}
--   actors          ActorId -> {actor_id, identity, capabilities, department?,
--                               heartbeat_interval_secs, tenant_id?, registered_at,
--                               last_heartbeat_at?, deregistered_at?}
--   tenants         TenantId -> {tenant_id, name, created_at}
--   roles           "<actor>|<tenant>" -> {actor_id, role, tenant_id, assigned_at}
--   grants          "<actor>|<capability key>|<tenant>" -> {actor_id, capability, tenant_id,
--                                                           granted_at, revoked_at?}
--   ledger          {entry, ...} in append order
--
-- Tasks and runs are read only through the read functions below (`task_ids`, `task`,
-- `each_task`, `run_ids`, `run`, `each_run`, `runs_of_task`, `task_count`, `run_count`,
-- `runs_by_state`): each returns fresh Lua tables the caller may keep or change. The
-- other collections are plain tables of the layout above.
-- @module actionqueue.storage.recovery.state
local core = require "actionqueue.storage.core"
local sm = require "actionqueue.storage.statemachine"
local S = require "actionqueue.storage.schema.snapshot"
local T = require "actionqueue.storage.schema.types"
local W = require "actionqueue.storage.schema.wal"

local M = {}

local function names(list)
  local out = {}
  for i, x in ipairs(list) do out[i] = x.name end
  return out
end

-- What csrc/replay.c needs from the schema and the state machine (it checks that the
-- records and variants it reads still have the fields it reads, in that order).
local CONFIG = { states = sm.states, results = names(T.AttemptResultKind.variants),
                 variants = names(W.WalEventType.variants), allowed = {}, terminal = {},
                 layouts = {}, schema = core.schema(W.WalEvent) }
for _, from in ipairs(sm.states) do
  for _, to in ipairs(sm.targets(from)) do CONFIG.allowed[#CONFIG.allowed + 1] = { from, to } end
  if sm.is_terminal(from) then CONFIG.terminal[#CONFIG.terminal + 1] = from end
end
for _, v in ipairs(W.WalEventType.variants) do
  CONFIG.layouts[v.name] = table.concat(names(v.type.fields), ",")
end
CONFIG.layouts.RunInstance = table.concat(names(T.RunInstance.fields), ",")
CONFIG.layouts.RunStateHistoryEntry = table.concat(names(S.RunStateHistoryEntry.fields), ",")
CONFIG.layouts.AttemptHistoryEntry = table.concat(names(S.AttemptHistoryEntry.fields), ",")
CONFIG.layouts.RunLease = table.concat(names(S.LeaseMetadata.fields), ",")

--- The configuration of every ReplayState (`core.replay_state`), derived from the schema.
M.REPLAY_CONFIG = CONFIG

local TaskSpec = T.TaskSpec
local SPEC_OPTS = { features = { workflow = true } } -- the record was accepted already
local decode = core.postcard_decode

-- ---------------------------------------------------------------------------
-- Read functions: the contract of the projection's readers (recovery/to_snapshot.lua,
-- recovery.summary, inspect/datadir.lua, scripts).

--- Number of tasks of the projection.
function M.task_count(st)
  local n = st.core:counts()
  return n
end

--- Number of runs of the projection.
function M.run_count(st)
  local _, n = st.core:counts()
  return n
end

--- Task ids in ascending order (lower-case UUID text order = UUID byte order).
function M.task_ids(st)
  return st.core:task_ids()
end

--- Run ids in ascending order.
function M.run_ids(st)
  return st.core:run_ids()
end

--- A task as `{spec = TaskSpec, created_at, updated_at?, canceled_at?}`, nil if unknown.
function M.task(st, id)
  local created_at, canceled_at, spec = st.core:task(id)
  if not created_at then return nil end
  return { spec = assert(decode(spec, TaskSpec, SPEC_OPTS)), created_at = created_at,
           canceled_at = canceled_at }
end

--- A run as `{instance = RunInstance, history = {RunStateHistoryEntry...},
-- attempts = {AttemptHistoryEntry...}, lease = {owner, expiry}?,
-- lease_meta = {owner, expiry, acquired_at, updated_at}?}`, nil if unknown.
function M.run(st, id)
  return st.core:run(id)
end

--- The ids of a task's runs in creation order (empty list when none).
function M.runs_of_task(st, task_id)
  return st.core:runs_of_task(task_id)
end

--- Iterator over the tasks in id order: `for id, task in state.each_task(st)`.
function M.each_task(st)
  local ids, i = M.task_ids(st), 0
  return function()
    i = i + 1
    local id = ids[i]
    if id then return id, M.task(st, id) end
  end
end

--- Iterator over the runs in id order: `for id, run in state.each_run(st)`.
function M.each_run(st)
  local ids, i = M.run_ids(st), 0
  return function()
    i = i + 1
    local id = ids[i]
    if id then return id, M.run(st, id) end
  end
end

--- Counts of runs per state: {Scheduled = n, ...} (only states present).
function M.runs_by_state(st)
  return st.core:runs_by_state()
end

--- A fresh, empty projection.
function M.new()
  return {
    latest = 0,
    core = core.replay_state(CONFIG),
    engine = { paused = false },
    deps = {},
    budgets = {},
    subscriptions = {},
    actors = {},
    tenants = {},
    roles = {},
    grants = {},
    ledger = {},
  }
end

--- The reducer's string key of a Capability value (`CanSubmit` ... or `Custom:<name>`).
function M.capability_key(cap)
  if type(cap) == "table" then return "Custom:" .. tostring(cap.Custom) end
  return cap
end

--- Key of a budget record.
function M.budget_key(task_id, dimension)
  return task_id .. "|" .. dimension
end

return M
