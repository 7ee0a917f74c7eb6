--- The in-memory projection the replay reducer maintains (recovery.md §8).
--
-- Layout (ids are lower-case hyphenated UUID strings, u64 values Lua integers):
--
--   latest          u64, last applied sequence (0 initially)
--   tasks           TaskId -> {spec, created_at, updated_at (never set), canceled_at?}
--   runs            RunId  -> {instance = RunInstance, history = packed list of
--                              RunStateHistoryEntry, attempts = packed list of
--                              AttemptHistoryEntry, lease = {owner, expiry}?,
--                              lease_meta = {owner, expiry, acquired_at, updated_at}?}
--                   (`history(run)` / `attempts(run)` return them as record lists)
--                   (the run-state mirror of the reference is `instance.state`; the active
--                   attempt is `instance.current_attempt_id`)
--   runs_by_task    TaskId -> {RunId, ...} in creation order
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
-- Readers outside the reducer and the bootstrap (to_snapshot, summary, the REPL, scripts)
-- use only the read functions below (`task_ids`, `task`, `each_task`, `run_ids`, `run`,
-- `each_run`, `runs_of_task`, `task_count`, `run_count`, `runs_by_state`); the other
-- collections are plain tables of the layout above.
--
-- A packed list holds the records of one snapshot record type in a single flat array
-- (record i's field j, in schema order, at (i-1)*width + j; an absent optional is
-- `false`): one table per run instead of one per entry, the bulk of a projection.
-- @module actionqueue.storage.recovery.state
local S = require "actionqueue.storage.schema.snapshot"

local M = {}

-- The layout of a packed list of `rec` records: field names by slot, slots by name.
local function layout(rec)
  local l = { names = {}, slot = {}, width = #rec.fields }
  for i, f in ipairs(rec.fields) do
    l.names[i], l.slot[f.name] = f.name, i
  end
  return l
end

--- Layout of a run's packed state history (snapshot RunStateHistoryEntry).
M.HISTORY = layout(S.RunStateHistoryEntry)
--- Layout of a run's packed attempt history (snapshot AttemptHistoryEntry).
M.ATTEMPTS = layout(S.AttemptHistoryEntry)

--- Packs a list of records into a new flat array of layout `l`.
function M.pack(l, list)
  local flat, names, w = {}, l.names, l.width
  for i = 1, #list do
    local rec, base = list[i], (i - 1) * w
    for j = 1, w do
      local v = rec[names[j]]
      if v == nil then v = false end
      flat[base + j] = v
    end
  end
  return flat
end

--- The records of a packed list of layout `l`, as a new list of new tables.
function M.unpack(l, flat)
  local list, names, w = {}, l.names, l.width
  for i = 1, #flat // w do
    local rec, base = {}, (i - 1) * w
    for j = 1, w do
      local v = flat[base + j]
      if v ~= false then rec[names[j]] = v end
    end
    list[i] = rec
  end
  return list
end

-- ---------------------------------------------------------------------------
-- Read functions: the contract of the projection's readers (recovery/to_snapshot.lua,
-- recovery.summary, inspect/datadir.lua, scripts). They return fresh tables the caller
-- may keep or change; nothing else outside the reducer and the bootstrap reads the
-- tasks' and runs' storage directly, so its representation can change behind them.

local function sorted_keys(map)
  local keys = {}
  for k in pairs(map) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

--- Number of tasks of the projection.
function M.task_count(st)
  return st.task_count
end

--- Number of runs of the projection.
function M.run_count(st)
  return st.run_count
end

--- Task ids in ascending order (lower-case UUID text order = UUID byte order).
function M.task_ids(st)
  return sorted_keys(st.tasks)
end

--- Run ids in ascending order.
function M.run_ids(st)
  return sorted_keys(st.runs)
end

--- A task as `{spec = TaskSpec, created_at, updated_at?, canceled_at?}`, nil if unknown.
function M.task(st, id)
  local t = st.tasks[id]
  if not t then return nil end
  return { spec = t.spec, created_at = t.created_at, updated_at = t.updated_at,
           canceled_at = t.canceled_at }
end

--- A run as `{instance = RunInstance, history = {RunStateHistoryEntry...},
-- attempts = {AttemptHistoryEntry...}, lease = {owner, expiry}?,
-- lease_meta = {owner, expiry, acquired_at, updated_at}?}`, nil if unknown.
function M.run(st, id)
  local r = st.runs[id]
  if not r then return nil end
  local inst = {}
  for k, v in pairs(r.instance) do inst[k] = v end
  local lease, meta
  if r.lease then lease = { owner = r.lease.owner, expiry = r.lease.expiry } end
  if r.lease_meta then
    local m = r.lease_meta
    meta = { owner = m.owner, expiry = m.expiry, acquired_at = m.acquired_at, updated_at = m.updated_at }
  end
  return { instance = inst, history = M.unpack(M.HISTORY, r.history),
           attempts = M.unpack(M.ATTEMPTS, r.attempts), lease = lease, lease_meta = meta }
end

--- The ids of a task's runs in creation order (empty list when none).
function M.runs_of_task(st, task_id)
  local list = st.runs_by_task[task_id]
  local out = {}
  for i = 1, list and #list or 0 do out[i] = list[i] end
  return out
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

--- A fresh, empty projection.
function M.new()
  return {
    latest = 0,
    tasks = {}, task_count = 0,
    runs = {}, run_count = 0,
    runs_by_task = {},
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

--- Counts of runs per state: {Scheduled = n, ...} (only states present).
function M.runs_by_state(st)
  local out = {}
  for _, r in pairs(st.runs) do
    local s = r.instance.state
    out[s] = (out[s] or 0) + 1
  end
  return out
end

return M
