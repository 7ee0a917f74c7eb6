--- The replay reducer: one handler per `WalEventType` variant of schema/wal.lua, applying
-- the event rules of recovery.md §9-§11 on the projection.
--
-- `apply(state, record)` takes a WAL record `{sequence = n, event = {Variant = {...}}}`
-- and returns `true` or `nil, err`. Every apply is all-or-nothing: all preconditions are
-- checked before the first change, and `state.latest` only moves on success.
-- Errors are `errors.new(kind, fields, text)` with the reference's display text
-- (`Invalid state transition during replay`, `Lease causality violation during replay:
-- ...`); the replay driver wraps them as `Reducer error: <text>`.
-- @module actionqueue.storage.recovery.reducer
local errors = require "actionqueue.storage.errors"
local sm = require "actionqueue.storage.statemachine"
local state_mod = require "actionqueue.storage.recovery.state"
local copy = require("actionqueue.storage.tablex").copy

local M = {}

local U32_MAX = 0xFFFFFFFF
local fmt = string.format
local ult = math.ult

--- Reducer error texts (§9.2).
M.TEXT = {
  InvalidTransition = "Invalid state transition during replay",
  DuplicateEvent = "Duplicate event detected",
  CorruptedData = "Corrupted event data",
}

local function simple(kind)
  return nil, errors.new(kind, nil, M.TEXT[kind])
end
local function invalid() return simple("InvalidTransition") end
local function duplicate() return simple("DuplicateEvent") end
local function corrupted() return simple("CorruptedData") end

local function lease_err(detail_kind, d)
  return nil, errors.new("Lease", { detail = detail_kind, text = d },
    "Lease causality violation during replay: " .. d)
end
local function task_err(detail_kind, d)
  return nil, errors.new("Task", { detail = detail_kind, text = d },
    "Task causality violation during replay: " .. d)
end
local function engine_err(detail_kind, d)
  return nil, errors.new("Engine", { detail = detail_kind, text = d },
    "Engine control causality violation during replay: " .. d)
end

local H = {}

-- Slots of the packed run histories (state.lua).
local HS, AS = state_mod.HISTORY.slot, state_mod.ATTEMPTS.slot
local H_FROM, H_TO, H_TS = HS.from, HS.to, HS.timestamp
local A_WIDTH, A_ID, A_STARTED = state_mod.ATTEMPTS.width, AS.attempt_id, AS.started_at
local A_FINISHED, A_RESULT, A_ERROR, A_OUTPUT = AS.finished_at, AS.result, AS.error, AS.output

-- #0
H.TaskCreated = function(st, e)
  local id = e.task_spec.id
  if st.tasks[id] then return duplicate() end
  st.tasks[id] = { spec = e.task_spec, created_at = e.timestamp }
  st.task_count = st.task_count + 1
  return true
end

