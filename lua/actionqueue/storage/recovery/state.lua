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

--- A run's state history as a list of `{from?, to, timestamp}` records.
function M.history(run)
  return M.unpack(M.HISTORY, run.history)
end

--- A run's attempt history as a list of `{attempt_id, started_at, ...}` records.
function M.attempts(run)
  return M.unpack(M.ATTEMPTS, run.attempts)
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
