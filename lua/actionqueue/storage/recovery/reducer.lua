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
local state_mod = require "actionqueue.storage.recovery.state"

local M = {}

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
local function engine_err(detail_kind, d)
  return nil, errors.new("Engine", { detail = detail_kind, text = d },
    "Engine control causality violation during replay: " .. d)
end

local H = {}

-- ---------------------------------------------------------------------------
-- #0-#10, #14, #15 (the tasks' and runs' events): their rules live in csrc/replay.c,
-- beside the compact tasks and runs they change (state.lua). Each handler takes the
-- event's postcard payload (the WAL replay hands it over as read) or, from Lua callers
-- (hydration, scripts), the event's fields, which it encodes first.

local W = require "actionqueue.storage.schema.wal"
local core = require "actionqueue.storage.core"
local encode, decode = core.postcard_encode, core.postcard_decode
local WalEvent = core.schema(W.WalEvent)
local WORKFLOW = { features = { workflow = true } } -- values a decoder accepted already

-- Error texts of the kinds that carry a detail (§9.2).
local DETAIL_PREFIX = {
  Lease = "Lease causality violation during replay: ",
  Task = "Task causality violation during replay: ",
}

--- The error value of a rejection reported by csrc/replay.c as (kind [, detail, text]).
function M.error(kind, detail, text)
  if detail then
    return errors.new(kind, { detail = detail, text = text }, DETAIL_PREFIX[kind] .. text)
  end
  return errors.new(kind, nil, M.TEXT[kind])
end

local C_HANDLER = {}

-- The one record a Lua caller's event is wrapped in to be encoded (reused: hydration
-- applies one synthesized event per snapshot record and history entry).
local WRAP_EVENT = {}
local WRAP = { sequence = 0, event = WRAP_EVENT }

local function c_handler(variant)
  local h = function(st, e, payload)
    if not payload then
      WRAP_EVENT[variant] = e
      local err
      payload, err = encode(WRAP, WalEvent, WORKFLOW)
      WRAP_EVENT[variant] = nil
      if not payload then error("reducer: invalid " .. variant .. " event: " .. err, 2) end
    end
    local ok, kind, detail, text = st.core:apply(payload)
    if ok then return true end
    return nil, M.error(kind, detail, text)
  end
  C_HANDLER[h] = true
  return h
end

for _, variant in ipairs(state_mod.new().core:handled()) do H[variant] = c_handler(variant) end

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

local function unknown(variant)
  -- A schema variant without a handler (a forgotten handler; recovery_schema_spec
  -- catches it): an error value like any other rejection, never a raise.
  return nil, errors.new("UnknownVariant", { variant = variant },
    "unknown event variant " .. tostring(variant))
end

--- Applies one WAL record to the projection.
-- @tparam table st projection (`state.new()`)
-- @tparam table rec `{sequence = n, event = {Variant = fields}}`
-- @return true | nil, err
function M.apply(st, rec)
  local variant, fields = next(rec.event)
  return M.apply_event(st, rec.sequence, variant, fields)
end

--- Applies one WAL record given as its postcard payload, already validated (the
-- postcard skim of the WAL scan gave `seq` and `variant`): the replay's path, where the
-- tasks' and runs' events never become Lua tables.
-- @return true | nil, err
function M.apply_payload(st, payload, seq, variant)
  if not ult(st.latest, seq) then return invalid() end
  local h = H[variant]
  if not h then return unknown(variant) end
  local ok, err
  if C_HANDLER[h] then
    ok, err = h(st, nil, payload)
  else
    local rec = assert(decode(payload, WalEvent, WORKFLOW))
    ok, err = h(st, rec.event[variant])
  end
  if not ok then return nil, err end
  st.latest = seq
  return true
end

--- Applies an event given as (variant, fields) with an explicit sequence.
-- @return true | nil, err
function M.apply_event(st, sequence, variant, fields)
  if not ult(st.latest, sequence) then return invalid() end
  local h = H[variant]
  if not h then return unknown(variant) end
  local ok, err = h(st, fields)
  if not ok then return nil, err end
  st.latest = sequence
  return true
end

return M