-- #1
H.RunCreated = function(st, e)
  local inst = e.run_instance
  if st.runs[inst.id] then return duplicate() end
  if inst.state ~= "Scheduled" then return invalid() end
  inst = copy(inst)
  local history = {}
  history[H_FROM], history[H_TO], history[H_TS] = false, "Scheduled", inst.created_at
  st.runs[inst.id] = { instance = inst, history = history, attempts = {} }
  st.run_count = st.run_count + 1
  local list = st.runs_by_task[inst.task_id]
  if not list then
    list = {}
    st.runs_by_task[inst.task_id] = list
  end
  list[#list + 1] = inst.id
  return true
end

-- The transition table and the terminal states, as plain lookups for the hot paths
-- (derived from statemachine, which derives the states from the schema).
local ALLOWED, TERMINAL = {}, {}
for _, from in ipairs(sm.states) do
  ALLOWED[from] = {}
  for _, to in ipairs(sm.targets(from)) do ALLOWED[from][to] = true end
  TERMINAL[from] = sm.is_terminal(from)
end

-- Effects of a state change (shared by #2, #6, #14, #15).
local function change_state(run, prev, new, ts)
  local inst = run.instance
  inst.state = new
  if new ~= "Running" then inst.current_attempt_id = nil end
  inst.last_state_change_at = ts
  local history = run.history
  local n = #history
  history[n + H_FROM], history[n + H_TO], history[n + H_TS] = prev, new, ts
  if TERMINAL[new] then
    run.lease, run.lease_meta = nil, nil
  end
end

-- RunStateChanged's checks (§9.3 #2 steps 1-6), then its effects.
local function state_changed(st, run_id, prev, new, ts)
  local run = st.runs[run_id]
  if not run then return invalid() end
  local inst = run.instance
  local cur = inst.state
  if cur ~= prev then return invalid() end
  if not ALLOWED[prev][new] then return invalid() end
  -- Step 4 (instance state differs from the mirror) cannot happen here: the mirror is
  -- the instance's own state.
  local attempt = inst.current_attempt_id
  if attempt ~= nil then
    if new == "Running" then return invalid() end
    if cur == "Running" and new ~= "Canceled" then return invalid() end
  end
  change_state(run, prev, new, ts)
  return true
end

-- #2
H.RunStateChanged = function(st, e)
  return state_changed(st, e.run_id, e.previous_state, e.new_state, e.timestamp)
end

-- #3
H.AttemptStarted = function(st, e)
  local run = st.runs[e.run_id]
  if not run or run.instance.state ~= "Running" then return invalid() end
  local inst = run.instance
  if inst.current_attempt_id ~= nil then return invalid() end
  if inst.attempt_count == U32_MAX then return corrupted() end
  inst.attempt_count = inst.attempt_count + 1
  inst.current_attempt_id = e.attempt_id
  local attempts = run.attempts
  local n = #attempts
  for j = 1, A_WIDTH do attempts[n + j] = false end
  attempts[n + A_ID], attempts[n + A_STARTED] = e.attempt_id, e.timestamp
  return true
end

--- Normalises (result, error, output) of an AttemptFinished (§9.3 #4).
function M.normalize_outcome(result, err, output)
  if result == "Success" or result == "Suspended" then
    if err == nil then return result, nil, output end
    return result, nil, nil
  end
  if err ~= nil and output == nil then return result, err, nil end
  if err == nil then
    err = result == "Failure" and "unknown failure" or "unknown timeout"
  end
  return result, err, nil
end

-- #4
H.AttemptFinished = function(st, e)
  local result, err, output = M.normalize_outcome(e.result, e.error, e.output)
  local run = st.runs[e.run_id]
  if not run or run.instance.state ~= "Running" then return invalid() end
  local inst = run.instance
  if inst.current_attempt_id == nil or inst.current_attempt_id ~= e.attempt_id then
    return invalid()
  end
  local attempts, base = run.attempts, nil
  for b = 0, #attempts - 1, A_WIDTH do
    if attempts[b + A_ID] == e.attempt_id then base = b break end
  end
  if not base or attempts[base + A_FINISHED] ~= false then return corrupted() end
  inst.current_attempt_id = nil
  attempts[base + A_FINISHED], attempts[base + A_RESULT] = e.timestamp, result
  attempts[base + A_ERROR], attempts[base + A_OUTPUT] = err or false, output or false
  return true
end

-- #5
H.TaskCanceled = function(st, e)
  local task = st.tasks[e.task_id]
  if not task then
    return task_err("UnknownTask", "task canceled rejected: unknown task " .. e.task_id)
  end
  if task.canceled_at ~= nil then
    return task_err("AlreadyCanceled", fmt(
      "task canceled rejected for task %s: already canceled at %u, duplicate timestamp %u",
      e.task_id, task.canceled_at, e.timestamp))
  end
  task.canceled_at = e.timestamp
  return true
end

-- #6
H.RunCanceled = function(st, e)
  local run = st.runs[e.run_id]
  if not run or TERMINAL[run.instance.state] then return invalid() end
  change_state(run, run.instance.state, "Canceled", e.timestamp)
  run.lease, run.lease_meta = nil, nil
  return true
end

local LEASE_KIND = {
  LeaseAcquired = "lease acquire", LeaseHeartbeat = "lease heartbeat",
  LeaseExpired = "lease expire", LeaseReleased = "lease release",
}
local LEASE_STATES = {
  LeaseAcquired = { Ready = true, Leased = true },
  LeaseHeartbeat = { Leased = true, Running = true },
  LeaseExpired = { Ready = true, Leased = true, Running = true },
  LeaseReleased = { Ready = true, Leased = true, Running = true },
}

-- Common lease preconditions: unknown run, run state.
local function lease_run(st, variant, e)
  local kind = LEASE_KIND[variant]
  local run = st.runs[e.run_id]
  if not run then
    return lease_err("UnknownRun", fmt("%s rejected: unknown run %s", kind, e.run_id))
  end
  local s = run.instance.state
  if not LEASE_STATES[variant][s] then
    return lease_err("InvalidRunState",
      fmt("%s rejected for run %s: invalid state %s", kind, e.run_id, s))
  end
  return run
end

local function missing_lease(variant, e)
  return lease_err("MissingActiveLease", fmt("%s rejected for run %s: missing active lease",
    LEASE_KIND[variant], e.run_id))
end

local function owner_mismatch(variant, e, cur)
  return lease_err("OwnerMismatch", fmt("%s rejected for run %s: owner mismatch expected=%s actual=%s",
    LEASE_KIND[variant], e.run_id, cur, e.owner))
end

-- #7
H.LeaseAcquired = function(st, e)
  local run, err = lease_run(st, "LeaseAcquired", e)
  if not run then return nil, err end
  if run.lease then
    return lease_err("LeaseAlreadyActive",
      fmt("lease acquire rejected for run %s: lease already active", e.run_id))
  end
  run.lease = { owner = e.owner, expiry = e.expiry }
  run.lease_meta = { owner = e.owner, expiry = e.expiry, acquired_at = e.timestamp,
                     updated_at = e.timestamp }
  return true
end

-- #8
H.LeaseHeartbeat = function(st, e)
  local run, err = lease_run(st, "LeaseHeartbeat", e)
  if not run then return nil, err end
  local lease = run.lease
  if not lease then return missing_lease("LeaseHeartbeat", e) end
  if lease.owner ~= e.owner then return owner_mismatch("LeaseHeartbeat", e, lease.owner) end
  if ult(e.expiry, lease.expiry) then
    return lease_err("NonMonotonicHeartbeatExpiry", fmt(
      "lease heartbeat rejected for run %s: expiry regression previous=%u proposed=%u",
      e.run_id, lease.expiry, e.expiry))
  end
  if not run.lease_meta then return corrupted() end
  lease.expiry = e.expiry
  run.lease_meta.expiry = e.expiry
  run.lease_meta.updated_at = e.timestamp
  return true
end

-- #9, #10
local function lease_close(variant)
  return function(st, e)
    local run, err = lease_run(st, variant, e)
    if not run then return nil, err end
    local lease = run.lease
    if not lease then return missing_lease(variant, e) end
    if lease.owner ~= e.owner then return owner_mismatch(variant, e, lease.owner) end
    if lease.expiry ~= e.expiry then
      return lease_err("ExpiryMismatch", fmt(
        "%s rejected for run %s: expiry mismatch expected=%u actual=%u",
        LEASE_KIND[variant], e.run_id, lease.expiry, e.expiry))
    end
    run.lease, run.lease_meta = nil, nil
    -- The reference's defect: Leased -> Ready without history entry or
    -- last_state_change_at update (recovery.md §9.3 #9).
    if run.instance.state == "Leased" then run.instance.state = "Ready" end
    return true
  end
end
H.LeaseExpired = lease_close("LeaseExpired")
H.LeaseReleased = lease_close("LeaseReleased")

-- #11
H.EnginePaused = function(st, e)
  local eng = st.engine
  if eng.paused then
    if eng.paused_at ~= nil then
      return engine_err("AlreadyPaused", fmt(
        "engine pause rejected: already paused at %u, duplicate timestamp %u",
        eng.paused_at, e.timestamp))
    end
    return engine_err("AlreadyPaused", fmt(
      "engine pause rejected: already paused, duplicate timestamp %u", e.timestamp))
  end
  eng.paused, eng.paused_at, eng.resumed_at = true, e.timestamp, nil
  return true
end

-- #12
H.EngineResumed = function(st, e)
  local eng = st.engine
  if not eng.paused then
    return engine_err("NotPaused",
      fmt("engine resume rejected: engine not paused at timestamp %u", e.timestamp))
  end
  if eng.paused_at ~= nil and ult(e.timestamp, eng.paused_at) then
    return engine_err("ResumeBeforePause", fmt(
      "engine resume rejected: resumed_at %u precedes paused_at %u", e.timestamp, eng.paused_at))
  end
  eng.paused, eng.resumed_at = false, e.timestamp
  return true
end

-- #13
H.DependencyDeclared = function(st, e)
  local set = st.deps[e.task_id]
  if not set then
    set = {}
    st.deps[e.task_id] = set
  end
  for _, p in ipairs(e.depends_on) do set[p] = true end
  return true
end

-- #14
H.RunSuspended = function(st, e)
  return state_changed(st, e.run_id, "Running", "Suspended", e.timestamp)
end

-- #15
H.RunResumed = function(st, e)
  return state_changed(st, e.run_id, "Suspended", "Ready", e.timestamp)
end

local bkey = state_mod.budget_key

-- #16
H.BudgetAllocated = function(st, e)
  st.budgets[bkey(e.task_id, e.dimension)] = {
    task_id = e.task_id, dimension = e.dimension, limit = e.limit, consumed = 0,
    allocated_at = e.timestamp, exhausted = false,
  }
  return true
end

-- #17
H.BudgetConsumed = function(st, e)
  local b = st.budgets[bkey(e.task_id, e.dimension)]
  if b then
    local sum = b.consumed + e.amount
    if ult(sum, b.consumed) then sum = -1 end -- saturate at u64::MAX
    b.consumed = sum
    if not ult(sum, b.limit) then b.exhausted = true end
  end
  return true
end

-- #18
H.BudgetExhausted = function(st, e)
  local b = st.budgets[bkey(e.task_id, e.dimension)]
  if b then b.exhausted = true end
  return true
end

-- #19
H.BudgetReplenished = function(st, e)
  local b = st.budgets[bkey(e.task_id, e.dimension)]
  if b then b.limit, b.consumed, b.exhausted = e.new_limit, 0, false end
  return true
end

-- A handler that sets `field` of the entry of `st[collection]` keyed by `key_of(e)` to the
-- event's timestamp (an unknown entry is ignored).
local function stamp(collection, key_of, field)
  return function(st, e)
    local x = st[collection][key_of(e)]
    if x then x[field] = e.timestamp end
    return true
  end
end

local function by(name) return function(e) return e[name] end end

-- #20
H.SubscriptionCreated = function(st, e)
  st.subscriptions[e.subscription_id] = {
    subscription_id = e.subscription_id, task_id = e.task_id, filter = e.filter,
    created_at = e.timestamp,
  }
  return true
end

-- #21
H.SubscriptionTriggered = stamp("subscriptions", by("subscription_id"), "triggered_at")

-- #22
H.SubscriptionCanceled = stamp("subscriptions", by("subscription_id"), "canceled_at")

-- #23
H.ActorRegistered = function(st, e)
  st.actors[e.actor_id] = {
    actor_id = e.actor_id, identity = e.identity, capabilities = e.capabilities,
    department = e.department, heartbeat_interval_secs = e.heartbeat_interval_secs,
    tenant_id = e.tenant_id, registered_at = e.timestamp,
  }
  return true
end

-- #24
H.ActorDeregistered = stamp("actors", by("actor_id"), "deregistered_at")

-- #25
H.ActorHeartbeat = stamp("actors", by("actor_id"), "last_heartbeat_at")

-- #26
H.TenantCreated = function(st, e)
  st.tenants[e.tenant_id] = { tenant_id = e.tenant_id, name = e.name, created_at = e.timestamp }
  return true
end

-- #27
H.RoleAssigned = function(st, e)
  st.roles[e.actor_id .. "|" .. e.tenant_id] = {
    actor_id = e.actor_id, role = e.role, tenant_id = e.tenant_id, assigned_at = e.timestamp,
  }
  return true
end

local function grant_key(e)
  return e.actor_id .. "|" .. state_mod.capability_key(e.capability) .. "|" .. e.tenant_id
end

-- #28
H.CapabilityGranted = function(st, e)
  st.grants[grant_key(e)] = {
    actor_id = e.actor_id, capability = e.capability, tenant_id = e.tenant_id,
    granted_at = e.timestamp,
  }
  return true
end

-- #29
H.CapabilityRevoked = stamp("grants", grant_key, "revoked_at")

-- #30
H.LedgerEntryAppended = function(st, e)
  st.ledger[#st.ledger + 1] = {
    entry_id = e.entry_id, tenant_id = e.tenant_id, ledger_key = e.ledger_key,
    actor_id = e.actor_id, payload = e.payload, timestamp = e.timestamp,
  }
  return true
end

M.handlers = H

--- Applies one WAL record to the projection.
-- @tparam table st projection (`state.new()`)
-- @tparam table rec `{sequence = n, event = {Variant = fields}}`
-- @return true | nil, err
function M.apply(st, rec)
  local seq = rec.sequence
  if not ult(st.latest, seq) then return invalid() end
  local variant, fields = next(rec.event)
  local h = H[variant]
  if not h then
    -- A schema variant without a handler (a forgotten handler; recovery_schema_spec
    -- catches it): an error value like any other rejection, never a raise.
    return nil, errors.new("UnknownVariant", { variant = variant },
      "unknown event variant " .. tostring(variant))
  end
  local ok, err = h(st, fields)
  if not ok then return nil, err end
  st.latest = seq
  return true
end

--- Applies an event given as (variant, fields) with an explicit sequence.
function M.apply_event(st, sequence, variant, fields)
  return M.apply(st, { sequence = sequence, event = { [variant] = fields } })
end

return M
