--- The in-memory projection the replay reducer maintains (recovery.md §8).
--
-- Layout (ids are lower-case hyphenated UUID strings, u64 values Lua integers):
--
--   latest          u64, last applied sequence (0 initially)
--   tasks           TaskId -> {spec, created_at, updated_at (never set), canceled_at?}
--   runs            RunId  -> {instance = RunInstance, history = {{from?,to,timestamp}},
--                              attempts = {{attempt_id, started_at, finished_at?, result?,
--                              error?, output?}}, lease = {owner, expiry}?,
--                              lease_meta = {owner, expiry, acquired_at, updated_at}?}
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
-- @module actionqueue.storage.recovery.state
local M = {}

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
